import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import knexFactory from 'knex';
import { makeDeviceKey } from './support/device.ts';
import { MODULE_PATH, SOFTHSM_CONF, uniqueLabel } from './support/softhsm.ts';
import { runCli, serveEnv, startServe } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/databases.ts';

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function httpsCall(url: string, ca: string, method: string, token: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false, method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function expectNoStack(output: string): void {
  expect(output).not.to.match(/^\s+at /m);
}

describe('cli: init, serve, token (embedded defaults: PGlite and SoftHSM in the data directory)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let env: Record<string, string>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-cli-'));
    env = (await serveEnv(dataDir)).env;
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

  it('pkcs11-tool sees the three CA keys, the audit key and the OCSP responder keys as sensitive, never extractable, for signing only', () => {
    const pin = execFileSync('cat', [join(dataDir, 'softhsm', 'user.pin')], { encoding: 'utf8' }).trim();
    const listing = execFileSync('pkcs11-tool', ['--module', MODULE_PATH, '--token-label', 'devid-ca', '--login', '--pin', pin, '--list-objects', '--type', 'privkey'], {
      encoding: 'utf8', env: { ...process.env, SOFTHSM2_CONF: join(dataDir, 'softhsm', 'softhsm2.conf') },
    });
    for (const label of ['devid-root', 'devid-factory', 'devid-operational', 'devid-audit', 'devid-ocsp-factory-1', 'devid-ocsp-operational-1']) {
      const block = listing.split('Private Key Object').find((b) => b.includes(`label:      ${label}`));
      expect(block, label).to.not.equal(undefined);
      expect(block).to.contain('sensitive').and.to.contain('never extractable');
      expect(/Usage:\s+(.*)/.exec(block!)![1]!.trim(), label).to.equal('sign');
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

      // The CLI goes through the running server's admin socket (0600): the embedded database serves one process.
      expect(statSync(join(dataDir, 'admin.sock')).mode & 0o777).to.equal(0o600);
      const listed = runCli(['token', 'list'], env);
      expect(listed.status, listed.stderr).to.equal(0);
      expect(listed.stdout.split('\n')[0]).to.equal('ID\tROLE\tPRINCIPAL\tSTATE\tSCOPE');
      const created = runCli(['token', 'create', '--role', 'operator', '--name', 'live-op', '--json'], env);
      expect(created.status, created.stderr).to.equal(0);
      const operatorToken = (JSON.parse(created.stdout) as { token: string }).token;
      const declared = await httpsCall(`https://localhost:${env.DEVID_LISTEN!.split(':')[1]}/operator/v1/models/live-1`, root.toString('pem'), 'PUT', operatorToken, { hwType: '1.3.6.1.4.1.99999.7', manufacturer: 'Live' });
      expect(declared.status, declared.body).to.equal(201);
      const history = runCli(['device', 'history', 'nobody'], env);
      expect([history.status, history.stderr.trim()]).to.deep.equal([1, 'devid-ca: no device nobody']);
      const verified = runCli(['audit', 'verify', '--json'], env);
      expect(JSON.parse(verified.stdout).ok).to.equal(true);
      // What must stay local is refused over the socket, however it is spelt.
      for (const argv of [['serve'], ['--', 'serve'], ['--', 'ca', 'rollover', 'operational'], ['init']]) {
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = connect(join(dataDir, 'admin.sock'));
          let text = '';
          socket.on('data', (chunk) => (text += chunk));
          socket.on('end', () => resolve(text));
          socket.on('error', reject);
          socket.write(`${JSON.stringify(argv)}\n`);
        });
        expect(answer.trim().split('\n').at(-1), argv.join(' ')).to.equal('{"x":1}');
      }
      const second = runCli(['serve'], env);
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

  it('--version, and argument errors as one "devid-ca:" line with no help dump', () => {
    const version = runCli(['--version'], env);
    expect(version.status).to.equal(0);
    expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+$/);
    for (const args of [['token', 'create', '--role', 'nope'], ['token', 'create', '--bogus'], ['no-such-command'], ['token', 'create']]) {
      const result = runCli(args, env);
      expect(result.status, args.join(' ')).to.equal(1);
      expect(result.stderr.trim().split('\n'), args.join(' ')).to.have.length(1);
      expect(result.stderr, args.join(' ')).to.match(/^devid-ca: /);
      expect(result.stdout).to.equal('');
    }
  });

  it('token list has a header; --models refuses models nobody declared', () => {
    const list = runCli(['token', 'list'], env);
    expect(list.status, list.stderr).to.equal(0);
    expect(list.stdout.split('\n')[0]).to.equal('ID\tROLE\tPRINCIPAL\tSTATE\tSCOPE');
    const scoped = runCli(['token', 'create', '--role', 'factory', '--line', 'l1', '--models', 'never-declared'], env);
    expect(scoped.status).to.equal(1);
    expect(scoped.stderr).to.contain('model never-declared is not declared');
  });

  it('a serve killed with SIGKILL leaves no lock behind: the next start is not refused', async () => {
    const killed = await startServe(env);
    killed.child.kill('SIGKILL');
    await new Promise((resolve) => killed.child.once('exit', resolve));
    const list = runCli(['token', 'list'], env);
    expect(list.status, list.stderr).to.equal(0);
  });

  it('audit verify passes on the untouched log, with a checkpoint kept in a file', () => {
    const checkpoint = runCli(['audit', 'checkpoint'], env);
    expect(checkpoint.status, checkpoint.stderr).to.equal(0);
    const file = join(dataDir, 'kept-checkpoint.json');
    writeFileSync(file, checkpoint.stdout);
    const result = runCli(['audit', 'verify', '--checkpoint', file], env);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^OK: \d+ events, head [0-9a-f]{64}, \d+ signed checkpoints/);
    writeFileSync(file, '{"seq": 1}');
    const bad = runCli(['audit', 'verify', '--checkpoint', file], env);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.contain('lacks seq, head, at, key or signature');
  });

  it('crl publish signs the intermediates\' CRLs, --root the root\'s; revoke refuses what it cannot do, in one line', () => {
    const intermediates = runCli(['crl', 'publish'], env);
    expect(intermediates.status, intermediates.stderr).to.equal(0);
    expect(intermediates.stderr).to.match(/factory: CRL number \d+ with 0 entries/).and.match(/operational: CRL number \d+ with 0 entries/);
    const root = runCli(['crl', 'publish', '--root'], env);
    expect(root.status, root.stderr).to.equal(0);
    expect(root.stderr).to.match(/root: CRL number \d+ with 0 entries, next update/);
    const unknown = runCli(['revoke', 'certificate', '00ff', '--reason', 'keyCompromise'], env);
    expect(unknown.status).to.equal(1);
    expect(unknown.stderr.trim()).to.equal('devid-ca: no certificate with serial 00ff');
    const hold = runCli(['revoke', 'device', 'dev-1', '--reason', 'certificateHold'], env);
    expect(hold.status).to.equal(1);
    expect(hold.stderr).to.match(/the revocation reason must be one of unspecified, keyCompromise/);
    expectNoStack(hold.stderr);
    const batch = runCli(['revoke', 'batch', 'empty-batch', '--reason', 'keyCompromise'], env);
    expect(batch.status, batch.stderr).to.equal(0);
    expect(batch.stderr).to.match(/batch empty-batch revoked: 0 devices/);
  });

  it('lifecycle from a shell: device-class, firmware, report rotation; device actions name what is wrong in one line', () => {
    const declared = runCli(['device-class', 'field', '--ttl', '12h', '--factory-reattest-every', '7d', '--server-auth'], env);
    expect(declared.status, declared.stderr).to.equal(0);
    expect(JSON.parse(declared.stdout)).to.deep.equal({ name: 'field', ttl: '12h', stagedRenewal: false, factoryReattestEvery: '7d', serverAuth: true, counterRequired: false, onCloneSignal: 'refuse', attestationFormats: ['devid'], est: false, onWithdrawnFirmware: 'refuse' });
    const suspending = runCli(['device-class', 'field-fw', '--ttl', '12h', '--factory-reattest-every', '7d', '--on-withdrawn-firmware', 'suspend'], env);
    expect(suspending.status, suspending.stderr).to.equal(0);
    expect(JSON.parse(suspending.stdout).onWithdrawnFirmware).to.equal('suspend');
    expect(runCli(['device-class', 'field-fw', '--ttl', '12h', '--factory-reattest-every', '7d', '--on-withdrawn-firmware', 'quarantine'], env).stderr).to.match(/onWithdrawnFirmware must be/);
    const bad = runCli(['device-class', 'field', '--ttl', '12 hours', '--factory-reattest-every', '7d'], env);
    expect(bad.status).to.equal(1);
    expect(bad.stderr.trim()).to.match(/^devid-ca: ttl must be a duration/);
    const unknownModel = runCli(['firmware', 'no-such-model', `1.0=${'ab'.repeat(32)}`], env);
    expect(unknownModel.status).to.equal(1);
    expect(unknownModel.stderr.trim()).to.equal('devid-ca: no model no-such-model');
    const report = runCli(['report', 'rotation', '--csv'], env);
    expect(report.status, report.stderr).to.equal(0);
    expect(report.stdout.split('\r\n')[0]).to.equal('serial,model,owner,class,state,reasons,certificate,notAfter');
    for (const args of [['device', 'transfer', 'nobody', '--to', 'x', '--evidence', 'y'], ['device', 'decommission', 'nobody', '--reason', 'x'], ['device', 'suspend', 'nobody']]) {
      const result = runCli(args, env);
      expect(result.status, args.join(' ')).to.equal(1);
      expect(result.stderr.trim().split('\n'), args.join(' ')).to.have.length(1);
      expectNoStack(result.stderr);
    }
  });

  it('the recorded identity changes only through `identity set`, audited', () => {
    const refused = runCli(['identity', 'set', '--http-base-url', 'https://pki.example.com'], env);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.contain('--http-base-url must be a plain http:// URL');
    const changed = runCli(['identity', 'set', '--public-host', 'ca.example.com'], env);
    expect(changed.status, changed.stderr).to.equal(0);
    expect(JSON.parse(runCli(['identity', 'show'], { ...env, DEVID_PUBLIC_HOST: 'other.example.com' }).stdout)).to.include({ publicHost: 'ca.example.com' });
    expect(runCli(['audit', 'verify'], env).status).to.equal(0);
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

describe('cli: keys recorded by CKA_ID (embedded defaults)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let env: Record<string, string>;
  const pinOf = () => readFileSync(join(dataDir, 'softhsm', 'user.pin'), 'utf8').trim();
  const tool = (...args: string[]) => spawnSync('pkcs11-tool', ['--module', MODULE_PATH, '--token-label', 'devid-ca', '--login', '--pin', pinOf(), ...args], {
    encoding: 'utf8', env: { ...process.env, SOFTHSM2_CONF: join(dataDir, 'softhsm', 'softhsm2.conf') },
  });

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-keys-'));
    env = (await serveEnv(dataDir)).env;
    expect(runCli(['init'], env).status).to.equal(0);
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('serve refuses to start when the token lost the audit key, naming it, rather than make a new one', () => {
    expect(tool('--delete-object', '--type', 'privkey', '--label', 'devid-audit').status).to.equal(0);
    const result = runCli(['serve'], env);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain('devid-audit').and.to.contain('CKA_ID').and.to.contain('restore the token');
    expectNoStack(result.stderr);
    expect(tool('--list-objects', '--type', 'privkey').stdout).not.to.contain('devid-audit');
  });

  it('serve refuses to start when an intermediate key is missing, naming its label and CKA_ID', () => {
    expect(tool('--delete-object', '--type', 'privkey', '--label', 'devid-factory').status).to.equal(0);
    const result = runCli(['serve'], env);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/CKA_ID [0-9a-f]{32} \("devid-factory"\)/);
  });

  it('ca rollover operational: a new devid-operational-2 key and intermediate; both published; the old key stays', async () => {
    const rolled = runCli(['ca', 'rollover', 'operational'], env);
    expect(rolled.status, rolled.stderr).to.equal(0);
    expect(rolled.stderr).to.contain('new operational-2 CA').and.to.contain('devid-operational-2');
    const listing = tool('--list-objects', '--type', 'privkey').stdout;
    for (const label of ['devid-operational', 'devid-operational-2']) expect(listing).to.contain(`label:      ${label}\n`);
    const serving = await startServe(env);
    try {
      const get = async (path: string) => Buffer.from(await (await fetch(`http://${env.DEVID_HTTP_LISTEN}${path}`)).arrayBuffer());
      const first = new x509.X509Certificate(new Uint8Array(await get('/ca/operational.crt')));
      const second = new x509.X509Certificate(new Uint8Array(await get('/ca/operational-2.crt')));
      expect(first.subject).to.match(/CN=devid-ca Operational CA$/);
      expect(second.subject).to.contain('CN=devid-ca Operational CA 2');
      expect(first.publicKey.rawData).not.to.deep.equal(second.publicKey.rawData);
    } finally {
      await serving.stop();
    }
    expect(runCli(['audit', 'verify'], env).status).to.equal(0);
  });
});

