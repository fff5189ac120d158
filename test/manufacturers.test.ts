import { expect } from 'chai';
import { sign as nodeSign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import { AcmeClient } from '../client/acme-client.ts';
import { Device } from '../client/device.ts';
import { fileFactoryKey } from '../client/factory-key.ts';
import { createToken } from '../server/tokens.ts';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import { verifyExport } from '../registry/audit/export-verify.ts';
import { fetchCrl } from '../registry/manufacturers/manufacturer-crl.ts';
import { verifyOwnershipChain } from '../registry/manufacturers/ownership-statements.ts';
import { directoryUrl, makeDevice, PUBLIC_HOST, toLoopback } from './support/acme-device.ts';
import { checkAnswersAgainstOpenapi, startTestServer, TEST_MODEL, type TestServer } from './support/api.ts';
import type { DatabaseKind } from './support/databases.ts';
import { httpRequest, opensslOcsp } from './support/publication.ts';
import { crlServer, outsideCa, type Birth, type CrlServer, type OutsideCa } from './support/outside-ca.ts';

const SENSOR = { name: 'sensor-a', hwType: '1.3.6.1.4.1.99999.7.1', manufacturer: 'Initech' };
const CAMERA = { name: 'cam-b', hwType: '1.3.6.1.4.1.99999.7.2', manufacturer: 'Globex' };

/** A device born at an outside manufacturer: its factory key and birth chain as the manufacturer left them. */
async function outsideDevice(server: TestServer, birth: Birth): Promise<Device> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-test-outside-'));
  writeFileSync(join(dir, 'factory-key.pem'), birth.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'birth.pem'), birth.chainPem);
  const acme = new AcmeClient(directoryUrl(server), Device.accountKey(dir), server.rootPem, toLoopback);
  return new Device(birth.serial, dir, await fileFactoryKey(join(dir, 'factory-key.pem')), acme, PUBLIC_HOST);
}

async function refusal(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (err) {
    return String(err instanceof Error ? err.message : err);
  }
  throw new Error('expected a refusal');
}

