// The CLIs run the compiled copy in build/: one missing, or older than the
// sources it was made from, would run other code than the clone holds.
import { readFileSync, readdirSync, statSync } from 'node:fs';

const ROOT = new URL('../', import.meta.url);
/** Written by `npm run build` once tsc has succeeded. */
const STAMP = new URL('build/.built', ROOT);

function mtime(url) {
  try {
    return statSync(url).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The first source (or build setting) newer than the build, if any. */
function newerSource(built) {
  const settings = ['tsconfig.json', 'tsconfig.build.json'];
  const { include } = JSON.parse(readFileSync(new URL('tsconfig.build.json', ROOT), 'utf8'));
  for (const file of settings) if ((mtime(new URL(file, ROOT)) ?? 0) > built) return file;
  for (const folder of include) {
    for (const name of readdirSync(new URL(`${folder}/`, ROOT), { recursive: true })) {
      if (name.endsWith('.ts') && (mtime(new URL(`${folder}/${name}`, ROOT)) ?? 0) > built) return `${folder}/${name}`;
    }
  }
  return undefined;
}

/** Exits with a line saying how to build when build/ is missing or stale. */
export function requireCurrentBuild(command) {
  const built = mtime(STAMP);
  const stale = built === undefined ? undefined : newerSource(built);
  if (built !== undefined && stale === undefined) return;
  const why = built === undefined ? 'build/ is missing' : `build/ is older than ${stale}`;
  process.stderr.write(`${command}: ${why}: run scripts/setup.sh (or npm run build) first\n`);
  process.exit(1);
}
