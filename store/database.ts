import { mkdirSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import ClientPGLite from 'knex-pglite';
import pg from 'pg';
import { MIGRATIONS } from '../migrations/index.ts';

/** Where the data lives: PGlite in a folder (embedded default) or a PostgreSQL URL. */
export type DatabaseLocation = { kind: 'pglite'; dir: string } | { kind: 'postgres'; url: string };

// BIGINT (audit sequence numbers) fits a JS number for the life of any CA.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function openDatabase(location: DatabaseLocation): Knex {
  if (location.kind === 'postgres') {
    return knexFactory({ client: 'pg', connection: location.url, pool: { min: 0, max: 10 } });
  }
  mkdirSync(location.dir, { recursive: true, mode: 0o700 });
  return knexFactory({
    client: ClientPGLite as unknown as typeof knexFactory.Client,
    connection: { connectionString: `file://${location.dir}` } as Knex.StaticConnectionConfig,
    useNullAsDefault: true,
  });
}

/** Applies every pending migration (SPEC: on init and on serve). */
export async function migrate(db: Knex): Promise<void> {
  const source: Knex.MigrationSource<[string, Knex.Migration]> = {
    getMigrations: async () => [...MIGRATIONS],
    getMigrationName: ([name]) => name,
    getMigration: async ([, migration]) => migration,
  };
  await db.migrate.latest({ migrationSource: source, tableName: 'schema_migrations' });
}
