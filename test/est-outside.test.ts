import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { PUBLIC_HOST } from './support/acme-device.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { bornDevice, certsOf, estCsr, estSession, newKey } from './support/est-client.ts';
import { opensslVerify } from './support/openssl.ts';

const GO_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'support', 'go-est-client', 'main.go');
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse', est: true };

/** A command run without blocking the event loop the in-process server answers on. */
function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const hasCommand = (name: string) => spawnSync(name, ['version'], { stdio: 'ignore' }).error === undefined;

/** Clients written from RFC 7030 alone, not from this code: curl with openssl, and a Go client built with the standard library. */
describe('EST with outside clients: curl and openssl, and a Go EST client', function () {
  this.timeout(180_000);
  let server: TestServer;
  let dir: string;
  let serial = 0;

  before(async () => {
    server = await startTestServer('pglite');
    dir = mkdtempSync(join(tmpdir(), 'devid-test-est-outside-'));
    writeFileSync(join(dir, 'root.pem'), server.rootPem);
    const put = await server.request('PUT', '/operator/v1/device-classes/default', { token: server.tokens.operator, body: CLASS });
    expect(put.status, put.text).to.be.oneOf([200, 201]);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function device(): Promise<{ serial: string; cert: string; key: string }> {
    const name = `EST-O${++serial}`;
    const birth = await bornDevice(server, name);
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}.key`);
    writeFileSync(cert, birth.certPem);
    writeFileSync(key, birth.keyPem, { mode: 0o600 });
    return { serial: name, cert, key };
  }

  /** curl over TLS 1.3 to the test server's public host name (run asynchronously: the server is in this process); the status, then the body. */
  async function curl(path: string, ...args: string[]): Promise<{ status: number; type: string; body: string }> {
    const port = server.running.httpsPort;
    const result = await run('curl', [
      '-sS', '--max-time', '30', '--tlsv1.3', '--cacert', join(dir, 'root.pem'), '--resolve', `${PUBLIC_HOST}:${port}:127.0.0.1`,
      '-o', join(dir, 'body'), '-w', '%{http_code} %{content_type}', ...args, `https://${PUBLIC_HOST}:${port}${path}`,
    ]);
    expect(result.code, result.stderr).to.equal(0);
    const [status, ...type] = result.stdout.split(' ');
    return { status: Number(status), type: type.join(' '), body: readFileSync(join(dir, 'body'), 'utf8') };
  }

  function openssl(...args: string[]): string {
    const result = spawnSync('openssl', args, { encoding: 'utf8' });
    expect(result.status, result.stderr).to.equal(0);
    return result.stdout;
  }

  it('curl: cacerts (read by openssl pkcs7) and csrattrs (by openssl asn1parse) with the birth certificate; simpleenroll without a binding is a 400 with a reason', async () => {
    const { serial: name, cert, key } = await device();
    const cacerts = await curl('/.well-known/est/cacerts');
    expect([cacerts.status, cacerts.type]).to.deep.equal([200, 'application/pkcs7-mime']);
    writeFileSync(join(dir, 'cacerts.p7'), Buffer.from(cacerts.body.replace(/\s+/g, ''), 'base64'));
    const chain = openssl('pkcs7', '-inform', 'DER', '-in', join(dir, 'cacerts.p7'), '-print_certs');
    expect(chain.match(/-----BEGIN CERTIFICATE-----/g)).to.have.length(2);

    const attrs = await curl('/.well-known/est/csrattrs', '--cert', cert, '--key', key);
    expect([attrs.status, attrs.type]).to.deep.equal([200, 'application/csrattrs']);
    writeFileSync(join(dir, 'csrattrs.der'), Buffer.from(attrs.body.replace(/\s+/g, ''), 'base64'));
    expect(openssl('asn1parse', '-inform', 'DER', '-in', join(dir, 'csrattrs.der'))).to.include('challengePassword');

    // openssl makes a CSR with no challengePassword: curl cannot compute the session's exporter, so the request is refused.
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'new.key'), '-subj', `/CN=${name}`, '-outform', 'DER', '-out', join(dir, 'new.csr'));
    writeFileSync(join(dir, 'new.b64'), readFileSync(join(dir, 'new.csr')).toString('base64'));
    const refused = await curl('/.well-known/est/simpleenroll', '--cert', cert, '--key', key, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${join(dir, 'new.b64')}`);
    expect([refused.status, refused.type]).to.deep.equal([400, 'text/plain; charset=utf-8']);
    expect(refused.body).to.match(/challengePassword/);
    // Without the client certificate: 403.
    const anonymous = await curl('/.well-known/est/simpleenroll', '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${join(dir, 'new.b64')}`);
    expect(anonymous.status).to.equal(403);
  });

  it('a Go EST client (crypto/tls ExportKeyingMaterial) enrolls with its birth certificate; openssl verifies what it got', async function () {
    if (!hasCommand('go')) this.skip();
    const { serial: name, cert, key } = await device();
    const build = join(dir, 'go');
    const source = join(dir, 'main.go');
    copyFileSync(GO_CLIENT, source);
    const built = spawnSync('go', ['build', '-o', build, source], { encoding: 'utf8', cwd: dir, env: { ...process.env, GO111MODULE: 'off', GOFLAGS: '' } });
    expect(built.status, built.stderr).to.equal(0);
    const out = join(dir, 'issued.pem');
    const client = await run(build, [`127.0.0.1:${server.running.httpsPort}`, PUBLIC_HOST, join(dir, 'root.pem'), cert, key, name, out]);
    expect(client.code, `${client.stdout}${client.stderr}`).to.equal(0);
    expect(client.stdout).to.include(`enrolled ${name}`);
    const issued = readFileSync(out, 'utf8');
    const verified = opensslVerify(server.rootPem, server.running.hierarchy.operational.certificate.toString('pem'), issued, 'sslclient');
    expect(verified.ok, verified.output).to.equal(true);
  });

  it('the Go EST client as a gateway: its operational certificate enrolls a declared constrained device, which gets a mediated certificate Go verifies', async function () {
    if (!hasCommand('go')) this.skip();
    const operator = (method: string, path: string, body: unknown) => server.request(method, path, { token: server.tokens.operator, body });
    expect((await operator('PUT', '/operator/v1/models/go-sensor', { hwType: '1.3.6.1.4.1.99999.1.40', manufacturer: 'Acme Devices', defaultClass: 'default' })).status).to.be.oneOf([200, 201]);
    expect((await operator('PUT', '/operator/v1/device-classes/go-gateways', { ...CLASS, gateway: { models: ['go-sensor'] } })).status).to.be.oneOf([200, 201]);
    // The gateway: born, of the gateway class, enrolled (its operational key kept for the Go client).
    const gateway = await device();
    expect((await operator('PUT', `/operator/v1/devices/${gateway.serial}/class`, { class: 'go-gateways' })).status).to.equal(200);
    const key = await newKey();
    const session = await estSession(server, { keyPem: readFileSync(gateway.key, 'utf8'), certPem: readFileSync(gateway.cert, 'utf8') });
    const answer = await session.request('POST', '/.well-known/est/simpleenroll', await estCsr(key, { name: `CN=${gateway.serial}`, challengePassword: session.binding }), { 'content-type': 'application/pkcs10' });
    session.close();
    expect(answer.status, answer.text).to.equal(200);
    writeFileSync(join(dir, 'gw-op.pem'), certsOf(answer.text)[0]!.toString());
    writeFileSync(join(dir, 'gw-op.key'), key.keyPem, { mode: 0o600 });
    expect((await operator('POST', '/operator/v1/devices', { serial: 'GO-SENSOR-1', model: 'go-sensor', gateways: [gateway.serial] })).status).to.equal(201);

    const build = join(dir, 'go');
    if (!existsSync(build)) {
      copyFileSync(GO_CLIENT, join(dir, 'main.go'));
      expect(spawnSync('go', ['build', '-o', build, join(dir, 'main.go')], { encoding: 'utf8', cwd: dir, env: { ...process.env, GO111MODULE: 'off', GOFLAGS: '' } }).status).to.equal(0);
    }
    const out = join(dir, 'mediated.pem');
    const client = await run(build, [`127.0.0.1:${server.running.httpsPort}`, PUBLIC_HOST, join(dir, 'root.pem'), join(dir, 'gw-op.pem'), join(dir, 'gw-op.key'), 'GO-SENSOR-1', out]);
    expect(client.code, `${client.stdout}${client.stderr}`).to.equal(0);
    expect(client.stdout).to.include('enrolled GO-SENSOR-1');
    const text = spawnSync('openssl', ['x509', '-in', out, '-noout', '-text'], { encoding: 'utf8' }).stdout;
    expect(text).to.contain('Policy: 1.3.6.1.4.1.99999.20.2');
    // A device the gateway is not declared for: the Go client is refused, with RFC 7030's text/plain reason.
    const refused = await run(build, [`127.0.0.1:${server.running.httpsPort}`, PUBLIC_HOST, join(dir, 'root.pem'), join(dir, 'gw-op.pem'), join(dir, 'gw-op.key'), 'GO-SENSOR-2', join(dir, 'none.pem')]);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/simpleenroll: 403 no device GO-SENSOR-2/);
  });
});