describe('cli: npm start', function () {
  this.timeout(120_000);

  it('SIGTERM to npm stops the server too: no orphan keeps the port or the data directory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devid-test-npm-'));
    try {
      const env = (await serveEnv(dataDir)).env;
      const npm = spawn('npm', ['start', '--silent'], { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      npm.stdout!.on('data', (c) => (output += c));
      npm.stderr!.on('data', (c) => (output += c));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`npm start did not come up:\n${output}`)), 90_000);
        npm.stderr!.on('data', () => output.includes('devid-ca: serving') && (clearTimeout(timer), resolve()));
        npm.once('exit', () => reject(new Error(`npm start exited:\n${output}`)));
      });
      npm.kill('SIGTERM');
      await new Promise((resolve) => npm.once('exit', resolve));
      // The listener is gone and the data directory can be opened again at once.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const refused = await fetch(`http://${env.DEVID_HTTP_LISTEN}/healthz`).then(() => false, () => true);
      expect(refused, 'the HTTP listener still answers after npm was stopped').to.equal(true);
      const list = runCli(['token', 'list'], env);
      expect(list.status, list.stderr).to.equal(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
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

  it('the first node initialises, a second node joins the same hierarchy; both append to one audit chain', async () => {
    const shared = { DEVID_DATABASE_URL: database.url!, SOFTHSM2_CONF: SOFTHSM_CONF, DEVID_PKCS11_TOKEN: uniqueLabel('node'), DEVID_PKCS11_PIN: 'node-pin-1234' };
    const firstEnv = (await serveEnv(dir(), shared)).env;
    const first = await startServe(firstEnv, ['--init-if-empty']);
    expect(first.output()).to.contain('creating the CA keys');
    const secondEnv = (await serveEnv(dir(), shared)).env;
    const second = await startServe(secondEnv, ['--init-if-empty']);
    try {
      expect(second.output()).not.to.contain('creating the CA keys');
      const nodes = [firstEnv, secondEnv];
      const roots = await Promise.all(nodes.map(async (e) => Buffer.from(await (await fetch(`http://${e.DEVID_HTTP_LISTEN}/ca/root.crt`)).arrayBuffer())));
      expect(roots[0]!.equals(roots[1]!)).to.equal(true);
      const rootPem = new x509.X509Certificate(new Uint8Array(roots[0]!)).toString('pem');

      // With PostgreSQL, the CLI works while the servers run.
      const token = (role: string, ...extra: string[]) => JSON.parse(runCli(['token', 'create', '--role', role, '--json', ...extra], firstEnv).stdout).token as string;
      const operator = token('operator');
      const factory = token('factory', '--line', 'line-9');
      const call = (e: Record<string, string>, method: string, path: string, auth: string, body: unknown) =>
        httpsCall(`https://localhost:${e.DEVID_LISTEN!.split(':')[1]}${path}`, rootPem, method, auth, body);
      expect((await call(firstEnv, 'PUT', '/operator/v1/models/thermo-2', operator, { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme' })).status).to.equal(201);
      const requests = await Promise.all(Array.from({ length: 24 }, async (_, i) => {
        const key = await makeDeviceKey();
        return call(nodes[i % 2]!, 'POST', '/factory/v1/birth-certificates', factory, { serial: `SN-N${i}`, model: 'thermo-2', batch: 'b1', csr: key.csrPem });
      }));
      expect(requests.map((r) => r.status)).to.deep.equal(Array(24).fill(201));
      const verify = runCli(['audit', 'verify', '--json'], firstEnv);
      expect(verify.status, verify.stdout + verify.stderr).to.equal(0);
      const report = JSON.parse(verify.stdout);
      expect(report.ok).to.equal(true);
      expect(report.events).to.be.at.least(24 + 4);

      const history = runCli(['device', 'history', 'SN-N3'], secondEnv);
      expect(history.status, history.stderr).to.equal(0);
      expect(history.stdout).to.contain('device SN-N3').and.to.contain('device.manufactured').and.to.match(/birth\s+[0-9a-f]{32}/);
      expect(runCli(['device', 'history', 'SN-NONE'], secondEnv).stderr).to.contain('no device SN-NONE');

      // An edit made directly in the database is caught by the CLI, naming the event.
      const admin = knexFactory({ client: 'pg', connection: database.url!, pool: { min: 0, max: 1 } });
      try {
        await admin.transaction(async (trx) => {
          await trx.raw('set local session_replication_role = replica');
          await trx.raw("update audit_events set canonical = replace(canonical, 'SN-N5', 'SN-X5') where seq = (select seq from audit_events where device_serial = 'SN-N5')");
        });
        const seq = (await admin('audit_events').where({ device_serial: 'SN-N5' }).first()).seq;
        const broken = runCli(['audit', 'verify'], firstEnv);
        expect(broken.status).to.equal(1);
        expect(broken.stdout).to.contain(`FAILED at event ${seq}`);
      } finally {
        await admin.destroy();
      }
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
