import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../server/config.ts';
import { openContext, type Context } from '../../server/context.ts';
import { createLogger } from '../../platform/logger.ts';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases.ts';
import { SOFTHSM_CONF, uniqueLabel } from './softhsm.ts';

export interface TestEnvironment {
  ctx: Context;
  database: TestDatabase;
  dataDir: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * A real context: its own data directory, its own SoftHSM token and a fresh
 * PGlite or PostgreSQL database. Listeners bind to loopback.
 */
export async function createTestEnvironment(kind: DatabaseKind = 'pglite', extraEnv: Record<string, string> = {}, given?: TestDatabase): Promise<TestEnvironment> {
  const dataDir = mkdtempSync(join(tmpdir(), 'devid-test-data-'));
  const database = given ?? (await createTestDatabase(kind));
  const env: Record<string, string> = {
    DEVID_DATA_DIR: dataDir,
    DEVID_PKCS11_TOKEN: uniqueLabel('ctx'),
    SOFTHSM2_CONF: SOFTHSM_CONF,
    DEVID_LISTEN: '127.0.0.1:0',
    DEVID_HTTP_LISTEN: '127.0.0.1:0',
    DEVID_PUBLIC_HOST: 'ca.devid.test',
    DEVID_HTTP_BASE_URL: 'http://pki.devid.test',
    ...(database.url ? { DEVID_DATABASE_URL: database.url } : {}),
    ...extraEnv,
  };
  if (kind === 'pglite' && database.location.kind === 'pglite') {
    // The PGlite folder of the data directory is where the test database lives.
    rmSync(database.location.dir, { recursive: true, force: true });
  }
  const config = loadConfig(env);
  const ctx = await openContext(config, createLogger('silent'), { prepareToken: true });
  return {
    ctx,
    database,
    dataDir,
    env,
    cleanup: async () => {
      await ctx.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
