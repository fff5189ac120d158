import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecurityLevel } from '@peculiar/asn1-android';
import { AcmeClient } from '../client/acme-client.ts';
import { Device, type EnrollOptions } from '../client/device.ts';
import { fileFactoryKey } from '../client/factory-key.ts';
import { createToken } from '../server/tokens.ts';
import { verifyExport } from '../registry/audit/export-verify.ts';
import { ANDROID_STATUS_LIST } from '../pki/attestation/android-key/status-list.ts';
import { directoryUrl, PUBLIC_HOST, refused, toLoopback } from './support/acme-device.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import type { DatabaseKind } from './support/databases.ts';
import { androidAttestation, appleAttestation, platformCa, type AndroidOptions, type PlatformCa } from './support/platform-ca.ts';

const PIXEL = { name: 'pixel-9', hwType: '1.3.6.1.4.1.99999.9.1', manufacturer: 'Google' };
const MAC = { name: 'macbook-m4', hwType: '1.3.6.1.4.1.99999.9.2', manufacturer: 'Apple' };
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse' };

/** Google's status list, served on loopback as the test sets it: entries, or down (503). */
async function statusServer(): Promise<{ url: string; entries: Record<string, unknown>; down: boolean; close(): Promise<void> }> {
  const state = { entries: {} as Record<string, unknown>, down: false };
  const server: Server = createServer((_req, res) => {
    if (state.down) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ entries: state.entries }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/attestation/status`;
  return Object.assign(state, { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
}


for (const kind of ['pglite', 'postgres'] as DatabaseKind[]) {
  describe(`android-key and apple: devices claimed by (manufacturer, serial) enroll with their platform's attestation (${kind})`, function () {
    this.timeout(180_000);
    checkAnswersAgainstOpenapi();
    let server: TestServer;
    let status: Awaited<ReturnType<typeof statusServer>>;
    let google: PlatformCa;
    let apple: PlatformCa;
    let rogue: PlatformCa;
    let dir: string;
    let serial = 0;
    const alice = (method: string, path: string, body?: unknown) => server.request(method, path, { token: server.tokens.operator, ...(body === undefined ? {} : { body }) });

    async function register(id: string, ca: PlatformCa, models: string[]): Promise<void> {
      const bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: `bob-${id}` }, 'cli', new Date())).token;
      const proposed = await alice('PUT', `/operator/v1/manufacturers/${id}`, { certificates: [ca.rootPem], models, crl: null });
      expect(proposed.status, proposed.text).to.equal(201);
      const approved = await server.request('POST', `/operator/v1/manufacturers/${id}/approve`, { token: bob, body: { proposal: proposed.json.pending.sha256 } });
      expect(approved.status, approved.text).to.equal(200);
    }

    /** A device claimed by (manufacturer, serial) in a class; its "factory key" is never used, these formats attest with a fresh key. */
    async function claimed(manufacturer: string, model: string, deviceClass: string): Promise<Device> {
      const name = `${manufacturer}-${kind}-${++serial}`;
      const claim = await alice('POST', `/operator/v1/devices/${name}/claim`, { manufacturer, model });
      expect(claim.status, claim.text).to.equal(201);
      expect(claim.json.birthCertificateSha256).to.equal(null);
      if (deviceClass !== 'default') expect((await alice('PUT', `/operator/v1/devices/${name}/class`, { class: deviceClass })).status).to.equal(200);
      const deviceDir = mkdtempSync(join(dir, 'device-'));
      writeFileSync(join(deviceDir, 'factory-key.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
      const acme = new AcmeClient(directoryUrl(server), Device.accountKey(deviceDir), server.rootPem, toLoopback);
      return new Device(name, deviceDir, await fileFactoryKey(join(deviceDir, 'factory-key.pem')), acme, PUBLIC_HOST);
    }

    const newKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const android = (device: Device, options: Partial<AndroidOptions> = {}): EnrollOptions => {
      const key = newKey();
      return { newKey: key, x5c: [], buildAttestation: androidAttestation({ ca: google, key, serial: device.serial, ...options }) };
    };


    before(async () => {
      status = await statusServer();
      server = await startTestServer(kind, { DEVID_ANDROID_STATUS_URL: status.url });
      dir = mkdtempSync(join(tmpdir(), 'devid-test-platform-'));
      [google, apple, rogue] = await Promise.all([platformCa('Google'), platformCa('Apple'), platformCa('Rogue')]);
      for (const model of [PIXEL, MAC]) expect((await alice('PUT', `/operator/v1/models/${model.name}`, { hwType: model.hwType, manufacturer: model.manufacturer })).status).to.equal(201);
      await register('google', google, [PIXEL.name]);
      await register('apple', apple, [MAC.name]);
      for (const [name, formats] of [['android', ['android-key']], ['mac', ['apple']]] as const) {
        expect((await alice('PUT', `/operator/v1/device-classes/${name}`, { ...CLASS, attestationFormats: formats })).status).to.equal(201);
      }
    });
    after(async () => {
      await server?.close();
      await status?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('an Android device enrolls with android-key, then renews; its first certificate has no predecessor, the second succeeds it', async () => {
      const device = await claimed('google', PIXEL.name, 'android');
      const first = await device.enroll(android(device));
      expect(first.certificate.subject).to.equal(`CN=${device.serial}`);
      const second = await device.enroll(android(device));
      const history = (await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor })).json;
      const attested = history.events.filter((e: { action: string }) => e.action === 'device.attested');
      expect(attested.map((e: { data: { fmt: string } }) => e.data.fmt)).to.deep.equal(['android-key', 'android-key']);
      const enrolled = history.events.find((e: { action: string }) => e.action === 'device.enrolled');
      expect(enrolled.data.predecessorKind).to.equal('none');
      expect(enrolled.data.predecessorSha256).to.equal(null);
      const certificates = history.certificates as Array<{ serial: string; predecessorSha256: string | null; sha256: string }>;
      const firstRecord = certificates.find((c) => c.serial.toLowerCase() === first.certificate.serialNumber.toLowerCase())!;
      expect(firstRecord.predecessorSha256).to.equal(null);
      expect(certificates.find((c) => c.serial.toLowerCase() === second.certificate.serialNumber.toLowerCase())!.predecessorSha256).to.equal(firstRecord.sha256);
      expect(history.claim.birthCertificateSha256).to.equal(null);
    });

    it('android-key is refused naming the check: a wrong challenge, Software security level, a serial only in softwareEnforced, another device\'s serial', async () => {
      const device = await claimed('google', PIXEL.name, 'android');
      await refused(device, android(device, { challenge: () => Buffer.from('another.challenge') }), 'badAttestationStatement', /^check 3 \(attestationChallenge\)/);
      await refused(device, android(device, { securityLevel: SecurityLevel.software }), 'badAttestationStatement', /^check 3 \(attestationSecurityLevel\): .*Software/);
      await refused(device, android(device, { softwareSerialOnly: true }), 'badAttestationStatement', /^check 2 \(serial\): attestationIdSerial is only in softwareEnforced/);
      await refused(device, android(device, { serial: 'someone-else' }), 'badAttestationStatement', /^check 2 \(serial\)/);
      expect((await device.enroll(android(device))).certificate.subject).to.equal(`CN=${device.serial}`);
    });

    it('android-key is refused for a chain to an unregistered root, and in a class that does not list the format', async () => {
      const device = await claimed('google', PIXEL.name, 'android');
      await refused(device, android(device, { ca: rogue }), 'badAttestationStatement', /^check 1 \(chain\)/);
      const plain = await claimed('google', PIXEL.name, 'default');
      await refused(plain, android(plain), 'badAttestationStatement', /^format: device class default accepts attestation formats devid, not android-key/);
    });

    it('a certificate of the chain on the status list refuses the attestation; an unreachable list refuses every android-key attestation with a clear detail', async () => {
      const device = await claimed('google', PIXEL.name, 'android');
      status.entries = { [google.intermediate.serialNumber.toLowerCase().replace(/^0+/, '')]: { status: 'REVOKED', reason: 'KEY_COMPROMISE' } };
      await ANDROID_STATUS_LIST.refresh(new Date());
      await refused(device, android(device), 'badAttestationStatement', /^check 1 \(status list\): the certificate with serial [0-9a-f]+ of the chain is REVOKED/);
      status.entries = {};
      status.down = true;
      ANDROID_STATUS_LIST.configure('http://127.0.0.1:1/attestation/status');
      await refused(device, android(device), 'badAttestationStatement', /^check 1 \(status list\): the Android attestation status list is unavailable \(none has been read; http:\/\/127\.0\.0\.1:1/);
      ANDROID_STATUS_LIST.configure(status.url);
      await refused(device, android(device), 'badAttestationStatement', /status list is unavailable .*HTTP 503/);
      status.down = false;
      await ANDROID_STATUS_LIST.refresh(new Date());
      expect((await device.enroll(android(device))).certificate.subject).to.equal(`CN=${device.serial}`);
    });

    it('a Mac enrolls with apple (the freshness code is SHA-256 of the token alone); refused for a code over the key authorization, another serial, an unregistered root', async () => {
      const device = await claimed('apple', MAC.name, 'mac');
      const mac = (options: { serial?: string; ca?: PlatformCa; nonceOf?: (token: string, keyAuthorization: string) => string } = {}): EnrollOptions => {
        const key = newKey();
        return { newKey: key, x5c: [], buildAttestation: appleAttestation({ ca: apple, key, serial: device.serial, ...options }) };
      };
      await refused(device, mac({ nonceOf: (_token, keyAuthorization) => keyAuthorization }), 'badAttestationStatement', /^check 3 \(nonce\)/);
      await refused(device, mac({ serial: 'C02-OTHER' }), 'badAttestationStatement', /^check 2 \(serial\)/);
      await refused(device, mac({ ca: rogue }), 'badAttestationStatement', /^check 1 \(chain\)/);
      expect((await device.enroll(mac())).certificate.subject).to.equal(`CN=${device.serial}`);
    });

    it('a genuine Android device nobody claimed is refused and audited as an unclaimed attestation; no device record is made', async () => {
      const name = `stray-${kind}`;
      const deviceDir = mkdtempSync(join(dir, 'device-'));
      writeFileSync(join(deviceDir, 'factory-key.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
      const device = new Device(name, deviceDir, await fileFactoryKey(join(deviceDir, 'factory-key.pem')), new AcmeClient(directoryUrl(server), Device.accountKey(deviceDir), server.rootPem, toLoopback), PUBLIC_HOST);
      await refused(device, android(device), 'badAttestationStatement', new RegExp(`^check 1 \\(claim\\): device ${name} of manufacturer google is not claimed`));
      await refused(device, android(device, { ca: rogue }), 'badAttestationStatement', /^check 1 \(chain\): x5c\[0\] does not chain to a registered manufacturer/);
      expect((await server.request('GET', `/audit/v1/devices/${name}/history`, { token: server.tokens.auditor })).status).to.equal(404);
      const exported = (await server.request('GET', '/audit/v1/export', { token: server.tokens.auditor })).text;
      const event = exported.split('\n').find((line) => line.includes('device.unclaimed-attestation') && line.includes(name));
      expect(JSON.parse(JSON.parse(event!).canonical).data).to.include({ fmt: 'android-key', manufacturer: 'google' });
    });

    it("the auditor's fleet export, with certificates that have no predecessor, verifies offline", async () => {
      const exported = await server.request('GET', '/audit/v1/export', { token: server.tokens.auditor });
      expect(exported.status).to.equal(200);
      const path = join(dir, 'fleet.jsonl');
      writeFileSync(path, exported.text);
      const report = await verifyExport(path, server.rootPem);
      expect(report.problems).to.deep.equal([]);
      expect(report.ok).to.equal(true);
    });

    it('a device claimed with a birth certificate may not attest with android-key, nor one claimed by serial with devid', async () => {
      const name = `birth-bound-${kind}`;
      const claim = await alice('POST', `/operator/v1/devices/${name}/claim`, { manufacturer: 'google', model: PIXEL.name, birthCertificateSha256: 'a'.repeat(64) });
      expect(claim.status, claim.text).to.equal(201);
      expect((await alice('PUT', `/operator/v1/devices/${name}/class`, { class: 'android' })).status).to.equal(200);
      const deviceDir = mkdtempSync(join(dir, 'device-'));
      writeFileSync(join(deviceDir, 'factory-key.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
      const device = new Device(name, deviceDir, await fileFactoryKey(join(deviceDir, 'factory-key.pem')), new AcmeClient(directoryUrl(server), Device.accountKey(deviceDir), server.rootPem, toLoopback), PUBLIC_HOST);
      await refused(device, android(device), 'badAttestationStatement', /^check 1 \(claim\): .*claimed with a birth certificate/);
      const bySerial = await claimed('google', PIXEL.name, 'default');
      await refused(bySerial, { x5c: [Buffer.from(google.intermediate.rawData)] }, 'badAttestationStatement', /^check 1 \(claim\): .*claimed by serial, without a birth certificate: .*not with devid/);
    });
  });
}
