import { mkdirSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import ClientPGLite from 'knex-pglite';
import pg from 'pg';
import { MIGRATIONS } from '../migrations/index.ts';
import { currentUser, grantRuntimeRole, MIGRATION_TABLE } from './roles.ts';

/** Where the data lives: PGlite in a folder (embedded default) or a PostgreSQL URL. */
export type DatabaseLocation = { kind: 'pglite'; dir: string } | { kind: 'postgres'; url: string; ownerUrl?: string };

// BIGINT (audit sequence numbers) fits a JS number for the life of any CA.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface DatabaseOptions {
  /**
   * PostgreSQL: how long to wait for a connection, and for a statement (on
   * the server, with a client-side backstop for a network that black-holes
   * the answer). Without it a lost database makes requests hang for minutes.
   */
  timeoutMs?: number;
  /**
   * Where the driver's own complaints go (a connection lost, an acquire that
   * failed): to the server's log as one JSON line each, not to the console.
   * They are warnings: the request that met them answers 503 by itself.
   */
  warn?: (message: string) => void;
}

export function openDatabase(location: DatabaseLocation, options: DatabaseOptions = {}): Knex {
  if (location.kind === 'postgres') {
    const timeoutMs = options.timeoutMs;
    const timeouts = timeoutMs
      ? { connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs, query_timeout: timeoutMs + 2000, idle_in_transaction_session_timeout: 6 * timeoutMs }
      : {};
    const warn = options.warn;
    return knexFactory({
      ...(warn ? { log: { warn, error: warn, deprecate: warn, debug: () => {} } } : {}),
      client: 'pg',
      connection: { connectionString: location.url, keepAlive: true, ...timeouts } as Knex.PgConnectionConfig,
      pool: { min: 0, max: 10, ...(timeoutMs ? { acquireTimeoutMillis: timeoutMs, createTimeoutMillis: timeoutMs } : {}) },
      ...(timeoutMs ? { acquireConnectionTimeout: timeoutMs } : {}),
    });
  }
  mkdirSync(location.dir, { recursive: true, mode: 0o700 });
  return knexFactory({
    client: ClientPGLite as unknown as typeof knexFactory.Client,
    connection: { connectionString: `file://${location.dir}` } as Knex.StaticConnectionConfig,
    useNullAsDefault: true,
  });
}

/** The migrations this database has not had yet (all of them for an empty one). */
export async function pendingMigrations(db: Knex): Promise<string[]> {
  const applied = (await db.schema.hasTable(MIGRATION_TABLE)) ? new Set((await db(MIGRATION_TABLE).select('name')).map((r: { name: string }) => r.name)) : new Set<string>();
  return MIGRATIONS.map(([name]) => name).filter((name) => !applied.has(name));
}

/**
 * Applies every pending migration (on init and on serve). On
 * PostgreSQL with its own connection and no statement timeout: a migration
 * over a large table may take longer than any request should. With an owner
 * role (DEVID_DATABASE_OWNER_URL) the migrations run as the owner, which
 * then grants the server's role what it needs and no more (store/roles.ts).
 * Without one, a server whose role may not change the schema starts when
 * there is nothing to migrate, and says what to run when there is.
 */
export async function migrate(db: Knex, location: DatabaseLocation): Promise<string[]> {
  const source: Knex.MigrationSource<[string, Knex.Migration]> = {
    getMigrations: async () => [...MIGRATIONS],
    getMigrationName: ([name]) => name,
    getMigration: async ([, migration]) => migration,
  };
  // knex answers [batch number, names of the migrations it applied].
  const latest = async (migrator: Knex) => ((await migrator.migrate.latest({ migrationSource: source, tableName: MIGRATION_TABLE })) as [number, string[]])[1];
  // Two reads answer "nothing to do", where knex's migrator costs most of a second at every start.
  const ownerUrl = location.kind === 'postgres' ? location.ownerUrl : undefined;
  if (!ownerUrl && (await pendingMigrations(db)).length === 0) return [];
  if (location.kind === 'pglite') return latest(db);
  const migrator = openDatabase({ kind: 'postgres', url: location.ownerUrl ?? location.url });
  try {
    const applied = await latest(migrator);
    if (location.ownerUrl) await grantRuntimeRole(migrator, decodeURIComponent(new URL(location.url).username) || (await currentUser(db)));
    return applied;
  } catch (err) {
    if ((err as { code?: string }).code === '42501' && !location.ownerUrl) {
      throw new Error('the schema needs migrating and the role of DEVID_DATABASE_URL may not change it: run "devid-ca migrate" with DEVID_DATABASE_OWNER_URL set to the owner role', { cause: err });
    }
    throw err;
  } finally {
    await migrator.destroy();
  }
}

/**
 * PostgreSQL error classes that mean "not now" rather than "wrong": connection
 * lost, shutting down, timed out, and the disk full or memory out (53100,
 * 53200): the request can be tried again once the space is there.
 */
const UNAVAILABLE_CODES = new Set(['53100', '53200', '57014', '57P01', '57P02', '57P03', '53300', '25P03', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE']);
const UNAVAILABLE_MESSAGES = /No space left on device|ENOSPC|Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|connection timeout/i;

/** The database did not answer (or answered "not now"): callers answer 503 and try again later. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { name, code, message } = err as { name?: string; code?: string; message?: string };
  if (name === 'KnexTimeoutError') return true;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  return UNAVAILABLE_MESSAGES.test(message ?? '');
}
