import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serveEnv, startServe } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/databases.ts';
import { makeDeviceKey } from './support/device.ts';
import { httpsRequest } from './support/https.ts';
import { rootPemOf } from './support/publication.ts';

const childrenOf = (pid: number) => {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** Issue 12: `serve --workers N` on one PostgreSQL. */
describe('serve --workers: several server processes on one PostgreSQL', function () {
  this.timeout(240_000);
  let dataDir: string;
  let database: TestDatabase;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-workers-'));
    database = await createTestDatabase('postgres');
  });
  after(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await database?.drop();
  });

  it('refuses --workers on the embedded PGlite database, naming why', () => {
    const refused = runCli(['serve', '--workers', '2'], { DEVID_DATA_DIR: join(dataDir, 'pglite') });
    expect([refused.status, refused.stderr.trim()]).to.deep.equal([1, 'devid-ca: --workers needs PostgreSQL (DEVID_DATABASE_URL): the embedded PGlite database serves one process']);
    expect(runCli(['serve', '--workers', '0'], { DEVID_DATA_DIR: join(dataDir, 'pglite') }).stderr).to.include('1 to 99');
  });

  it('two workers share the listeners; a worker killed with -9 is started again while the other serves; SIGTERM stops all', async () => {
    const { env, httpsPort, httpPort } = await serveEnv(dataDir, { DEVID_DATABASE_URL: database.url!, DEVID_PUBLIC_HOST: 'ca.devid.test' });
    const serve = await startServe(env, ['--init-if-empty', '--workers', '2']);
    try {
      expect(serve.output()).to.include('with 2 workers');
      const workers = childrenOf(serve.child.pid!);
      expect(workers).to.have.length(2);
      const rootPem = await rootPemOf(httpPort);
      const factory = JSON.parse(runCli(['token', 'create', '--role', 'factory', '--line', 'l1', '--json'], env).stdout).token as string;
      const operator = JSON.parse(runCli(['token', 'create', '--role', 'operator', '--json'], env).stdout).token as string;
      const model = await httpsRequest(httpsPort, rootPem, 'PUT', '/operator/v1/models/w1', { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, JSON.stringify({ hwType: '1.3.6.1.4.1.99999.8', manufacturer: 'W' }));
      expect(model.status, model.text).to.equal(201);
      const birth = async (serial: string) => httpsRequest(httpsPort, rootPem, 'POST', '/factory/v1/birth-certificates',
        { authorization: `Bearer ${factory}`, 'content-type': 'application/json' }, JSON.stringify({ serial, model: 'w1', batch: 'wb', csr: (await makeDeviceKey()).csrPem }));
      const first = await Promise.all(Array.from({ length: 12 }, (_, i) => birth(`W-${i}`)));
      expect(first.map((r) => r.status)).to.deep.equal(Array(12).fill(201));

      process.kill(workers[0]!, 'SIGKILL');
      // The other worker goes on serving while the killed one comes back. A request that was on the killed
      // worker's connection fails, and is tried again as a client behind a load balancer would.
      const retried = async (serial: string) => {
        for (let attempt = 0; ; attempt += 1) {
          try {
            return await birth(serial);
          } catch (err) {
            if (attempt >= 2) throw err;
          }
        }
      };
      const during = await Promise.all(Array.from({ length: 6 }, (_, i) => retried(`W-k${i}`)));
      expect(during.every((r) => r.status === 201), during.map((r) => r.status).join(',')).to.equal(true);
      const deadline = Date.now() + 60_000;
      while (!serve.output().includes('worker 0 stopped (SIGKILL)') || childrenOf(serve.child.pid!).length < 2) {
        if (Date.now() > deadline) throw new Error(`the worker did not come back:\n${serve.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      const after = await Promise.all(Array.from({ length: 6 }, (_, i) => birth(`W-a${i}`)));
      expect(after.map((r) => r.status)).to.deep.equal(Array(6).fill(201));
      const verified = runCli(['audit', 'verify', '--json'], env);
      expect(JSON.parse(verified.stdout)).to.include({ ok: true });
    } finally {
      expect(await serve.stop()).to.equal(0);
    }
  });
});
