import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { MODULE_PATH, SOFTHSM_CONF, uniqueLabel } from './support/softhsm.ts';
import { freePort, runCli, startServe } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/databases.ts';

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function expectNoStack(output: string): void {
  expect(output).not.to.match(/^\s+at /m);
}

async function serverEnv(dataDir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    DEVID_DATA_DIR: dataDir,
    DEVID_LISTEN: `127.0.0.1:${await freePort()}`,
    DEVID_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
    DEVID_LOG_LEVEL: 'warn',
    ...extra,
  };
}

describe('cli: init, serve, token (embedded defaults: PGlite and SoftHSM in the data directory)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let env: Record<string, string>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-cli-'));
    env = await serverEnv(dataDir);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('init creates the token, keys and hierarchy; the PIN file is private', () => {
    const result = runCli(['init'], env);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr).to.contain('root CA').and.to.contain('devid-root (P-384)');
    expect(statSync(join(dataDir, 'softhsm', 'user.pin')).mode & 0o777).to.equal(0o600);
    expect(statSync(join(dataDir, 'tls', 'server-key.pem')).mode & 0o777).to.equal(0o600);
  });

  it('init a second time refuses to overwrite, without a stack trace', () => {
    const result = runCli(['init'], env);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain('refusing to overwrite');
    expectNoStack(result.stderr);
  });

  it('pkcs11-tool sees the three CA keys as sensitive and never extractable', () => {
    const pin = execFileSync('cat', [join(dataDir, 'softhsm', 'user.pin')], { encoding: 'utf8' }).trim();
    const listing = execFileSync('pkcs11-tool', ['--module', MODULE_PATH, '--token-label', 'devid-ca', '--login', '--pin', pin, '--list-objects', '--type', 'privkey'], {
      encoding: 'utf8', env: { ...process.env, SOFTHSM2_CONF: join(dataDir, 'softhsm', 'softhsm2.conf') },
    });
    for (const label of ['devid-root', 'devid-factory', 'devid-operational']) {
      const block = listing.split('Private Key Object').find((b) => b.includes(`label:      ${label}`));
      expect(block, label).to.not.equal(undefined);
      expect(block).to.contain('sensitive').and.to.contain('never extractable');
    }
  });

  it('token create --json prints one line; a token request that does not fit its role fails clearly', () => {
    const ok = runCli(['token', 'create', '--role', 'operator', '--name', 'alice', '--json'], env);
    expect(ok.status, ok.stderr).to.equal(0);
    const created = JSON.parse(ok.stdout);
    expect(Object.keys(created).sort()).to.deep.equal(['id', 'name', 'role', 'token']);
    expect(created).to.include({ role: 'operator', name: 'alice' });
    expect(created.token).to.match(/^devid_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const bad = runCli(['token', 'create', '--role', 'factory'], env);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.contain('--line');
    expectNoStack(bad.stderr);
  });

  it('serve publishes the CA certificates and answers HTTPS with the server certificate; a restart keeps the keys', async () => {
    const first = await startServe(env);
    let rootDer: Buffer;
    try {
      const httpBase = `http://${env.DEVID_HTTP_LISTEN}`;
      const response = await fetch(`${httpBase}/ca/root.crt`);
      expect(response.headers.get('content-type')).to.equal('application/pkix-cert');
      rootDer = Buffer.from(await response.arrayBuffer());
      const root = new x509.X509Certificate(new Uint8Array(rootDer));
      expect(root.subject).to.contain('CN=devid-ca Root CA');
      const health = await httpsGet(`https://localhost:${env.DEVID_LISTEN!.split(':')[1]}/healthz`, root.toString('pem'));
      expect(health).to.deep.equal({ status: 200, body: '{"status":"ok"}' });
      const missing = await fetch(`${httpBase}/nothing-here`);
      expect(missing.status).to.equal(404);
      expect(missing.headers.get('content-type')).to.contain('application/problem+json');

      const second = runCli(['token', 'list'], env);
      expect(second.status).to.equal(1);
      expect(second.stderr).to.contain('PostgreSQL');
    } finally {
      expect(await first.stop()).to.equal(0);
    }
    const again = await startServe(env);
    try {
      const response = await fetch(`http://${env.DEVID_HTTP_LISTEN}/ca/root.crt`);
      expect(Buffer.from(await response.arrayBuffer()).equals(rootDer)).to.equal(true);
    } finally {
      await again.stop();
    }
  });

  it('audit verify passes on the untouched log', () => {
    const result = runCli(['audit', 'verify'], env);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^OK: \d+ events/);
  });

  it('a wrong PIN fails with a clear message and no stack trace', () => {
    const result = runCli(['serve'], { ...env, DEVID_PKCS11_PIN: 'wrong-pin' });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain('PIN for token "devid-ca" was refused');
    expect(result.stderr).not.to.contain('wrong-pin');
    expectNoStack(result.stderr);
  });

  it('a bad setting names the variable to change', () => {
    const result = runCli(['serve'], { ...env, DEVID_PREDECESSOR_OID: '2.25.329800735698586629295641978511506172918' });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain('DEVID_PREDECESSOR_OID').and.to.contain('2^28');
  });
});

describe('cli: serve --init-if-empty (npm start) and a second node on PostgreSQL', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'devid-test-node-'));
    dirs.push(d);
    return d;
  };

  before(async () => {
    database = await createTestDatabase('postgres');
  });
  after(async () => {
    await database.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the first node initialises, a second node joins the same hierarchy instead of creating one', async () => {
    const shared = { DEVID_DATABASE_URL: database.url!, SOFTHSM2_CONF: SOFTHSM_CONF, DEVID_PKCS11_TOKEN: uniqueLabel('node'), DEVID_PKCS11_PIN: 'node-pin-1234' };
    const first = await startServe(await serverEnv(dir(), shared), ['--init-if-empty']);
    const firstEnv = first.child.spawnargs;
    expect(firstEnv).to.include('--init-if-empty');
    expect(first.output()).to.contain('initialising');
    const secondEnv = await serverEnv(dir(), shared);
    const second = await startServe(secondEnv, ['--init-if-empty']);
    try {
      expect(second.output()).not.to.contain('initialising');
      const roots = await Promise.all([first, second].map(async (_node, i) => {
        const e = i === 0 ? first : second;
        const port = /HTTP on 127\.0\.0\.1:(\d+)/.exec(e.output())![1];
        return Buffer.from(await (await fetch(`http://127.0.0.1:${port}/ca/root.crt`)).arrayBuffer());
      }));
      expect(roots[0]!.equals(roots[1]!)).to.equal(true);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
