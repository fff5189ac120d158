import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveEnv, startServe, type ServeProcess } from './support/cli.ts';

/**
 * The documentation's walkthroughs run, so they cannot go stale. A shell
 * block is a walkthrough when an HTML comment `<!-- walkthrough: <name> -->`
 * stands right before its ```sh fence; blocks of one name (in one file) are
 * run in order as one script, with `bash -euo pipefail`, from a directory that
 * holds `bin/` (the clone's) and `var/` (the data directory of a real
 * `devid-ca serve` on SoftHSM and PGlite), as a reader in a clone running
 * `npm start` would. The only change made to the text is the ports: the
 * documented 8443 and 8080 become the test server's free ones.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Walkthrough {
  file: string;
  name: string;
  script: string;
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** Every marked block of one Markdown text, joined by name in order of appearance. */
export function extractWalkthroughs(file: string, text: string): Walkthrough[] {
  const byName = new Map<string, string[]>();
  const marker = /<!--\s*walkthrough:\s*([A-Za-z0-9_.-]+)\s*-->\s*\n```(?:sh|bash)\n([\s\S]*?)\n```/g;
  for (const match of text.matchAll(marker)) {
    const [, name, body] = match;
    byName.set(name, [...(byName.get(name) ?? []), body]);
  }
  // A marker that does not sit right before a sh fence is a mistake, not an illustration.
  const markers = [...text.matchAll(/<!--\s*walkthrough:/g)].length;
  const blocks = [...byName.values()].reduce((n, b) => n + b.length, 0);
  if (markers !== blocks) throw new Error(`${file}: ${markers} walkthrough markers but ${blocks} marked sh blocks`);
  return [...byName].map(([name, bodies]) => ({ file, name, script: bodies.join('\n') }));
}

export function allWalkthroughs(): Walkthrough[] {
  return [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))].flatMap((path) =>
    extractWalkthroughs(relative(ROOT, path), readFileSync(path, 'utf8')));
}

function runScript(cwd: string, script: string, timeout = 240_000): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd, encoding: 'utf8', timeout,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('documentation walkthroughs run against a real server', function () {
  this.timeout(600_000);
  let base: string;
  let serve: ServeProcess;
  let ports: { https: number; http: number };
  const walkthroughs = allWalkthroughs();
  const localise = (script: string) => script.replaceAll('localhost:8443', `localhost:${ports.https}`).replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.http}`);

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'devid-test-walkthrough-'));
    symlinkSync(join(ROOT, 'bin'), join(base, 'bin'));
    const served = await serveEnv(join(base, 'var'));
    ports = { https: served.httpsPort, http: served.httpPort };
    serve = await startServe(served.env, ['--init-if-empty']);
  });
  after(async () => {
    await serve?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('the README has its five-minute walkthrough, and the Quick start commands are the ones CI runs', () => {
    expect(walkthroughs.map((w) => `${w.file}:${w.name}`)).to.include('README.md:five-minutes');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).to.include('scripts/setup.sh && npm start');
    expect(readme).to.include('scripts/setup.sh --test && npm test');
    expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).to.include('scripts/setup.sh --test && npm test');
  });

  it('a broken command fails its walkthrough: inside a pipeline, in a substitution, or alone', () => {
    expect(runScript(base, localise('curl -sf http://127.0.0.1:8080/ca/nothing.crt | openssl x509 -inform DER -noout')).status).to.not.equal(0);
    expect(runScript(base, 'export PATH=$PWD/bin:$PATH DEVID_DATA_DIR=$PWD/var\nT=$(devid-ca token create --role nobody)\necho "$T"').status).to.not.equal(0);
    expect(runScript(base, 'export PATH=$PWD/bin:$PATH\ncd "$(mktemp -d)"\ndevid-device --dir dev1 enroll\necho never').stdout).to.not.include('never');
  });

  for (const walkthrough of walkthroughs) {
    it(`${walkthrough.file}: ${walkthrough.name}`, () => {
      const result = runScript(base, localise(walkthrough.script));
      expect(result.status, `${walkthrough.file} walkthrough ${walkthrough.name} failed (status ${result.status}):\n${result.stdout}\n${result.stderr}`).to.equal(0);
    });
  }
});
