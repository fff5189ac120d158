import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { ASSURANCE_POLICY } from '../ca/asn1.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { declareConstrainedDevice } from '../registry/catalogue/constrained-devices.ts';
import { assignDeviceClass, checkDeviceClass, putDeviceClass } from '../registry/catalogue/device-classes.ts';
import { declareModel } from '../registry/catalogue/models.ts';
import { deviceHistory } from '../registry/reports/device-history.ts';

const DEVICE = fileURLToPath(new URL('../bin/devid-device', import.meta.url));
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse' };

const leafOf = (pem: string) => new X509Certificate(pem.split(/(?<=-----END CERTIFICATE-----)/)[0]!);
const policiesOf = (cert: X509Certificate) => new x509.X509Certificate(new Uint8Array(cert.raw)).getExtension(x509.CertificatePolicyExtension)?.policies ?? [];

describe('devid-device over EST: enroll --est, renew --est, and a gateway enrolling the constrained devices of a list', function () {
  this.timeout(180_000);
  let server: TestServer;
  let dir: string;
  // The operator's steps through the registry (the server's certificate names localhost, not the test API client's host).
  const ctx = () => server.env.ctx;
  const deviceClass = (name: string, body: Record<string, unknown>) => putDeviceClass(ctx().store, ctx().audit, 'test', checkDeviceClass(name, body), new Date());

  before(async () => {
    server = await startTestServer('pglite', { DEVID_PUBLIC_HOST: 'localhost' });
    dir = mkdtempSync(join(tmpdir(), 'devid-test-est-device-'));
    writeFileSync(join(dir, 'root.pem'), server.rootPem);
    await declareModel(ctx().store, ctx().audit, 'test', 'sensor-9', { hwType: '1.3.6.1.4.1.99999.1.30', manufacturer: 'Acme Devices' }, new Date());
    await deviceClass('gateways', { ...CLASS, est: true, gateway: { models: ['sensor-9'] } });
    await deviceClass('sensors', { ...CLASS, ttl: '6h', est: true });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(DEVICE, args, { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...env } });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (status) => resolve({ status, stderr }));
    });
  }

  it('a device enrolls and renews over EST; as a gateway it enrolls the declared devices of its list as mediated, one directory each', async () => {
    const state = join(dir, 'gw');
    const base = `https://localhost:${server.running.httpsPort}`;
    expect((await run(['--dir', state, 'init', '--serial', 'GW-CLI-1', '--ca', join(dir, 'root.pem'), '--est', `${base}/.well-known/est/gateways`])).status).to.equal(0);
    const birth = await run(['--dir', state, 'birth', '--factory', base, '--model', 'thermo-2', '--batch', 'b1'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    expect(birth.status, birth.stderr).to.equal(0);
    await assignDeviceClass(ctx().store, ctx().audit, 'test', 'GW-CLI-1', 'gateways', new Date());

    const enrolled = await run(['--dir', state, 'enroll', '--est']);
    expect(enrolled.status, enrolled.stderr).to.equal(0);
    expect(enrolled.stderr).to.contain('enrolled over EST');
    expect(statSync(join(state, 'key.pem')).mode & 0o777).to.equal(0o600);
    const first = leafOf(readFileSync(join(state, 'cert.pem'), 'utf8'));
    expect(first.subject).to.equal('CN=GW-CLI-1');
    const renewed = await run(['--dir', state, 'renew', '--est']);
    expect(renewed.status, renewed.stderr).to.equal(0);
    const second = leafOf(readFileSync(join(state, 'cert.pem'), 'utf8'));
    const record = (await server.env.ctx.store.certificates.bySha256(createHash('sha256').update(second.raw).digest('hex')))!;
    expect(record.predecessorSha256).to.equal(createHash('sha256').update(first.raw).digest('hex'));

    for (const serial of ['CS-1', 'CS-2']) await declareConstrainedDevice(ctx().store, ctx().audit, 'test', { serial, model: 'sensor-9', class: 'sensors', gateways: ['GW-CLI-1'] }, new Date());
    writeFileSync(join(dir, 'list.txt'), '# behind GW-CLI-1\nCS-1\nCS-2\n\nCS-UNDECLARED\n');
    const out = join(dir, 'constrained');
    const batch = await run(['--dir', state, 'gateway', 'enroll', join(dir, 'list.txt'), '--label', 'sensors', '--out', out]);
    expect(batch.status, batch.stderr).to.equal(1);
    expect(batch.stderr).to.match(/CS-UNDECLARED: the CA refused \(403\)/);
    expect(batch.stderr).to.contain('1 of 3 device(s) not enrolled');
    for (const serial of ['CS-1', 'CS-2']) {
      const cert = leafOf(readFileSync(join(out, serial, 'cert.pem'), 'utf8'));
      expect(cert.subject).to.equal(`CN=${serial}`);
      expect(policiesOf(cert)).to.deep.equal([ASSURANCE_POLICY.mediated]);
      expect(new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()).to.equal(6 * 3600_000 + 5 * 60_000);
      expect(statSync(join(out, serial, 'key.pem')).mode & 0o777).to.equal(0o600);
      expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(join(out, serial, 'key.pem'))))).to.equal(true);
    }
    // Again: each device re-enrolls (its certificate succeeds the one it had).
    writeFileSync(join(dir, 'list2.txt'), 'CS-1\n');
    const firstCs1 = leafOf(readFileSync(join(out, 'CS-1', 'cert.pem'), 'utf8'));
    const again = await run(['--dir', state, 'gateway', 'enroll', join(dir, 'list2.txt'), '--label', 'sensors', '--out', out]);
    expect(again.status, again.stderr).to.equal(0);
    const secondCs1 = leafOf(readFileSync(join(out, 'CS-1', 'cert.pem'), 'utf8'));
    expect(secondCs1.serialNumber).to.not.equal(firstCs1.serialNumber);
    const history = (await deviceHistory(ctx().store, 'CS-1'))!;
    expect(history.certificates.map((c) => c.mediator?.serial)).to.deep.equal(['GW-CLI-1', 'GW-CLI-1']);
  });
});
