import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Debian's golang-golang-x-mod-dev puts golang.org/x/mod under this GOPATH. */
const GOPATH = '/usr/share/gocode';

/** Offline: the GOPATH copy only, no module proxy, a build cache of the test's own. */
function goEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '', GOPROXY: 'off', GOCACHE: join(dir, 'go-cache'), CGO_ENABLED: '0' };
}

/**
 * Builds test/support/tlog-verifier.go (Go's sumdb/note and sumdb/tlog) in
 * `dir`; returns its path, or why Go cannot run here (the test then skips and says so).
 */
export function buildGoVerifier(dir: string): { binary: string } | { reason: string } {
  const source = join(dir, 'src', 'tlog-verifier.go');
  mkdirSync(dirname(source), { recursive: true });
  copyFileSync(join(dirname(fileURLToPath(import.meta.url)), 'tlog-verifier.go'), source);
  const version = spawnSync('go', ['version'], { encoding: 'utf8', env: goEnv(dir) });
  if (version.error || version.status !== 0) return { reason: `Go does not run here (${version.error?.message ?? version.stderr.trim()}): install golang-go (scripts/setup.sh --test)` };
  const binary = join(dir, 'tlog-verifier');
  const build = spawnSync('go', ['build', '-o', binary, source], { encoding: 'utf8', env: goEnv(dir), timeout: 120_000 });
  if (build.status !== 0) throw new Error(`building the Go verifier failed (is golang-golang-x-mod-dev installed under ${GOPATH}?):\n${build.stderr}`);
  return { binary };
}

/** Runs the verifier without blocking: the server it asks answers from this same process. */
export function runGoVerifier(binary: string, args: string[], tlsServerName: string, extraEnv: Record<string, string> = {}): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(binary, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TLS_SERVER_NAME: tlsServerName, ...extraEnv } }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, output: `${stdout}${stderr}` });
    });
  });
}
