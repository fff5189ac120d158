import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

/** A lock left by a killed process frees itself after this long. */
const STALE_MS = 10_000;

/**
 * An exclusive lock on the data directory (SPEC section 8): PGlite has one
 * connection and does not lock its folder, so a second process must refuse to
 * start. proper-lockfile takes it atomically (mkdir) and refreshes it while we
 * run, so a lock whose holder died goes stale instead of blocking for ever.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    return await lockfile.lock(dataDir, { lockfilePath: join(dataDir, 'devid-ca.lock'), stale: STALE_MS, realpath: false, retries: 0 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    throw new DataDirLockedError(
      `the data directory ${dataDir} is in use by another devid-ca process: the embedded PGlite database serves one process only; stop that process, or set DEVID_DATABASE_URL to a PostgreSQL database to run several (a lock left by a killed process frees itself within ${STALE_MS / 1000} s)`,
    );
  }
}
