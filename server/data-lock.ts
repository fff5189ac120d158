import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false; // our own stale lock, e.g. PID 1 in a container restart
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock on the data directory (SPEC section 8): PGlite has one
 * connection and does not lock its folder, so a second process must refuse to
 * start. The lock file holds our PID; a lock left by a dead process is taken over.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'devid-ca.lock');
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new DataDirLockedError(
          `the data directory ${dataDir} is in use by process ${holder}: the embedded PGlite database serves one process only; stop that process, or set DEVID_DATABASE_URL to a PostgreSQL database to run several`,
        );
      }
      unlinkSync(path);
    }
  }
  throw new DataDirLockedError(`could not lock the data directory ${dataDir}`);
}