for (const kind of ['pglite', 'postgres'] as DatabaseKind[]) {
  describe(`devices born elsewhere: manufacturers, manifests, claims, their revocation (${kind})`, function () {
    this.timeout(180_000);
    checkAnswersAgainstOpenapi();
    let server: TestServer;
    let bob: string;
    let dir: string;
    let initech: OutsideCa;
    let globex: OutsideCa;
    let rogue: OutsideCa;
    let initechCrl: CrlServer & { serve(ca: OutsideCa): void };
    const as = (token: string) => (method: string, path: string, body?: unknown) => server.request(method, path, { token, ...(body === undefined ? {} : { body }) });
    const alice = (method: string, path: string, body?: unknown) => as(server.tokens.operator)(method, path, body);
    const history = async (serial: string) => {
      const answer = await server.request('GET', `/audit/v1/devices/${serial}/history`, { token: server.tokens.auditor });
      return answer.status === 404 ? undefined : answer.json;
    };
    const state = async (serial: string) => (await history(serial))?.device?.state as string | undefined;

    /** Registers a manufacturer: proposed by alice, approved by bob. */
    async function register(id: string, ca: OutsideCa, models: string[], crl: unknown) {
      const proposed = await alice('PUT', `/operator/v1/manufacturers/${id}`, { certificates: [ca.rootPem, ca.intermediatePem], models, crl });
      expect(proposed.status, proposed.text).to.equal(201);
      expect(proposed.json.status).to.equal('pending');
      const approved = await as(bob)('POST', `/operator/v1/manufacturers/${id}/approve`, { proposal: proposed.json.pending.sha256 });
      expect(approved.status, approved.text).to.equal(200);
      return approved.json;
    }

    before(async () => {
      server = await startTestServer(kind, { DEVID_MANUFACTURER_CRL_POLL: '1s' });
      bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
      dir = mkdtempSync(join(tmpdir(), 'devid-test-oems-'));
      initechCrl = await crlServer('initech');
      initech = outsideCa('initech', join(dir, 'initech'), { crlUrl: initechCrl.url });
      initechCrl.serve(initech);
      globex = outsideCa('globex', join(dir, 'globex'));
      rogue = outsideCa('rogue', join(dir, 'rogue'));
      for (const model of [SENSOR, CAMERA]) expect((await alice('PUT', `/operator/v1/models/${model.name}`, { hwType: model.hwType, manufacturer: model.manufacturer })).status).to.equal(201);
    });
    after(async () => {
      await initechCrl?.close();
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a manufacturer is registered by one operator and approved by another; bad anchors are refused with the field named', async () => {
      const bad = [
        [{ certificates: ['not a pem'], models: [SENSOR.name], crl: null }, 400, /certificates\[0\]/],
        [{ certificates: [initech.intermediatePem], models: [SENSOR.name], crl: null }, 400, /root/],
        [{ certificates: [initech.rootPem, rogue.intermediatePem], models: [SENSOR.name], crl: null }, 400, /does not chain/],
        [{ certificates: [initech.rootPem], models: ['no-such-model'], crl: null }, 404, /no model/],
        [{ certificates: [initech.rootPem], models: [SENSOR.name] }, 400, /crl is required/],
        [{ certificates: [initech.rootPem], models: [SENSOR.name], crl: { url: 'file:///etc/passwd' } }, 400, /crl.url/],
        [{ certificates: [initech.rootPem], models: [SENSOR.name], crl: null, extra: 1 }, 400, /unknown field/],
      ] as const;
      for (const [body, status, detail] of bad) {
        const answer = await alice('PUT', '/operator/v1/manufacturers/initech', body);
        expect(answer.status, JSON.stringify(body).slice(0, 80)).to.equal(status);
        expect(answer.json.detail).to.match(detail);
      }
      expect((await alice('PUT', '/operator/v1/manufacturers/self', { certificates: [initech.rootPem], models: [SENSOR.name], crl: null })).status).to.equal(409);
      const proposed = await alice('PUT', '/operator/v1/manufacturers/initech', { certificates: [initech.rootPem, initech.intermediatePem], models: [SENSOR.name], crl: { url: initechCrl.url } });
      expect(proposed.status, proposed.text).to.equal(201);
      // A new manufacturer's change is all additions.
      expect(proposed.json.pending.diff.certificates.added).to.have.length(2);
      expect(proposed.json.pending.diff.certificates.removed).to.deep.equal([]);
      expect(proposed.json.pending.diff.crl).to.deep.equal({ before: null, after: { url: initechCrl.url }, changed: true });
      const self = await alice('POST', '/operator/v1/manufacturers/initech/approve', { proposal: proposed.json.pending.sha256 });
      expect(self.status).to.equal(403);
      expect(self.json.detail).to.match(/another operator/);
      const approved = await as(bob)('POST', '/operator/v1/manufacturers/initech/approve', { proposal: proposed.json.pending.sha256 });
      expect(approved.status, approved.text).to.equal(200);
      expect(approved.json.status).to.equal('active');
      expect(approved.json.crl.number, 'the CRL was read at approval').to.not.equal(null);
      const list = (await alice('GET', '/operator/v1/manufacturers')).json.manufacturers as Array<{ id: string; status: string }>;
      expect(list.map((m) => m.id)).to.deep.equal(['self', 'initech']);
      await register('globex', globex, [CAMERA.name], { pem: globex.crlPem() });
      // Each manufacturer's CRL freshness is a metric, for an alert before its devices are refused.
      const metrics = (await httpRequest(server.running.httpPort, 'GET', '/metrics')).body.toString();
      const fresh = /devid_manufacturer_crl_seconds_to_next_update\{manufacturer="initech"\} ([0-9.e+]+)/.exec(metrics);
      expect(Number(fresh?.[1])).to.be.above(3600);
      const events = (await server.request('GET', '/audit/v1/export', { token: server.tokens.auditor })).text;
      for (const action of ['manufacturer.proposed', 'manufacturer.approved', 'manufacturer.crl-applied']) expect(events).to.include(action);
    });

    // A change to an active manufacturer, as its approver sees it (the next three tests, in order).
    let umbrella: OutsideCa;
    const uploadedSha256 = { value: '' };
    const sha256 = (pem: string) => createHash('sha256').update(Buffer.from(new x509.X509Certificate(pem).rawData)).digest('hex');
    const pendingOf = async () => (await alice('GET', '/operator/v1/manufacturers/umbrella')).json.pending;
    const approve = (token: string, body: unknown) => as(token)('POST', '/operator/v1/manufacturers/umbrella/approve', body);

    it('shows every field as a diff against what is in force: certificates and models added and removed, the CRL source before and after', async () => {
      umbrella = outsideCa('umbrella', join(dir, 'umbrella'));
      const uploaded = umbrella.crlPem();
      uploadedSha256.value = createHash('sha256').update(uploaded).digest('hex');
      await register('umbrella', umbrella, [SENSOR.name], { pem: uploaded });
      // A change that drops the intermediate, adds a model and turns revocation checking off.
      expect((await alice('PUT', '/operator/v1/manufacturers/umbrella', { certificates: [umbrella.rootPem], models: [SENSOR.name, CAMERA.name], crl: null })).status).to.equal(200);
      const shown = (await alice('GET', '/operator/v1/manufacturers/umbrella')).json;
      const { diff } = shown.pending;
      expect(diff.certificates.added).to.deep.equal([]);
      expect(diff.certificates.removed.map((c: { sha256: string }) => c.sha256)).to.deep.equal([sha256(umbrella.intermediatePem)]);
      expect(diff.certificates.removed[0].subject).to.include('umbrella');
      expect(diff.certificates.unchanged).to.deep.equal([sha256(umbrella.rootPem)]);
      expect(diff.models).to.deep.equal({ added: [CAMERA.name], removed: [], unchanged: [SENSOR.name] });
      expect(diff.crl).to.deep.equal({ before: { pem: 'uploaded', sha256: uploadedSha256.value }, after: null, changed: true });
      expect(Object.keys(diff).sort(), 'every field of the configuration').to.deep.equal(['certificates', 'crl', 'models']);
      // The list shows the same diff.
      const fresh = (await alice('GET', '/operator/v1/manufacturers')).json.manufacturers.find((m: { id: string }) => m.id === 'umbrella');
      expect(fresh.pending.diff).to.deep.equal(diff);
    });

    it('an approval must name the pending change by its hash: 400 without it, saying where to read it', async () => {
      const shown = { pending: await pendingOf() };
      for (const body of [{}, { proposal: 'abc' }, { proposal: 42 }, { proposal: shown.pending.sha256.toUpperCase() }]) {
        const refused = await approve(bob, body);
        expect(refused.status, JSON.stringify(body)).to.equal(400);
        expect(refused.json.detail).to.match(/^proposal /).and.to.include('GET /operator/v1/manufacturers/<id>');
      }
      expect((await pendingOf()).sha256, 'nothing approved').to.equal(shown.pending.sha256);
    });

    it('approvals and refused approvals are audited with the hash they named', async () => {
      const shown = { pending: await pendingOf() };
      expect((await approve(bob, { proposal: 'f'.repeat(64) })).status).to.equal(409);
      expect((await approve(server.tokens.operator, { proposal: shown.pending.sha256 })).status).to.equal(403);
      const approved = await approve(bob, { proposal: shown.pending.sha256 });
      expect(approved.status, approved.text).to.equal(200);
      expect(approved.json.active.crl).to.equal(null);
      expect(approved.json.pending).to.equal(null);

      const events = (await server.request('GET', '/audit/v1/export', { token: server.tokens.auditor })).text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; canonical?: string })
        .filter((l) => l.type === 'event').map((l) => JSON.parse(l.canonical!) as { action?: string; data?: Record<string, unknown> })
        .filter((e) => e.data?.manufacturer === 'umbrella' && /approv/.test(e.action ?? ''));
      const refusals = events.filter((e) => e.action === 'manufacturer.approval-refused').map((e) => e.data);
      expect(refusals).to.have.length(2);
      expect(refusals[0]).to.include({ proposal: 'f'.repeat(64), pending: shown.pending.sha256, principal: 'bob' });
      expect(refusals[1]).to.include({ proposal: shown.pending.sha256, pending: shown.pending.sha256 });
      expect(String(refusals[1]!.reason)).to.match(/another operator/);
      const approvals = events.filter((e) => e.action === 'manufacturer.approved').map((e) => e.data!);
      expect(approvals).to.have.length(2);
      expect(approvals[1]).to.include({ proposal: shown.pending.sha256, principal: 'bob' });
      expect(approvals[1]!.changes).to.deep.include({ certificatesRemoved: [sha256(umbrella.intermediatePem)], modelsAdded: [CAMERA.name], crl: { before: { pem: 'uploaded', sha256: uploadedSha256.value }, after: null } });
    });

    it('claimed devices of two manufacturers enroll and renew with their own birth certificates (with and without HardwareModuleName)', async () => {
      const sensor = initech.birth({ serial: 'ini-0001', hwType: SENSOR.hwType });
      const camera = globex.birth({ serial: 'glx-0001' });
      const signer = initech.signer();
      const devices = [{ serial: sensor.serial, model: SENSOR.name, birthCertificateSha256: sensor.sha256, batch: 'ini-lot-7' }];
      const signature = nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), signer.keyPem).toString('base64');
      const manifest = await alice('POST', '/operator/v1/manufacturers/initech/manifests', { devices, signature, signer: signer.certPem });
      expect(manifest.status, manifest.text).to.equal(201);
      expect(manifest.json.claimed).to.equal(1);
      const claim = await alice('POST', `/operator/v1/devices/${camera.serial}/claim`, { manufacturer: 'globex', model: CAMERA.name, birthCertificateSha256: camera.sha256 });
      expect(claim.status, claim.text).to.equal(201);

      for (const [birth, model] of [[sensor, SENSOR], [camera, CAMERA]] as const) {
        const device = await outsideDevice(server, birth);
        const first = await device.enroll();
        const second = await device.enroll();
        expect(second.certificate.serialNumber).to.not.equal(first.certificate.serialNumber);
        const story = await history(birth.serial);
        expect(story.device).to.include({ manufacturer: model === SENSOR ? 'initech' : 'globex', model: model.name, state: 'active' });
        expect(story.events[0].action, 'the claim is the first event').to.equal('device.claimed');
        expect(story.claim.birthCertificateSha256).to.equal(birth.sha256);
        // The outside birth certificate heads the lineage: the first operational certificate names it.
        expect(story.certificates[0]).to.include({ kind: 'birth', sha256: birth.sha256, issuer: `manufacturer:${model === SENSOR ? 'initech' : 'globex'}` });
        expect(story.certificates[1].predecessorSha256).to.equal(birth.sha256);
        expect(story.certificates[2].predecessorSha256).to.equal(story.certificates[1].sha256);
      }
    });

    it('refused with badAttestationStatement naming the check: unclaimed, unregistered CA, model not vouched for, on the CRL', async () => {
      // Unclaimed: a genuine Initech device this operator never bought, audited as such.
      const stray = initech.birth({ serial: 'ini-stray', hwType: SENSOR.hwType });
      expect(await refusal((await outsideDevice(server, stray)).enroll())).to.match(/badAttestationStatement.*check 1 \(claim\).*not claimed/s);
      const strayEvents = (await history('ini-stray'));
      expect(strayEvents, 'no device record is made for it').to.equal(undefined);
      const exported = (await server.request('GET', '/audit/v1/export', { token: server.tokens.auditor })).text;
      expect(exported).to.include('device.unclaimed-attestation').and.to.include(stray.sha256);

      // Chaining to an unregistered CA: claimed by hash, but the certificate is the rogue's.
      const fake = rogue.birth({ serial: 'ini-0002', hwType: SENSOR.hwType });
      expect((await alice('POST', '/operator/v1/devices/ini-0002/claim', { manufacturer: 'initech', model: SENSOR.name, birthCertificateSha256: fake.sha256 })).status).to.equal(201);
      expect(await refusal((await outsideDevice(server, fake)).enroll())).to.match(/check 1 \(chain\)/);

      // A model the anchor may not vouch for: refused at the claim, and a birth certificate of another hwType at the attestation.
      const wrongModel = await alice('POST', '/operator/v1/devices/ini-0003/claim', { manufacturer: 'initech', model: CAMERA.name, birthCertificateSha256: 'a'.repeat(64) });
      expect(wrongModel.status).to.equal(409);
      expect(wrongModel.json.detail).to.match(/may not vouch for model cam-b/);
      const otherType = initech.birth({ serial: 'ini-0004', hwType: CAMERA.hwType });
      await alice('POST', '/operator/v1/devices/ini-0004/claim', { manufacturer: 'initech', model: SENSOR.name, birthCertificateSha256: otherType.sha256 });
      expect(await refusal((await outsideDevice(server, otherType)).enroll())).to.match(/check 1 \(model\)/);

      // On the manufacturer's CRL before it ever enrolled.
      const listed = initech.birth({ serial: 'ini-0005', hwType: SENSOR.hwType });
      await alice('POST', '/operator/v1/devices/ini-0005/claim', { manufacturer: 'initech', model: SENSOR.name, birthCertificateSha256: listed.sha256 });
      initech.revoke(listed);
      const read = await alice('POST', '/operator/v1/manufacturers/initech/crl', {});
      expect(read.status, read.text).to.equal(200);
      expect(read.json).to.include({ changed: true });
      // Reads that overlap (as a poll may overlap an operator's) are applied one at a time: none is older than the CRL in force by then.
      const overlapping = await Promise.all([1, 2, 3, 4].map(() => alice('POST', '/operator/v1/manufacturers/initech/crl', {})));
      for (const answer of overlapping) expect(answer.status, answer.text).to.equal(200);
      // An upload of one CRL twice: the second is the one in force, not parsed again. Globex's, which nothing polls:
      // the poller (1 s here) reads Initech's newer CRL from its URL at any moment, and an upload older than that is a replay.
      const pem = globex.crlPem();
      expect((await alice('POST', '/operator/v1/manufacturers/globex/crl', { pem })).json).to.include({ changed: true });
      expect((await alice('POST', '/operator/v1/manufacturers/globex/crl', { pem })).json).to.deep.include({ changed: false, entries: null });
      expect(await refusal((await outsideDevice(server, listed)).enroll())).to.match(/check 1 \(revocation\).*CRL of manufacturer initech/s);
    });

    it('a manifest with a bad signature, a duplicate serial or a hash that contradicts its certificate claims nothing', async () => {
      const births = [initech.birth({ serial: 'ini-m1', hwType: SENSOR.hwType }), initech.birth({ serial: 'ini-m2', hwType: SENSOR.hwType })];
      const devices = births.map((b) => ({ serial: b.serial, model: SENSOR.name, birthCertificateSha256: b.sha256 }));
      const signer = initech.signer();
      const signature = nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), signer.keyPem).toString('base64');
      const rogueSigner = rogue.signer();
      const refused = [
        [{ devices, signature: nodeSign('sha256', Buffer.from('other'), signer.keyPem).toString('base64'), signer: signer.certPem }, /signature does not verify/],
        [{ devices, signature: nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), rogueSigner.keyPem).toString('base64'), signer: rogueSigner.certPem }, /does not chain/],
        [{ devices: [...devices, { ...devices[0]!, birthCertificateSha256: 'b'.repeat(64) }] }, /serial ini-m1 twice/],
        [{ devices: [{ ...devices[0]!, birthCertificate: births[1]!.certPem }, devices[1]] }, /not the SHA-256 of its birthCertificate/],
        [{ devices: [{ ...devices[0]!, serial: 'ini-m9', birthCertificate: births[0]!.certPem }] }, /names device ini-m1/],
        [{ devices: 'all' }, /devices is a list/],
        [{ devices, signature }, /signer/],
      ] as const;
      for (const [body, detail] of refused) {
        const answer = await alice('POST', '/operator/v1/manufacturers/initech/manifests', body);
        expect(answer.status, answer.text).to.equal(400);
        expect(answer.json.detail).to.match(detail);
      }
      expect(await history('ini-m1')).to.equal(undefined);
      expect(await history('ini-m2')).to.equal(undefined);
      // A claimed certificate cannot be claimed twice, and a failing device fails the whole manifest.
      expect((await alice('POST', '/operator/v1/manufacturers/initech/manifests', { devices: [devices[0], { serial: 'ini-0001', model: SENSOR.name, birthCertificateSha256: 'c'.repeat(64) }] })).status).to.equal(409);
      expect(await history('ini-m1')).to.equal(undefined);
      const good = await alice('POST', '/operator/v1/manufacturers/initech/manifests', { devices: devices.map((d, i) => ({ ...d, birthCertificate: births[i]!.certPem })), signature: nodeSign('sha256', Buffer.from(canonicalize(devices.map((d, i) => ({ ...d, birthCertificate: births[i]!.certPem })))!, 'utf8'), signer.keyPem).toString('base64'), signer: signer.certPem });
      expect(good.status, good.text).to.equal(201);
      expect(good.json.claimed).to.equal(2);
    });

    it('a birth certificate on the CRL quarantines its device at the next poll; the runtime path never touches the birth identity', async () => {
      const birth = initech.birth({ serial: 'ini-0010', hwType: SENSOR.hwType });
      await alice('POST', '/operator/v1/devices/ini-0010/claim', { manufacturer: 'initech', model: SENSOR.name, birthCertificateSha256: birth.sha256 });
      const device = await outsideDevice(server, birth);
      const enrolled = await device.enroll();
      // Runtime revocation of the operational certificate: the device renews with its birth identity.
      expect((await alice('POST', `/operator/v1/certificates/${enrolled.certificate.serialNumber}/revoke`, { reason: 'keyCompromise' })).status).to.equal(200);
      await device.enroll({ replaces: false });
      expect(await state('ini-0010')).to.equal('active');
      // Manufacturing path: the manufacturer revokes the birth certificate; the poller (1 s here) quarantines the device.
      initech.revoke(birth);
      const deadline = Date.now() + 15_000;
      while ((await state('ini-0010')) !== 'quarantined' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
      const story = await history('ini-0010');
      expect(story.device.state).to.equal('quarantined');
      const quarantined = story.events.find((e: { action: string }) => e.action === 'device.quarantined');
      expect(quarantined.data).to.include({ manufacturer: 'initech', path: 'manufacturing', source: 'url' });
      expect(quarantined.data.crlSha256).to.match(/^[0-9a-f]{64}$/);
      expect(story.certificates.filter((c: { kind: string; revokedAt: string | null }) => c.kind === 'operational' && !c.revokedAt)).to.have.length(0);
      expect(story.certificates[0].revokedAt, 'the outside birth certificate is marked revoked').to.not.equal(null);
      expect(await refusal(device.enroll())).to.match(/quarantined/);
    });

    it('withdrawing one manufacturer quarantines all of its devices and leaves the others alone', async () => {
      const cameras = [globex.birth({ serial: 'glx-0002' }), globex.birth({ serial: 'glx-0003' })];
      for (const b of cameras) await alice('POST', `/operator/v1/devices/${b.serial}/claim`, { manufacturer: 'globex', model: CAMERA.name, birthCertificateSha256: b.sha256 });
      const enrolled = [];
      for (const b of cameras) {
        const device = await outsideDevice(server, b);
        await device.enroll();
        enrolled.push(device);
      }
      const sensor = initech.birth({ serial: 'ini-0011', hwType: SENSOR.hwType });
      await alice('POST', '/operator/v1/devices/ini-0011/claim', { manufacturer: 'initech', model: SENSOR.name, birthCertificateSha256: sensor.sha256 });
      const sensorDevice = await outsideDevice(server, sensor);
      await sensorDevice.enroll();

      expect((await alice('POST', '/operator/v1/manufacturers/globex/withdraw', { reason: 'nonsense' })).status).to.equal(400);
      const withdrawn = await alice('POST', '/operator/v1/manufacturers/globex/withdraw', { reason: 'keyCompromise' });
      expect(withdrawn.status, withdrawn.text).to.equal(200);
      expect(withdrawn.json.status).to.equal('withdrawn');
      expect(withdrawn.json.withdrawal).to.include({ finished: true, devices: 3 });
      for (const serial of ['glx-0001', 'glx-0002', 'glx-0003']) {
        const story = await history(serial);
        expect(story.device.state, serial).to.equal('quarantined');
        expect(story.events.find((e: { action: string }) => e.action === 'device.quarantined').data).to.include({ manufacturer: 'globex', path: 'manufacturing' });
        expect(story.certificates.filter((c: { kind: string; revokedAt: string | null }) => c.kind === 'operational' && !c.revokedAt), serial).to.have.length(0);
      }
      expect(await refusal(enrolled[0]!.enroll())).to.match(/quarantined/);
      // OpenSSL, as a relying party, hears it from OCSP.
      const ocsp = await opensslOcsp({
        issuerPem: server.running.hierarchy.operational.certificate.toString('pem'), rootPem: server.rootPem,
        url: `http://127.0.0.1:${server.running.httpPort}/ocsp`, certPem: enrolled[1]!.current()!.toString('pem'),
      });
      expect(ocsp.output).to.match(/: revoked/);
      // Initech's devices renew as before; a withdrawn manufacturer takes no new claim or change.
      await sensorDevice.enroll();
      expect(await state('ini-0011')).to.equal('active');
      expect((await alice('POST', '/operator/v1/devices/glx-0009/claim', { manufacturer: 'globex', model: CAMERA.name, birthCertificateSha256: 'd'.repeat(64) })).status).to.equal(409);
      expect((await alice('PUT', '/operator/v1/manufacturers/globex', { certificates: [globex.rootPem], models: [CAMERA.name], crl: null })).status).to.equal(409);
    });

    it('an ownership statement exported by this CA lets a second CA claim the device; it enrolls there and the chain verifies offline', async () => {
      const second = await startTestServer(kind);
      try {
        const device = await makeDevice(server, 'own-0001');
        await device.enroll();
        const exported = await alice('POST', '/operator/v1/devices/own-0001/ownership-statement', { to: 'globex-corp', evidence: 'sale order 4711' });
        expect(exported.status, exported.text).to.equal(200);
        const chain = exported.json;
        expect(chain.statements).to.have.length(1);
        expect(chain.statements[0]).to.include({ device: 'own-0001', from: null, to: 'globex-corp', previous: null });
        // Offline: the chain verifies against the first CA's root, and any edit breaks it.
        const rootDer = Buffer.from(server.running.hierarchy.root.record.der);
        expect(verifyOwnershipChain(chain, [rootDer], new Date())).to.have.length(1);
        const edited = { statements: [{ ...chain.statements[0], to: 'mallory' }] };
        expect(() => verifyOwnershipChain(edited, [rootDer], new Date())).to.throw(/signature does not verify/);
        expect(() => verifyOwnershipChain(chain, [Buffer.from(second.running.hierarchy.root.record.der)], new Date())).to.throw(/signer/);

        // The second CA registers the first as a manufacturer (its root and factory), then imports the statement: that is the claim.
        const secondBob = (await createToken(second.env.ctx.store, second.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
        const secondAlice = (method: string, path: string, body?: unknown) => second.request(method, path, { token: second.tokens.operator, ...(body === undefined ? {} : { body }) });
        const firstCa = server.running.hierarchy;
        const caOne = await secondAlice('PUT', '/operator/v1/manufacturers/ca-one', {
          certificates: [firstCa.root.certificate.toString('pem'), firstCa.factory.certificate.toString('pem')], models: ['thermo-2'], crl: null,
        });
        expect(caOne.status).to.equal(201);
        expect((await second.request('POST', '/operator/v1/manufacturers/ca-one/approve', { token: secondBob, body: { proposal: caOne.json.pending.sha256 } })).status).to.equal(200);
        const forged = await secondAlice('POST', '/operator/v1/ownership-statements', { ...edited, manufacturer: 'ca-one', model: 'thermo-2' });
        expect(forged.status).to.equal(400);
        const imported = await secondAlice('POST', '/operator/v1/ownership-statements', { ...chain, manufacturer: 'ca-one', model: 'thermo-2' });
        expect(imported.status, imported.text).to.equal(201);
        expect(imported.json).to.deep.equal({ device: 'own-0001', owner: 'globex-corp' });
        expect((await secondAlice('POST', '/operator/v1/ownership-statements', { ...chain, manufacturer: 'ca-one', model: 'thermo-2' })).status).to.equal(409);

        // The device enrolls at the second CA with the birth certificate the first CA gave it.
        const moved = new Device('own-0001', device.dir, device.factoryKey, new AcmeClient(directoryUrl(second), Device.accountKey(mkdtempSync(join(tmpdir(), 'devid-acct-'))), second.rootPem, toLoopback), PUBLIC_HOST);
        rmSync(moved.path('certificate'), { force: true });
        const there = await moved.enroll();
        expect(there.certificate.issuer).to.equal(second.running.hierarchy.operational.certificate.subject);
        const story = (await second.request('GET', '/audit/v1/devices/own-0001/history', { token: second.tokens.auditor })).json;
        expect(story.device).to.include({ owner: 'globex-corp', manufacturer: 'ca-one', state: 'active' });
        expect(story.ownershipStatements).to.have.length(1);
        // Handing it on from the second CA extends the chain, which still verifies from the first link.
        const onward = await secondAlice('POST', '/operator/v1/devices/own-0001/ownership-statement', { to: 'umbrella', evidence: 'resale' });
        expect(onward.json.statements).to.have.length(2);
        expect(onward.json.statements[1]).to.include({ from: 'globex-corp', to: 'umbrella' });
        expect(verifyOwnershipChain(onward.json, [rootDer, Buffer.from(second.running.hierarchy.root.record.der)], new Date())).to.have.length(2);
        // A third CA that trusts only the second: the second vouches for the last link, whose hash covers the first.
        const secondRoot = Buffer.from(second.running.hierarchy.root.record.der);
        expect(verifyOwnershipChain(onward.json, [secondRoot], new Date(), { last: true })).to.have.length(2);
        expect(() => verifyOwnershipChain(onward.json, [secondRoot], new Date())).to.throw(/statements\[0\]/);
        // A statement signed with a device's birth key (its certificate chains to the first CA) is no statement.
        const birthPem = readFileSync(device.path('birth'), 'utf8');
        const unsigned = { ...chain.statements[0], to: 'mallory', signer: [Buffer.from(new x509.X509Certificate(birthPem).rawData).toString('base64'), rootDer.toString('base64')] };
        delete (unsigned as { signature?: string }).signature;
        const signature = (await device.factoryKey.sign(Buffer.from(canonicalize(unsigned)!, 'utf8'))).toString('base64');
        const byDevice = await secondAlice('POST', '/operator/v1/ownership-statements', { statements: [{ ...unsigned, signature }], manufacturer: 'ca-one', model: 'thermo-2' });
        expect(byDevice.status).to.equal(400);
        expect(byDevice.json.detail).to.match(/device's certificate|certified by the root itself/);
      } finally {
        await second.close();
      }
    });

    it('withdrawing one intermediate of a manufacturer quarantines the devices it vouched for; its root stays registered', async () => {
      const hooli = outsideCa('hooli', join(dir, 'hooli'));
      await register('hooli', hooli, [SENSOR.name], null);
      const birth = hooli.birth({ serial: 'hoo-0001', hwType: SENSOR.hwType });
      await alice('POST', '/operator/v1/devices/hoo-0001/claim', { manufacturer: 'hooli', model: SENSOR.name, birthCertificateSha256: birth.sha256 });
      // Claimed before the withdrawal, never enrolled: it sends the withdrawn intermediate in x5c, as every device does.
      const late = hooli.birth({ serial: 'hoo-0002', hwType: SENSOR.hwType });
      await alice('POST', '/operator/v1/devices/hoo-0002/claim', { manufacturer: 'hooli', model: SENSOR.name, birthCertificateSha256: late.sha256 });
      const device = await outsideDevice(server, birth);
      await device.enroll();
      const shown = (await alice('GET', '/operator/v1/manufacturers/hooli')).json;
      const [root, intermediate] = shown.active.certificates as Array<{ sha256: string }>;
      expect((await alice('POST', '/operator/v1/manufacturers/hooli/withdraw', { reason: 'keyCompromise', certificate: root!.sha256 })).status).to.equal(409);
      const withdrawn = await alice('POST', '/operator/v1/manufacturers/hooli/withdraw', { reason: 'keyCompromise', certificate: intermediate!.sha256 });
      expect(withdrawn.status, withdrawn.text).to.equal(200);
      expect(withdrawn.json.status).to.equal('active');
      expect(withdrawn.json.active.certificates).to.have.length(1);
      expect(await state('hoo-0001')).to.equal('quarantined');
      const events = (await history('hoo-0001')).events as Array<{ action: string; data: Record<string, unknown> }>;
      expect(events.find((e) => e.action === 'device.quarantined')!.data).to.include({ manufacturer: 'hooli', certificate: intermediate!.sha256, path: 'manufacturing' });
      expect(await refusal((await outsideDevice(server, late)).enroll())).to.match(/check 1 \(chain\).*withdrawn/s);
      const shownAfter = (await alice('GET', '/operator/v1/manufacturers/hooli')).json;
      expect(shownAfter.retiredCertificates).to.deep.equal([intermediate!.sha256]);
      expect(shownAfter.certificateWithdrawals[intermediate!.sha256]).to.include({ finished: true, devices: 1 });
      // A change may not bring the withdrawn intermediate back, and an approval names the change it approves.
      expect((await alice('PUT', '/operator/v1/manufacturers/hooli', { certificates: [hooli.rootPem, hooli.intermediatePem], models: [SENSOR.name], crl: null })).status).to.equal(200);
      const pending = (await alice('GET', '/operator/v1/manufacturers/hooli')).json.pending;
      expect((await as(bob)('POST', '/operator/v1/manufacturers/hooli/approve', { proposal: 'f'.repeat(64) })).status).to.equal(409);
      const back = await as(bob)('POST', '/operator/v1/manufacturers/hooli/approve', { proposal: pending.sha256 });
      expect(back.status).to.equal(409);
      expect(back.json.detail).to.match(/withdrawn certificate/);
    });

    it('a reprovisioned device born elsewhere no longer attests with its manufacturer\'s birth certificate', async () => {
      const birth = initech.birth({ serial: 'ini-0020', hwType: SENSOR.hwType });
      await alice('POST', '/operator/v1/devices/ini-0020/claim', { manufacturer: 'initech', model: SENSOR.name, birthCertificateSha256: birth.sha256 });
      const device = await outsideDevice(server, birth);
      await device.enroll();
      expect((await alice('POST', '/operator/v1/devices/ini-0020/reprovision', { reason: 'RMA: birth key leaked' })).status).to.equal(200);
      expect(await refusal(device.enroll({ replaces: false }))).to.match(/check 1 \(claim\).*reprovisioned/s);
      expect((await history('ini-0020')).claim.supersededAt).to.not.equal(null);
    });

    it('a manufacturer that registered only its root: devices send the intermediate, and the export still checks their births offline', async () => {
      const soylent = outsideCa('soylent', join(dir, 'soylent'));
      const proposed = await alice('PUT', '/operator/v1/manufacturers/soylent', { certificates: [soylent.rootPem], models: [SENSOR.name], crl: null });
      expect(proposed.status).to.equal(201);
      expect((await as(bob)('POST', '/operator/v1/manufacturers/soylent/approve', { proposal: proposed.json.pending.sha256 })).status).to.equal(200);
      const birth = soylent.birth({ serial: 'soy-0001', hwType: SENSOR.hwType });
      const manifest = await alice('POST', '/operator/v1/manufacturers/soylent/manifests', { devices: [{ serial: 'soy-0001', model: SENSOR.name, birthCertificateSha256: birth.sha256, birthCertificate: birth.chainPem }] });
      expect(manifest.status, manifest.text).to.equal(201);
      await (await outsideDevice(server, birth)).enroll();
      expect(await state('soy-0001')).to.equal('active');
    });

    it('hostile certificates (a malformed subjectAltName, a device key as manifest signer) are 400, and a CRL larger than the limit is not read into memory', async () => {
      const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as CryptoKeyPair;
      const broken = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01', name: 'CN=broken', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.Extension('2.5.29.17', false, new Uint8Array([0x30, 0x05, 0xa0, 0x7f, 0x00, 0x00, 0x00]))],
      });
      const entry = { serial: 'brk-0001', model: SENSOR.name, birthCertificateSha256: createHash('sha256').update(Buffer.from(broken.rawData)).digest('hex'), birthCertificate: broken.toString('pem') };
      const answer = await alice('POST', '/operator/v1/manufacturers/initech/manifests', { devices: [entry] });
      expect(answer.status, answer.text).to.equal(400);
      const device = initech.birth({ serial: 'ini-0030', hwType: SENSOR.hwType });
      const devices = [{ serial: 'ini-0031', model: SENSOR.name, birthCertificateSha256: 'e'.repeat(64) }];
      const byDevice = await alice('POST', '/operator/v1/manufacturers/initech/manifests', {
        devices, signature: nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), device.keyPem).toString('base64'), signer: device.certPem,
      });
      expect(byDevice.status).to.equal(400);
      expect(byDevice.json.detail).to.match(/device's certificate/);
      const flood = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/pkix-crl' });
        const chunk = Buffer.alloc(1024 * 1024);
        let sent = 0;
        const more = () => { while (sent < 64 && res.write(chunk)) sent += 1; if (sent < 64) res.once('drain', () => { sent += 1; more(); }); else res.end(); };
        more();
      });
      await new Promise<void>((r) => flood.listen(0, '127.0.0.1', () => r()));
      try {
        const url = `http://127.0.0.1:${(flood.address() as AddressInfo).port}/huge.crl`;
        const before = process.memoryUsage().rss;
        expect(await refusal(fetchCrl(url))).to.match(/more than/);
        expect(process.memoryUsage().rss - before).to.be.below(48 * 1024 * 1024);
      } finally {
        flood.closeAllConnections();
        flood.close();
      }
    });

    it("the auditor's fleet export carries the manufacturers and the outside birth certificates, and verifies offline", async () => {
      const exported = await server.request('GET', '/audit/v1/export', { token: server.tokens.auditor });
      expect(exported.status).to.equal(200);
      const path = join(dir, 'fleet.jsonl');
      writeFileSync(path, exported.text);
      const report = await verifyExport(path, server.rootPem);
      expect(report.problems).to.deep.equal([]);
      expect(report.ok).to.equal(true);
      expect(report.manufacturers).to.equal(5);
      expect(exported.text).to.include('"type":"outside-birth"');
      // An outside birth certificate swapped for another manufacturer's is caught.
      const lines = exported.text.split('\n');
      const index = lines.findIndex((l) => l.includes('"type":"outside-birth"'));
      const line = JSON.parse(lines[index]!);
      lines[index] = JSON.stringify({ ...line, der: rogue.birth({ serial: line.device }).der.toString('base64') });
      writeFileSync(path, lines.join('\n'));
      expect((await verifyExport(path, server.rootPem)).problems.join(' ')).to.match(/does not lead to a certificate of manufacturer/);
    });

    it('hostile input to the manufacturer endpoints earns 4xx, never 5xx', async () => {
      const paths = ['/operator/v1/manufacturers/initech', '/operator/v1/manufacturers/initech/manifests', '/operator/v1/manufacturers/initech/crl',
        '/operator/v1/manufacturers/initech/withdraw', '/operator/v1/devices/x1/claim', '/operator/v1/ownership-statements', '/operator/v1/devices/ini-0001/ownership-statement'];
      const bodies: unknown[] = [null, [], 'x', 1, { devices: [{}] }, { devices: [null] }, { certificates: [1], models: [], crl: {} }, { pem: 'x' }, { pem: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----' },
        { statements: [{}], manufacturer: 'initech', model: SENSOR.name }, { statements: 'x' }, { reason: 'keyCompromise', certificate: 'zz' }, { manufacturer: '../x', model: 'm', birthCertificateSha256: 'x' },
        { devices: [{ serial: 'a', model: SENSOR.name, birthCertificateSha256: 'f'.repeat(64), birthCertificate: 'x'.repeat(20000) }] }, { to: 'x'.repeat(500), evidence: '' }];
      for (const path of paths) {
        for (const body of bodies) {
          const method = path.endsWith('initech') ? 'PUT' : 'POST';
          const answer = await server.request(method, path, { token: server.tokens.operator, raw: JSON.stringify(body) });
          expect(answer.status, `${method} ${path} ${JSON.stringify(body).slice(0, 60)}: ${answer.text}`).to.be.within(400, 499);
        }
        const random = await server.request('POST', path, { token: server.tokens.operator, raw: Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256))) });
        expect(random.status).to.be.within(400, 499);
      }
      expect((await server.request('GET', '/operator/v1/manufacturers', { token: server.tokens.auditor })).status).to.equal(403);
      expect((await server.request('GET', '/operator/v1/manufacturers/nobody')).status).to.equal(401);
      expect(TEST_MODEL.hwType).to.be.a('string');
    });
  });
}
