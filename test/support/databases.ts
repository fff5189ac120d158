import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { DatabaseLocation } from '../../store/database.ts';

/** PostgreSQL of the test machine (trust auth, user postgres); override with DEVID_TEST_POSTGRES_URL. */
export const POSTGRES_ADMIN_URL = process.env.DEVID_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  location: DatabaseLocation;
  /** For DEVID_DATABASE_URL in a child process; undefined for PGlite. */
  url?: string;
  drop(): Promise<void>;
}

export type DatabaseKind = 'pglite' | 'postgres';
export const DATABASE_KINDS: readonly DatabaseKind[] = ['pglite', 'postgres'];

/** A fresh empty database: a PGlite folder, or a PostgreSQL database created (and later dropped) for the test. */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'devid-test-pglite-'));
    return { location: { kind: 'pglite', dir }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `devid_test_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: POSTGRES_ADMIN_URL, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`create database ${name}`);
  } finally {
    await admin.destroy();
  }
  const url = POSTGRES_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    location: { kind: 'postgres', url },
    url,
    drop: async () => {
      const cleanup = knexFactory({ client: 'pg', connection: POSTGRES_ADMIN_URL, pool: { min: 0, max: 1 } });
      try {
        await cleanup.raw(`drop database if exists ${name} with (force)`);
      } finally {
        await cleanup.destroy();
      }
    },
  };
}
