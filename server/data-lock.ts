import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

/**
 * An exclusive lock on the data directory (docs/operators/postgresql.md): PGlite has one
 * connection and does not lock its folder, so a second process must refuse
 * to start. The lock is an flock(2) held by a small `flock(1)` child whose
 * standard input is a pipe from this process: the kernel releases it when
 * the holder dies, however it dies (kill -9, OOM, a suspended VM that comes
 * back), and it works across containers sharing the volume. No timer, no
 * stale-lock guess. The file also names the holder's PID for people.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'devid-ca.lock');
  writeFileSync(path, '', { flag: 'a', mode: 0o600 });
  // -n: fail at once when held; `cat` holds the lock until our end of the pipe closes.
  const child = spawn('flock', ['--nonblock', '--conflict-exit-code', '75', path, 'sh', '-c', 'echo locked; exec cat > /dev/null'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const outcome = await new Promise<'locked' | number | Error>((resolve) => {
    child.stdout!.once('data', () => resolve('locked'));
    child.once('exit', (code) => resolve(code ?? 1));
    child.once('error', (err) => resolve(err));
  });
  if (outcome === 'locked') {
    writeFileSync(join(dataDir, 'devid-ca.pid'), `${process.pid}\n`, { mode: 0o600 });
    // The lock must not keep the event loop alive, nor outlive us.
    child.unref();
    (child.stdout as unknown as { unref(): void }).unref();
    (child.stdin as unknown as { unref(): void }).unref();
    return async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.ref();
      child.stdin!.end();
      await exited;
    };
  }
  if (outcome === 75) {
    throw new DataDirLockedError(
      `the data directory ${dataDir} is in use by another devid-ca process: the embedded PGlite database serves one process only; stop that process, or set DEVID_DATABASE_URL to a PostgreSQL database to run several`,
    );
  }
  throw new Error(`cannot lock the data directory ${dataDir} with flock(1): ${outcome instanceof Error ? outcome.message : `exit ${outcome}`} (util-linux is required)`);
}
