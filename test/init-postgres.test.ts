import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { freePort, runCli, serveEnv } from './support/cli.ts';
import { POSTGRES_ADMIN_URL } from './support/databases.ts';

describe('devid-ca init on PostgreSQL: creates a missing database, and a failed database step leaves nothing half made', function () {
  this.timeout(180_000);
  const name = `devid_test_init_${randomBytes(6).toString('hex')}`;
  const role = `devid_test_nocreate_${randomBytes(4).toString('hex')}`;
  const urlAs = (user: string) => {
    const url = new URL(POSTGRES_ADMIN_URL);
    url.username = user;
    url.pathname = `/${name}`;
    return url.toString();
  };
  let admin: Knex;
  let dataDir: string;
  before(async () => {
    admin = knexFactory({ client: 'pg', connection: POSTGRES_ADMIN_URL, pool: { min: 0, max: 1 } });
    await admin.raw(`create role ${role} login nocreatedb`);
  });
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-init-pg-'));
  });
  afterEach(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await admin.raw(`drop database if exists ${name} with (force)`);
  });
  after(async () => {
    await admin.raw(`drop role if exists ${role}`);
    await admin.destroy();
  });

  const databaseExists = async () => (await admin.raw('select 1 from pg_database where datname = ?', [name])).rows.length === 1;

  it('a database that does not exist is created, and init goes on', async () => {
    const { env } = await serveEnv(dataDir, { DEVID_DATABASE_URL: urlAs(new URL(POSTGRES_ADMIN_URL).username) });
    expect(await databaseExists()).to.equal(false);
    const init = runCli(['init'], env);
    expect(init.status, init.stderr).to.equal(0);
    expect(init.stderr).to.contain('initialised in');
    expect(await databaseExists()).to.equal(true);
    const tokens = runCli(['token', 'list'], env);
    expect(tokens.status, tokens.stderr).to.equal(0);

    await admin.raw(`drop database ${name} with (force)`);
    const gone = runCli(['token', 'list'], env);
    expect(gone.status).to.equal(1);
    expect(gone.stderr, gone.stderr).to.match(new RegExp(`^devid-ca: the database "${name}" of DEVID_DATABASE_URL does not exist on [^ ]+: run "devid-ca init", which creates it, or check the URL$`, 'm'));
  });

  it('a role that may not create it: one line saying what to do, no token or PIN written; init runs again once the database is there', async () => {
    const { env } = await serveEnv(dataDir, { DEVID_DATABASE_URL: urlAs(role) });
    const refused = runCli(['init'], env);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(new RegExp(`^devid-ca: the database "${name}" does not exist and the role "${role}" may not create it: create it .*DEVID_DATABASE_OWNER_URL.*run "devid-ca init" again\\n$`));
    expect(existsSync(join(dataDir, 'softhsm', 'user.pin')), 'no PIN written').to.equal(false);
    const tokens = join(dataDir, 'softhsm', 'tokens');
    expect(existsSync(tokens) && readdirSync(tokens).length > 0, 'no token made').to.equal(false);

    await admin.raw(`create database ${name} owner ${role}`);
    const again = runCli(['init'], env);
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.contain('initialised in');
  });

  it('a server it cannot reach or a role it refuses: what to do, without the password, and nothing written', async () => {
    const closed = await freePort();
    const cases: Array<[string, RegExp]> = [
      [`postgres://postgres:pw-secret@127.0.0.1:${closed}/${name}`, /^devid-ca: cannot reach PostgreSQL on 127\.0\.0\.1:\d+ \(ECONNREFUSED\): is it running there\? check the host and port of DEVID_DATABASE_URL$/m],
      [urlAs('devid_test_no_such_role').replace('@', ':pw-secret@'), /^devid-ca: PostgreSQL on .* refused the role "devid_test_no_such_role" of DEVID_DATABASE_URL .*: check its user and password$/m],
    ];
    for (const [url, pattern] of cases) {
      const { env } = await serveEnv(dataDir, { DEVID_DATABASE_URL: url, DEVID_DB_TIMEOUT_MS: '3000' });
      const result = runCli(['init'], env);
      expect(result.status).to.equal(1);
      expect(result.stderr, result.stderr).to.match(pattern);
      expect(result.stderr).not.to.contain('pw-secret');
      expect(readdirSync(dataDir), 'nothing written').to.deep.equal([]);
    }
  });
});
