import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initialise } from '../server/ceremonies.ts';
import { serve, type RunningServer } from '../server/serve.ts';
import { createToken } from '../server/tokens.ts';
import { rawConnection } from '../store/test-access.ts';
import { BlackHoleProxy } from './support/black-hole.ts';
import { runCli, serveEnv, startServe } from './support/cli.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { createTestDatabase, POSTGRES_ADMIN_URL, type TestDatabase } from './support/databases.ts';
import { makeDeviceKey } from './support/device.ts';
import { httpsRequest } from './support/https.ts';
import { checkAnswersAgainstOpenapi } from './support/openapi.ts';
import { rootPemOf } from './support/publication.ts';

/** Every device has its birth certificate and its birth event: nothing half-written. */
async function checkNothingHalfWritten(env: TestEnvironment): Promise<number> {
  const db = rawConnection(env.ctx.store);
  const devices = (await db('devices').select('serial')).map((r: { serial: string }) => r.serial);
  const births = new Set((await db('certificates').where({ kind: 'birth' }).select('device_serial')).map((r: { device_serial: string }) => r.device_serial));
  const events = new Set((await db('audit_events').where({ action: 'device.manufactured' }).select('device_serial')).map((r: { device_serial: string }) => r.device_serial));
  expect(devices.filter((d) => !births.has(d) || !events.has(d))).to.deep.equal([]);
  return devices.length;
}

