import { expect } from 'chai';
import { initialise } from '../server/ceremonies.ts';
import { serve, type RunningServer } from '../server/serve.ts';
import { createToken } from '../server/tokens.ts';
import { createTestDatabase, POSTGRES_ADMIN_URL } from './support/databases.ts';
import { BlackHoleProxy } from './support/black-hole.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { httpsJson } from './support/https.ts';

describe('a database that stops answering (PostgreSQL behind a black hole)', function () {
  this.timeout(120_000);
  let proxy: BlackHoleProxy;
  let env: TestEnvironment;
  let running: RunningServer;
  let operator: string;

  before(async () => {
    proxy = new BlackHoleProxy(Number(new URL(POSTGRES_ADMIN_URL).port || 5432));
    await proxy.start();
    // The test database, reached through the proxy; a short timeout keeps the test short.
    const database = await createTestDatabase('postgres');
    const url = new URL(database.url!);
    url.port = String(proxy.port);
    env = await createTestEnvironment('postgres', { DEVID_DATABASE_URL: url.toString(), DEVID_DB_TIMEOUT_MS: '1000' }, database);
    await initialise(env.ctx);
    running = await serve(env.ctx);
    operator = (await createToken(env.ctx.store, env.ctx.audit, { role: 'operator' }, 'cli', new Date())).token;
  });
  after(async () => {
    await running?.close();
    await env?.cleanup();
    await proxy.stop();
  });

  const call = (method: string, path: string, body?: unknown) =>
    httpsJson(running.httpsPort, running.hierarchy.root.certificate.toString('pem'), method, path, { token: operator, body });

  it('requests fail fast with 503 and Retry-After, /readyz says the database does not answer, and all recovers after', async () => {
    const model = { hwType: '1.3.6.1.4.1.99999.5', manufacturer: 'Acme' };
    expect((await call('PUT', '/operator/v1/models/m-1', model)).status).to.equal(201);
    expect((await call('GET', '/readyz')).json).to.deep.equal({ status: 'ready', database: 'ok', hsm: 'ok', signing: 'ok', crls: 'ok' });

    proxy.blackHoled = true;
    const started = Date.now();
    const refused = await call('PUT', '/operator/v1/models/m-2', model);
    expect(Date.now() - started, 'the request hung').to.be.below(15_000);
    expect(refused.status, refused.text).to.equal(503);
    expect(refused.headers['retry-after']).to.equal('5');
    expect(refused.json.type).to.equal('urn:devid-ca:problem:unavailable');
    const ready = await call('GET', '/readyz');
    expect(ready.status).to.equal(503);
    expect(ready.json.database).not.to.equal('ok');
    expect(ready.json.hsm).to.equal('ok');
    expect((await call('GET', '/healthz')).status).to.equal(200);

    proxy.heal();
    let recovered = 0;
    for (let attempt = 0; attempt < 20 && recovered !== 201; attempt += 1) {
      recovered = (await call('PUT', '/operator/v1/models/m-2', model)).status;
      if (recovered !== 201) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(recovered).to.equal(201);
    expect((await call('GET', '/readyz')).status).to.equal(200);
  });
});
