// The CLIs run the compiled copy in build/: one missing, or older than the
// sources it was made from, would run other code than the clone holds.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Written by `npm run build` once tsc has succeeded. */
const STAMP = `${ROOT}build/.built`;

/** The first source (or build setting) newer than the build, if any. Plain string paths: this runs before every command. */
function newerSource(built) {
  const settings = ['tsconfig.json', 'tsconfig.build.json'];
  const { include } = JSON.parse(readFileSync(`${ROOT}tsconfig.build.json`, 'utf8'));
  for (const file of settings) if ((statSync(`${ROOT}${file}`, { throwIfNoEntry: false })?.mtimeMs ?? 0) > built) return file;
  for (const folder of include) {
    const newer = newerIn(folder, built);
    if (newer) return newer;
  }
  return undefined;
}

function newerIn(folder, built) {
  for (const entry of readdirSync(`${ROOT}${folder}`, { withFileTypes: true })) {
    const path = `${folder}/${entry.name}`;
    const newer = entry.isDirectory() ? newerIn(path, built) : entry.name.endsWith('.ts') && statSync(`${ROOT}${path}`).mtimeMs > built ? path : undefined;
    if (newer) return newer;
  }
  return undefined;
}

/** Exits with a line saying how to build when build/ is missing or stale. */
export function requireCurrentBuild(command) {
  const built = statSync(STAMP, { throwIfNoEntry: false })?.mtimeMs;
  const stale = built === undefined ? undefined : newerSource(built);
  if (built !== undefined && stale === undefined) return;
  const why = built === undefined ? 'build/ is missing' : `build/ is older than ${stale}`;
  process.stderr.write(`${command}: ${why}: run scripts/setup.sh (or npm run build) first\n`);
  process.exit(1);
}