describe('faults: PostgreSQL restarted under load, a server killed in a batch revocation (issue 12)', function () {
  this.timeout(240_000);
  checkAnswersAgainstOpenapi();

  it('a database restart (every connection cut, refused for 3 s): each request answers within bounded time, nothing is half-written, work resumes by itself', async () => {
    const proxy = new BlackHoleProxy(Number(new URL(POSTGRES_ADMIN_URL).port || 5432));
    await proxy.start();
    const database = await createTestDatabase('postgres');
    const url = new URL(database.url!);
    url.port = String(proxy.port);
    const env = await createTestEnvironment('postgres', { DEVID_DATABASE_URL: url.toString(), DEVID_DB_TIMEOUT_MS: '1000' }, database);
    let running: RunningServer | undefined;
    try {
      await initialise(env.ctx);
      running = await serve(env.ctx);
      const rootPem = running.hierarchy.root.certificate.toString('pem');
      const factory = (await createToken(env.ctx.store, env.ctx.audit, { role: 'factory', line: 'l1' }, 'cli', new Date())).token;
      const auditor = (await createToken(env.ctx.store, env.ctx.audit, { role: 'auditor' }, 'cli', new Date())).token;
      const operator = (await createToken(env.ctx.store, env.ctx.audit, { role: 'operator' }, 'cli', new Date())).token;
      const model = await httpsRequest(running.httpsPort, rootPem, 'PUT', '/operator/v1/models/f1', { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, JSON.stringify({ hwType: '1.3.6.1.4.1.99999.6', manufacturer: 'F' }));
      expect(model.status).to.equal(201);
      const csrs = await Promise.all(Array.from({ length: 60 }, async () => (await makeDeviceKey()).csrPem));
      const statuses: number[] = [];
      const slowest: number[] = [];
      let restarted = false;
      await Promise.all(Array.from({ length: 4 }, async (_, worker) => {
        for (let i = worker; i < csrs.length; i += 4) {
          if (i === 20 && !restarted) {
            restarted = true;
            proxy.drop();
            setTimeout(() => proxy.up(), 3000);
          }
          const started = Date.now();
          const answer = await httpsRequest(running!.httpsPort, rootPem, 'POST', '/factory/v1/birth-certificates',
            { authorization: `Bearer ${factory}`, 'content-type': 'application/json' }, JSON.stringify({ serial: `F-${i}`, model: 'f1', batch: 'fb', csr: csrs[i] }));
          slowest.push(Date.now() - started);
          statuses.push(answer.status);
          if (answer.status === 503) expect(answer.headers['retry-after']).to.be.a('string');
        }
      }));
      expect(statuses.every((s) => s === 201 || s === 503), statuses.join(',')).to.equal(true);
      expect(statuses.filter((s) => s === 503).length).to.be.above(0);
      expect(Math.max(...slowest)).to.be.below(10_000);
      // Back by itself once the database is: new requests work, readiness says so, and the chain has no event waiting.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      let after = await httpsRequest(running.httpsPort, rootPem, 'POST', '/factory/v1/birth-certificates',
        { authorization: `Bearer ${factory}`, 'content-type': 'application/json' }, JSON.stringify({ serial: 'F-after', model: 'f1', batch: 'fb', csr: (await makeDeviceKey()).csrPem }));
      for (let tries = 0; after.status === 503 && tries < 20; tries += 1) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        after = await httpsRequest(running.httpsPort, rootPem, 'POST', '/factory/v1/birth-certificates',
          { authorization: `Bearer ${factory}`, 'content-type': 'application/json' }, JSON.stringify({ serial: 'F-after', model: 'f1', batch: 'fb', csr: (await makeDeviceKey()).csrPem }));
      }
      expect(after.status, after.text).to.equal(201);
      const deadline = Date.now() + 15_000;
      while (await env.ctx.store.audit.anyPending()) {
        if (Date.now() > deadline) throw new Error('pending audit events were not chained after the database came back');
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect((await httpsRequest(running.httpsPort, rootPem, 'GET', '/readyz', {})).status).to.equal(200);
      const devices = await checkNothingHalfWritten(env);
      expect(devices).to.be.at.least(statuses.filter((s) => s === 201).length + 1);
      const verified = await httpsRequest(running.httpsPort, rootPem, 'GET', '/audit/v1/verify', { authorization: `Bearer ${auditor}` });
      expect(verified.json.ok, verified.text).to.equal(true);
    } finally {
      await running?.close();
      await env.cleanup();
      await proxy.stop();
    }
  });

  describe('kill -9 in the middle of a batch revocation', () => {
    let dataDir: string;
    let database: TestDatabase;
    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'devid-test-faults-'));
      database = await createTestDatabase('postgres');
    });
    after(async () => {
      rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    });

    it('the restarted server resumes the batch where it stopped and finishes it: every certificate revoked once, the chain intact', async () => {
      const { env, httpsPort, httpPort } = await serveEnv(dataDir, { DEVID_DATABASE_URL: database.url!, DEVID_PUBLIC_HOST: 'ca.devid.test' });
      let serve1 = await startServe(env, ['--init-if-empty']);
      const rootPem = await rootPemOf(httpPort);
      const token = (role: string, ...extra: string[]) => JSON.parse(runCli(['token', 'create', '--role', role, ...extra, '--json'], env).stdout).token as string;
      const factory = token('factory', '--line', 'l1');
      const operator = token('operator');
      const call = (method: string, path: string, bearer: string, body?: unknown) => httpsRequest(httpsPort, rootPem, method, path,
        { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body === undefined ? undefined : JSON.stringify(body));
      expect((await call('PUT', '/operator/v1/models/k1', operator, { hwType: '1.3.6.1.4.1.99999.7', manufacturer: 'K' })).status).to.equal(201);
      const DEVICES = 1000;
      for (let start = 0; start < DEVICES; start += 50) {
        // A factory key of its own for each device: one key for two serials is refused as a clone.
        const requests = await Promise.all(Array.from({ length: 50 }, async (_, i) => ({ serial: `K-${String(start + i).padStart(4, '0')}`, model: 'k1', batch: 'kb', csr: (await makeDeviceKey()).csrPem })));
        const made = await call('POST', '/factory/v1/birth-certificates/batch', factory, { requests });
        expect((made.json.results as Array<{ status: number }>).every((r) => r.status === 201), made.text.slice(0, 300)).to.equal(true);
      }
      let serve2: Awaited<ReturnType<typeof startServe>> | undefined;
      try {
        void call('POST', '/operator/v1/batches/kb/revoke', operator, { reason: 'keyCompromise' }).catch(() => undefined);
        // Killed once the first chunks are done and before the last.
        let progress: { devices: number; finished: boolean } = { devices: 0, finished: false };
        while (progress.devices === 0) {
          const answer = await call('GET', '/operator/v1/batches/kb/revocation', operator);
          if (answer.status === 200) progress = answer.json;
        }
        serve1.child.kill('SIGKILL');
        await new Promise((resolve) => serve1.child.once('exit', resolve));
        expect(progress.finished, 'the batch finished before the kill: make it larger').to.equal(false);

        serve2 = await startServe(env);
        const deadline = Date.now() + 120_000;
        do {
          await new Promise((resolve) => setTimeout(resolve, 500));
          progress = (await call('GET', '/operator/v1/batches/kb/revocation', operator)).json;
        } while (!progress.finished && Date.now() < deadline);
        expect(progress).to.include({ finished: true, devices: DEVICES });
        const db = (await import('knex')).default({ client: 'pg', connection: database.url!, pool: { min: 0, max: 1 } });
        try {
          const live = await db('certificates').where({ kind: 'birth' }).whereNull('revoked_at').count({ n: '*' });
          expect(Number(live[0]!.n)).to.equal(0);
          const twice = await db('audit_events').where({ action: 'certificate.revoked' }).groupBy('device_serial').havingRaw('count(*) > 1').select('device_serial');
          expect(twice).to.deep.equal([]);
          expect(Number((await db('devices').where({ batch: 'kb' }).whereNot({ state: 'quarantined' }).count({ n: '*' }))[0]!.n)).to.equal(0);
        } finally {
          await db.destroy();
        }
        expect(JSON.parse(runCli(['audit', 'verify', '--json'], env).stdout)).to.include({ ok: true });
      } finally {
        if (serve2) await serve2.stop();
        else if (serve1.child.exitCode === null) await serve1.stop();
      }
    });
  });
});
