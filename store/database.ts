import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
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

/** The database could not be made ready: the message says what to do. */
export class DatabaseSetupError extends Error {
  override readonly name = 'DatabaseSetupError';
}

/** A database the server does not have (PostgreSQL 3D000, invalid_catalog_name). */
const NO_SUCH_DATABASE = '3D000';

async function canConnect(url: string, timeoutMs: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === NO_SUCH_DATABASE) return false;
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The same server and role, on a database that is always there: where CREATE DATABASE runs. */
async function maintenanceClient(url: string, timeoutMs: number): Promise<pg.Client> {
  for (const name of ['postgres', 'template1']) {
    const at = new URL(url);
    at.pathname = `/${name}`;
    if (!(await canConnect(at.toString(), timeoutMs))) continue;
    const client = new pg.Client({ connectionString: at.toString(), connectionTimeoutMillis: timeoutMs });
    await client.connect();
    return client;
  }
  throw new DatabaseSetupError(`the PostgreSQL server of ${redactedUrl(url)} has neither a "postgres" nor a "template1" database to create another from: create the database yourself`);
}

/** The database a postgres:// URL names; without one, the driver's default (PGDATABASE, else the role's name). */
function databaseName(url: string): string {
  const parsed = new URL(url);
  return decodeURIComponent(parsed.pathname.slice(1)) || process.env.PGDATABASE || decodeURIComponent(parsed.username) || process.env.PGUSER || userInfo().username;
}

/** A URL fit for a message: no password. */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/**
 * init on PostgreSQL: creates the database DEVID_DATABASE_URL names when the
 * server has none of that name, as the owner role when one is given (the
 * server's role may lack CREATEDB). Returns its name when it created it.
 */
export async function createDatabaseIfMissing(location: Extract<DatabaseLocation, { kind: 'postgres' }>, timeoutMs = 10_000): Promise<string | undefined> {
  if (await canConnect(location.url, timeoutMs)) return undefined;
  const name = databaseName(location.url);
  const creator = location.ownerUrl ?? location.url;
  const admin = await maintenanceClient(creator, timeoutMs);
  try {
    await admin.query(`create database ${admin.escapeIdentifier(name)}`);
    return name;
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Another node's init created it meanwhile.
    if (code === '42P04') return undefined;
    if (code === '42501') {
      const role = decodeURIComponent(new URL(creator).username) || 'this role';
      throw new DatabaseSetupError(`the database "${name}" does not exist and the role "${role}" may not create it: create it (createdb -O <server role> ${name}, as a role with CREATEDB) or give DEVID_DATABASE_OWNER_URL a role that may, then run "devid-ca init" again`, { cause: err });
    }
    throw err;
  } finally {
    await admin.end().catch(() => {});
  }
}

/** Connection failures an operator can fix, as what went wrong and what to do (the password never shown); undefined for anything else. */
export function postgresProblem(err: unknown, url: string): DatabaseSetupError | undefined {
  const { code, message } = err as { code?: string; message?: string };
  const parsed = new URL(url);
  const name = databaseName(url);
  const role = decodeURIComponent(parsed.username) || 'the default role';
  const where = `${parsed.hostname}:${parsed.port || 5432}`;
  if (code === NO_SUCH_DATABASE) return new DatabaseSetupError(`the database "${name}" of DEVID_DATABASE_URL does not exist on ${where}: run "devid-ca init", which creates it, or check the URL`, { cause: err });
  if (code === '28P01' || code === '28000') return new DatabaseSetupError(`PostgreSQL on ${where} refused the role "${role}" of DEVID_DATABASE_URL (${message}): check its user and password`, { cause: err });
  if (typeof code === 'string' && UNREACHABLE.has(code)) return new DatabaseSetupError(`cannot reach PostgreSQL on ${where} (${code}): is it running there? check the host and port of DEVID_DATABASE_URL`, { cause: err });
  if ((err as { name?: string }).name === 'KnexTimeoutError' || /timeout/i.test(message ?? '')) return new DatabaseSetupError(`PostgreSQL on ${where} did not answer within DEVID_DB_TIMEOUT_MS: is it running and reachable? check the host and port of DEVID_DATABASE_URL`, { cause: err });
  return undefined;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET']);

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
