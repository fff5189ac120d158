import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { runCli } from './support/cli.ts';
import { POSTGRES_ADMIN_URL, type TestDatabase } from './support/databases.ts';
import { makeDeviceKey } from './support/device.ts';
import { createTestEnvironment } from './support/context.ts';

/**
 * Least privilege on PostgreSQL (docs/operators/postgresql.md, "Database roles"): the schema is the
 * owner role's; the server runs as a role that may only SELECT and INSERT
 * the audit tables, and can neither drop nor disable their triggers.
 */
describe('database roles: migrations as the owner, the server as a role that cannot rewrite the audit log', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  const suffix = randomBytes(4).toString('hex');
  const owner = `devid_owner_${suffix}`;
  const runtime = `devid_server_${suffix}`;
  const admin = () => knexFactory({ client: 'pg', connection: POSTGRES_ADMIN_URL, pool: { min: 0, max: 1 } });
  const urlFor = (role: string, database: string) => {
    const url = new URL(POSTGRES_ADMIN_URL);
    url.username = role;
    url.pathname = `/${database}`;
    return url.toString();
  };
  const databases: string[] = [];
  async function ownedDatabase(): Promise<TestDatabase & { name: string }> {
    const name = `devid_roles_${suffix}_${databases.length}`;
    const db = admin();
    try {
      await db.raw(`create database ${name} owner ${owner}`);
    } finally {
      await db.destroy();
    }
    databases.push(name);
    const url = urlFor(runtime, name);
    return { name, url, location: { kind: 'postgres', url }, drop: async () => {} };
  }
  let server: TestServer;
  let database: TestDatabase & { name: string };

  before(async () => {
    const db = admin();
    try {
      await db.raw(`create role ${owner} login`);
      await db.raw(`create role ${runtime} login`);
    } finally {
      await db.destroy();
    }
    database = await ownedDatabase();
    server = await startTestServer('postgres', { DEVID_DATABASE_OWNER_URL: urlFor(owner, database.name) }, database);
  });
  after(async () => {
    await server?.close();
    const db = admin();
    try {
      for (const name of databases) await db.raw(`drop database if exists ${name} with (force)`);
      await db.raw(`drop role if exists ${runtime}`);
      await db.raw(`drop role if exists ${owner}`);
    } finally {
      await db.destroy();
    }
  });

  it('the server works as its role: init, a birth, a revocation, all audited', async () => {
    const born = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'ROLE-1', model: 'thermo-2', batch: 'r1', csr: (await makeDeviceKey()).csrPem } });
    expect(born.status, born.text).to.equal(201);
    const revoked = await server.request('POST', `/operator/v1/certificates/${born.json.certificateSerial}/revoke`, { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    const verified = await server.request('GET', '/audit/v1/verify', { token: server.tokens.auditor });
    expect(verified.json.ok).to.equal(true);
  });

  it('as the server role, the audit log cannot be updated, deleted, truncated, dropped or have its triggers disabled; the schema cannot change', async () => {
    const db: Knex = knexFactory({ client: 'pg', connection: urlFor(runtime, database.name), pool: { min: 0, max: 1 } });
    try {
      const refused: string[] = [];
      for (const statement of [
        "update audit_events set canonical = '{}' where seq = 1",
        'delete from audit_events where seq = 1',
        'truncate audit_events',
        'alter table audit_events disable trigger all',
        'alter table audit_events disable trigger audit_events_append_only',
        'drop trigger audit_events_append_only on audit_events',
        'drop table audit_events',
        'delete from audit_checkpoints',
        'update ownership_transfers set evidence = null',
        'delete from device_firmware',
        "insert into schema_migrations (name, batch, migration_time) values ('999_evil', 1, now())",
        'delete from schema_migrations',
        'create table evil (id int)',
        'create function evil() returns int language sql as $$ select 1 $$',
      ]) {
        try {
          await db.raw(statement);
          refused.push(`ALLOWED: ${statement}`);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== '42501') refused.push(`${statement}: ${code} ${(err as Error).message}`);
        }
      }
      expect(refused).to.deep.equal([]);
      // What it may do: read, append, and the working tables.
      expect(Number((await db('audit_events').count({ n: '*' }))[0]!.n)).to.be.above(0);
      await db.raw('delete from console_sessions where false');
    } finally {
      await db.destroy();
    }
  });

  it('the server role alone starts on a current schema, and names "devid-ca migrate" when there is one to apply; migrate applies it as the owner', async () => {
    const fresh = await ownedDatabase();
    const tryOpen = async () => {
      const env = await createTestEnvironment('postgres', {}, fresh);
      await env.cleanup();
    };
    let failure: Error | undefined;
    await tryOpen().catch((err: Error) => (failure = err));
    expect(failure?.message).to.include('devid-ca migrate').and.include('DEVID_DATABASE_OWNER_URL');
    const migrated = runCli(['migrate'], { DEVID_DATABASE_URL: fresh.url!, DEVID_DATABASE_OWNER_URL: urlFor(owner, fresh.name) });
    expect(migrated.status, migrated.stderr).to.equal(0);
    expect(migrated.stderr).to.match(/migration\(s\) applied; schema current, grants to the server role applied/);
    await tryOpen();
    const same = runCli(['migrate'], { DEVID_DATABASE_URL: urlFor(owner, fresh.name), DEVID_DATABASE_OWNER_URL: urlFor(owner, fresh.name) });
    expect([same.status, same.stderr]).to.satisfy(([status, stderr]: [number, string]) => status === 1 && stderr.includes('a role of its own'));
  });
});
