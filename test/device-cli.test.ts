import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { startTestServer, type TestServer } from './support/api.ts';
import { declareModel } from '../registry/catalogue/models.ts';
import { setFirmwareAllowlist } from '../registry/catalogue/firmware-policy.ts';
import { opensslVerify } from './support/openssl.ts';
import { createTestToken, MODULE_PATH, SOFTHSM_CONF } from './support/softhsm.ts';

const DEVICE = fileURLToPath(new URL('../bin/devid-device', import.meta.url));

describe('devid-device: the reference device client from its command line', function () {
  this.timeout(180_000);
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startTestServer('pglite', { DEVID_PUBLIC_HOST: 'localhost' });
    dir = mkdtempSync(join(tmpdir(), 'devid-test-device-cli-'));
    writeFileSync(join(dir, 'root.pem'), server.rootPem);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs devid-device without blocking: the server it talks to lives in this process. */
  function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(DEVICE, args, { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', SOFTHSM2_CONF: SOFTHSM_CONF, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  it('with its factory key in a PKCS#11 token: init, birth, enroll, renew when due and now; files written atomically, key 0600', async () => {
    const token = await createTestToken();
    const state = join(dir, 'hsm-device');
    const base = `https://localhost:${server.running.httpsPort}`;
    const pin = { DEVID_DEVICE_PIN: token.pin };
    const init = await run(['--dir', state, 'init', '--serial', 'SN-CLI-1', '--ca', join(dir, 'root.pem'), '--acme', `${base}/acme/directory`,
      '--pkcs11-module', MODULE_PATH, '--pkcs11-token', token.tokenLabel, '--pkcs11-label', 'factory-key'], pin);
    expect(init.status, init.stderr).to.equal(0);
    expect(JSON.parse(readFileSync(join(state, 'device.json'), 'utf8')).factoryKey.kind).to.equal('pkcs11');
    const birth = await run(['--dir', state, 'birth', '--factory', base, '--model', 'thermo-2', '--batch', 'b1'], { ...pin, DEVID_FACTORY_TOKEN: server.tokens.factory });
    expect(birth.status, birth.stderr).to.equal(0);
    const enroll = await run(['--dir', state, 'enroll'], pin);
    expect(enroll.status, enroll.stderr).to.equal(0);
    expect(enroll.stderr).to.contain('operational certificate');
    expect(statSync(join(state, 'key.pem')).mode & 0o777).to.equal(0o600);
    const firstPem = readFileSync(join(state, 'cert.pem'), 'utf8');
    const [leaf, intermediate] = firstPem.split(/(?<=-----END CERTIFICATE-----)\s*/);
    const verified = opensslVerify(server.rootPem, intermediate, leaf!, 'sslclient');
    expect(verified.ok, verified.output).to.equal(true);

    const notDue = await run(['--dir', state, 'renew'], pin);
    expect(notDue.status, notDue.stderr).to.equal(0);
    expect(notDue.stderr).to.contain('not due');
    const renewed = await run(['--dir', state, 'renew', '--now'], pin);
    expect(renewed.status, renewed.stderr).to.equal(0);
    const second = new x509.X509Certificate(readFileSync(join(state, 'cert.pem'), 'utf8').split(/(?<=-----END CERTIFICATE-----)/)[0]!);
    const record = (await server.env.ctx.store.certificates.find(second.serialNumber))!;
    expect(record.predecessorSha256).to.equal(createHash('sha256').update(Buffer.from(new x509.X509Certificate(leaf!).rawData)).digest('hex'));

    const revoked = await run(['--dir', state, 'revoke', '--reason', 'keyCompromise'], pin);
    expect(revoked.status, revoked.stderr).to.equal(0);
    expect((await server.env.ctx.store.certificates.find(second.serialNumber))!.revocationReason).to.equal(1);
    const badReason = await run(['--dir', state, 'revoke', '--reason', 'certificateHold'], pin);
    expect(badReason.status).to.equal(1);
    const due = await run(['--dir', state, 'renew'], pin);
    expect(due.stderr, 'a revoked certificate is due for renewal at once').to.contain('renewed');
  });

  it('argument and server errors are one "devid-device:" line', async () => {
    const missing = await run(['--dir', join(dir, 'nowhere'), 'enroll']);
    expect(missing.status).to.equal(1);
    expect(missing.stderr.trim().split('\n')).to.have.length(1);
    expect(missing.stderr).to.match(/^devid-device: .*device\.json does not exist/);
    const bad = await run(['init']);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.match(/^devid-device: /);
  });

  /** A loopback port nothing listens on. */
  async function closedPort(): Promise<number> {
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
    const { port } = probe.address() as { port: number };
    await new Promise((done) => probe.close(done));
    return port;
  }

  it('says what went wrong and what to do: no birth certificate, a refusal, unreachable, plain HTTP, untrusted, wrong name, missing file, no directory', async () => {
    const state = join(dir, 'error-device');
    const base = `https://localhost:${server.running.httpsPort}`;
    const config = () => JSON.parse(readFileSync(join(state, 'device.json'), 'utf8')) as Record<string, unknown>;
    const withConfig = (change: Record<string, unknown>) => writeFileSync(join(state, 'device.json'), JSON.stringify({ ...config(), ...change }));
    const original = { ca: join(dir, 'root.pem'), acme: `${base}/acme/directory` };
    const oneLine = (result: { status: number | null; stderr: string }, pattern: RegExp) => {
      expect(result.status, result.stderr).to.equal(1);
      expect(result.stderr.trim().split('\n'), result.stderr).to.have.length(1);
      expect(result.stderr, result.stderr).to.match(pattern);
    };

    const noCa = await run(['--dir', state, 'init', '--serial', 'SN-CLI-ERR', '--ca', join(dir, 'no-root.pem')]);
    oneLine(noCa, /--ca .*no-root\.pem does not exist: give the CA's root certificate/);
    // The root as /ca/root.crt serves it (DER) is accepted as it is.
    writeFileSync(join(dir, 'root.der'), Buffer.from(new x509.X509Certificate(server.rootPem).rawData));
    const init = await run(['--dir', state, 'init', '--serial', 'SN-CLI-ERR', '--ca', join(dir, 'root.der'), '--acme', original.acme]);
    expect(init.status, init.stderr).to.equal(0);

    oneLine(await run(['--dir', state, 'enroll']), /no birth certificate in .*: run "devid-device --dir .* birth --factory/);
    const refused = await run(['--dir', state, 'birth', '--factory', base, '--model', 'thermo-2', '--batch', 'b1'], { DEVID_FACTORY_TOKEN: 'not-a-token' });
    oneLine(refused, /the factory API at https:\/\/localhost:\d+ refused \(401 Unauthorized, unauthorized\): \S/);
    expect(refused.stderr).not.to.contain('not-a-token');
    const plain = await run(['--dir', state, 'birth', '--factory', `http://localhost:${server.running.httpPort}`, '--model', 'thermo-2', '--batch', 'b1'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    oneLine(plain, /--factory http:\/\/localhost:\d+ is no https:\/\/ URL: give the CA's HTTPS listener, e\.g\. https:\/\/ca\.example\.com:8443$/m);
    const born = await run(['--dir', state, 'birth', '--factory', base, '--model', 'thermo-2', '--batch', 'b1'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    expect(born.status, born.stderr).to.equal(0);

    withConfig({ acme: `https://localhost:${await closedPort()}/acme/directory` });
    oneLine(await run(['--dir', state, 'enroll']), /cannot reach https:\/\/localhost:\d+ \(ECONNREFUSED\): is "devid-ca serve" running there\?/);
    withConfig({ acme: `https://localhost:${server.running.httpPort}/acme/directory` });
    oneLine(await run(['--dir', state, 'enroll']), /does not answer HTTPS .*is that the plain-HTTP port\?/);
    withConfig({ acme: `https://127.0.0.1:${server.running.httpsPort}/acme/directory` });
    oneLine(await run(['--dir', state, 'enroll']), /presented a certificate for another name .*DEVID_PUBLIC_HOST/);
    withConfig({ acme: `${base}/acme/no-directory` });
    oneLine(await run(['--dir', state, 'enroll']), /the CA refused \(404\b.*\/acme\/no-directory is not an ACME directory .*serves it at https:\/\/localhost:\d+\/acme\/directory$/m);

    const stranger = join(dir, 'stranger.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'stranger-key.pem'), '-out', stranger, '-subj', '/CN=stranger', '-days', '1'], { stdio: 'ignore' });
    withConfig({ ...original, ca: stranger });
    oneLine(await run(['--dir', state, 'enroll']), /presented a certificate this device does not trust .*stranger\.pem must be that CA's root certificate.*"devid-device init --ca"/);
    withConfig({ ...original, ca: join(dir, 'gone.pem') });
    oneLine(await run(['--dir', state, 'enroll']), /the CA root certificate in .*device\.json .*gone\.pem does not exist/);

    withConfig(original);
    const enrolled = await run(['--dir', state, 'enroll']);
    expect(enrolled.status, enrolled.stderr).to.equal(0);
  });

  it('reports firmware: --firmware-version with --firmware-digest or --firmware-file, kept in device.json for renewals', async () => {
    const { store, audit } = server.env.ctx;
    await declareModel(store, audit, 'test', 'fw-thermo', { hwType: '1.3.6.1.4.1.99999.1.7', manufacturer: 'Acme Devices' }, new Date());
    const image = join(dir, 'firmware-1.bin');
    writeFileSync(image, 'firmware image 1.0.0');
    const v1 = { version: '1.0.0', digest: createHash('sha256').update('firmware image 1.0.0').digest('hex') };
    const v2 = { version: '2.0.0', digest: 'ab'.repeat(32) };
    await setFirmwareAllowlist(store, audit, { actor: 'test', principal: 'test' }, 'fw-thermo', [v1], new Date());
    const state = join(dir, 'fw-device');
    const base = `https://localhost:${server.running.httpsPort}`;
    const kept = () => (JSON.parse(readFileSync(join(state, 'device.json'), 'utf8')) as { firmware?: unknown }).firmware;
    expect((await run(['--dir', state, 'init', '--serial', 'SN-CLI-FW', '--ca', join(dir, 'root.pem'), '--acme', `${base}/acme/directory`])).status).to.equal(0);
    const born = await run(['--dir', state, 'birth', '--factory', base, '--model', 'fw-thermo', '--batch', 'b1'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    expect(born.status, born.stderr).to.equal(0);

    const none = await run(['--dir', state, 'enroll']);
    expect(none.status).to.equal(1);
    expect(none.stderr).to.match(/^devid-device: the CA refused \(.*badAttestationStatement\).*firmware/);
    const half = await run(['--dir', state, 'enroll', '--firmware-version', '1.0.0']);
    expect(half.stderr).to.match(/^devid-device: --firmware-version needs --firmware-digest <hex> or --firmware-file <image>\n$/);
    const badDigest = await run(['--dir', state, 'enroll', '--firmware-version', '1.0.0', '--firmware-digest', 'abc']);
    expect(badDigest.stderr).to.match(/^devid-device: --firmware-digest must be the hex of a 32- to 64-byte digest/);

    const enrolled = await run(['--dir', state, 'enroll', '--firmware-version', '1.0.0', '--firmware-file', image]);
    expect(enrolled.status, enrolled.stderr).to.equal(0);
    expect(kept(), 'the image file is kept, to be hashed again at each renewal').to.deep.equal({ version: '1.0.0', file: image });
    const renewed = await run(['--dir', state, 'renew', '--now']);
    expect(renewed.status, 'the kept firmware is reported again: the allowlist admits it').to.equal(0);
    // The installed image changed under the same path: the next renewal reports its new digest, which the CA refuses.
    writeFileSync(image, 'firmware image 1.0.0, patched by hand');
    const rehashed = await run(['--dir', state, 'renew', '--now']);
    expect(rehashed.status).to.equal(1);
    expect(rehashed.stderr).to.match(/check 5 \(firmware\)/);
    writeFileSync(image, 'firmware image 1.0.0');

    const refused = await run(['--dir', state, 'renew', '--now', '--firmware-version', v2.version, '--firmware-digest', v2.digest]);
    expect(refused.status).to.equal(1);
    expect(kept(), 'firmware the CA refused is not kept').to.deep.equal({ version: '1.0.0', file: image });
    await setFirmwareAllowlist(store, audit, { actor: 'test', principal: 'test' }, 'fw-thermo', [v1, v2], new Date());
    const updated = await run(['--dir', state, 'renew', '--now', '--firmware-version', v2.version, '--firmware-digest', v2.digest.toUpperCase()]);
    expect(updated.status, updated.stderr).to.equal(0);
    expect(kept()).to.deep.equal(v2);
    const lineage = (await store.firmware.byDevice('SN-CLI-FW')).map((f) => f.version);
    expect(lineage, 'the firmware lineage the CA recorded').to.deep.equal(['1.0.0', '1.0.0', '2.0.0']);
  });
});
