import { execFileSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { DATABASE_KINDS } from './support/databases.ts';
import { makeDeviceKey, tamperedCsr, type DeviceKeyType } from './support/device.ts';
import { opensslText, opensslVerify } from './support/openssl.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createToken, revokeToken } from '../server/tokens.ts';
import { fromExported, verifyAudit } from '../registry/audit/audit-verify.ts';
import { loadAuditKey } from '../registry/audit/audit-key.ts';
import { rawConnection } from '../store/test-access.ts';

const MODEL = { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices' };

async function counts(server: TestServer): Promise<Record<string, number>> {
  const { store } = server.env.ctx;
  return { devices: await store.devices.count(), certificates: await store.certificates.count(), events: await store.audit.count(), models: await store.models.count() };
}

function expectProblem(response: { status: number; headers: Record<string, unknown>; json: { type?: string; detail?: string } }, status: number): void {
  expect(response.status, JSON.stringify(response.json)).to.equal(status);
  expect(response.headers['content-type']).to.contain('application/problem+json');
  expect(response.json.type).to.match(/^urn:devid-ca:problem:/);
  expect(response.json.detail).to.be.a('string').and.not.be.empty;
}

describe('factory API', function () {
  this.timeout(60_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let serial = 0;
  const nextSerial = () => `SN-${String(++serial).padStart(6, '0')}`;

  before(async () => {
    server = await startTestServer('pglite');
    const put = await server.request('PUT', '/operator/v1/models/thermo-3', { token: server.tokens.operator, body: MODEL });
    expect(put.status).to.equal(201);
    await server.request('PUT', '/operator/v1/models/hub-1', { token: server.tokens.operator, body: { hwType: '1.3.6.1.4.1.99999.1.3', manufacturer: 'Acme Devices' } });
  });
  after(() => server.close());

  async function birth(body: Record<string, unknown>, token = server.tokens.factory) {
    return server.request('POST', '/factory/v1/birth-certificates', { token, body });
  }

  describe('models', () => {
    it('PUT is idempotent: 201, then 200 with nothing written', async () => {
      const before = await counts(server);
      const again = await server.request('PUT', '/operator/v1/models/thermo-3', { token: server.tokens.operator, body: MODEL });
      expect(again.status).to.equal(200);
      expect(again.json).to.deep.equal({ name: 'thermo-3', ...MODEL, defaultClass: null });
      expect(await counts(server)).to.deep.equal(before);
    });

    it("a model's hwType and manufacturer are fixed once a birth certificate carries them (409); before that they may change", async () => {
      const op = server.tokens.operator;
      expect((await server.request('PUT', '/operator/v1/models/draft-1', { token: op, body: MODEL })).status).to.equal(201);
      expect((await server.request('PUT', '/operator/v1/models/draft-1', { token: op, body: { ...MODEL, manufacturer: 'Acme Corp' } })).status).to.equal(200);
      const s = nextSerial();
      expect((await birth({ serial: s, model: 'draft-1', batch: 'b1', csr: (await makeDeviceKey()).csrPem })).status).to.equal(201);
      const before = await counts(server);
      const changed = await server.request('PUT', '/operator/v1/models/draft-1', { token: op, body: { ...MODEL, manufacturer: 'Someone Else' } });
      expectProblem(changed, 409);
      expect(changed.json.detail).to.contain('new model name');
      expect(await counts(server)).to.deep.equal(before);
    });

    it('refuses a bad OID, unknown fields, a bad name, a factory token and a body that is not JSON', async () => {
      const before = await counts(server);
      const op = server.tokens.operator;
      expectProblem(await server.request('PUT', '/operator/v1/models/m1', { token: op, body: { hwType: '2.25.329800735698586629295641978511506172918', manufacturer: 'A' } }), 400);
      expectProblem(await server.request('PUT', '/operator/v1/models/m1', { token: op, body: { ...MODEL, extra: 1 } }), 400);
      expectProblem(await server.request('PUT', '/operator/v1/models/bad%20name', { token: op, body: MODEL }), 400);
      expectProblem(await server.request('PUT', '/operator/v1/models/m1', { token: server.tokens.factory, body: MODEL }), 403);
      expectProblem(await server.request('PUT', '/operator/v1/models/m1', { body: MODEL }), 401);
      expectProblem(await server.request('PUT', '/operator/v1/models/m1', { token: op, raw: 'hwType=1.2', contentType: 'text/plain' }), 415);
      expect(await counts(server)).to.deep.equal(before);
    });
  });

  describe('birth certificates', () => {
    it('issues a birth certificate that OpenSSL verifies against the root', async () => {
      const key = await makeDeviceKey();
      const s = nextSerial();
      const response = await birth({ serial: s, model: 'thermo-2', batch: '2026-11-A', csr: key.csrPem });
      expect(response.status, response.text).to.equal(201);
      expect(response.json.device).to.deep.equal({ serial: s, model: 'thermo-2', batch: '2026-11-A', line: 'line-1', state: 'manufactured' });
      const cert = new x509.X509Certificate(response.json.certificate);
      expect(response.json.certificateSerial).to.equal(cert.serialNumber);
      const [factoryPem, rootPem] = response.json.chain.split(/(?<=-----END CERTIFICATE-----)\s*/).filter(Boolean);
      expect(rootPem.trim()).to.equal(server.rootPem.trim());
      const result = opensslVerify(server.rootPem, factoryPem, response.json.certificate);
      expect(result.ok, result.output).to.equal(true);
      const text = opensslText(response.json.certificate);
      expect(text).to.contain(`Subject: CN=thermo-2,O=Acme Devices,serialNumber=${s}`);
      expect(text).to.match(/othername: (HardwareModuleName|1\.3\.6\.1\.5\.5\.7\.8\.4)/);
      expect(text).to.contain('Not After : Dec 31 23:59:59 9999 GMT');
    });

    for (const type of ['ec-p384', 'ed25519', 'rsa2048'] as DeviceKeyType[]) {
      it(`accepts a ${type} factory key`, async () => {
        const key = await makeDeviceKey(type);
        const response = await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: Buffer.from(key.csrDer).toString('base64url') });
        expect(response.status, response.text).to.equal(201);
        const result = opensslVerify(server.rootPem, server.running.hierarchy.factory.certificate.toString('pem'), response.json.certificate);
        expect(result.ok, result.output).to.equal(true);
      });
    }

    it('a retry with the same key returns the existing certificate (200); another key is 409', async () => {
      const key = await makeDeviceKey();
      const s = nextSerial();
      const first = await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: key.csrPem });
      expect(first.status).to.equal(201);
      const before = await counts(server);
      const retry = await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: key.csrPem });
      expect(retry.status).to.equal(200);
      expect(retry.json.certificate.trim()).to.equal(first.json.certificate.trim());
      expect(retry.json.certificateSerial).to.equal(first.json.certificateSerial);
      const other = await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem });
      expectProblem(other, 409);
      // The retry is an action of the factory line, so it is audited; the refusal writes nothing.
      expect(await counts(server)).to.deep.equal({ ...before, events: before.events + 1 });
    });

    it('a key already bound to another device is 409 and audited as a suspected clone', async () => {
      const key = await makeDeviceKey();
      const original = nextSerial();
      expect((await birth({ serial: original, model: 'thermo-2', batch: 'b1', csr: key.csrPem })).status).to.equal(201);
      const before = await counts(server);
      const clone = nextSerial();
      const response = await birth({ serial: clone, model: 'thermo-2', batch: 'b1', csr: key.csrPem });
      expectProblem(response, 409);
      expect(response.json.detail).to.contain('suspected clone');
      const after = await counts(server);
      expect(after).to.deep.equal({ ...before, events: before.events + 1 });
      const history = await server.request('GET', `/audit/v1/devices/${original}/history`, { token: server.tokens.auditor });
      const alert = history.json.events.find((e: { action: string }) => e.action === 'device.clone-suspected');
      expect(alert.data.requestedSerial).to.equal(clone);
      expect((await server.request('GET', `/audit/v1/devices/${clone}/history`, { token: server.tokens.auditor })).status).to.equal(404);
    });

    it("device B's key presented for existing serial A: 409, and a clone signal in B's history", async () => {
      const keyA = await makeDeviceKey();
      const keyB = await makeDeviceKey();
      const a = nextSerial();
      const b = nextSerial();
      expect((await birth({ serial: a, model: 'thermo-2', batch: 'b1', csr: keyA.csrPem })).status).to.equal(201);
      expect((await birth({ serial: b, model: 'thermo-2', batch: 'b1', csr: keyB.csrPem })).status).to.equal(201);
      const before = await counts(server);
      const response = await birth({ serial: a, model: 'thermo-2', batch: 'b1', csr: keyB.csrPem });
      expectProblem(response, 409);
      expect(response.json.detail).to.contain('suspected clone');
      expect(await counts(server)).to.deep.equal({ ...before, events: before.events + 1 });
      const history = await server.request('GET', `/audit/v1/devices/${b}/history`, { token: server.tokens.auditor });
      const alert = history.json.events.find((e: { action: string }) => e.action === 'device.clone-suspected');
      expect(alert.data.requestedSerial).to.equal(a);
    });

    it("a 409 for a taken serial tells another line nothing of the device's model, batch or line", async () => {
      const s = nextSerial();
      expect((await birth({ serial: s, model: 'thermo-2', batch: 'secret-batch-7', csr: (await makeDeviceKey()).csrPem })).status).to.equal(201);
      const response = await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem }, server.tokens.factoryScoped);
      expectProblem(response, 409);
      expect(response.json.detail).to.equal(`serial ${s} already has a birth certificate`);
      for (const secret of ['secret-batch-7', 'line-1', 'thermo-2']) expect(response.text).not.to.contain(secret);
    });

    it('refuses an RSA factory key with public exponent 3, naming the exponent', async () => {
      const keys = (await webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([3]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } });
      const response = await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: csr.toString('pem') });
      expectProblem(response, 400);
      expect(response.json.type).to.equal('urn:devid-ca:problem:bad-public-key');
      expect(response.json.detail).to.contain('exponent');
    });

    it('refuses every malformed request with a problem document and writes nothing', async () => {
      const key = await makeDeviceKey();
      const good = { serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: key.csrPem };
      const before = await counts(server);
      const cases: Array<[string, Promise<Parameters<typeof expectProblem>[0]>, number]> = [
        ['bad serial', birth({ ...good, serial: 'SN_1' }), 400],
        ['serial too long', birth({ ...good, serial: 'S'.repeat(65) }), 400],
        ['unknown model', birth({ ...good, model: 'toaster-9' }), 400],
        ['missing batch', birth({ serial: good.serial, model: 'thermo-2', csr: key.csrPem }), 400],
        ['unknown field', birth({ ...good, owner: 'x' }), 400],
        ['csr not base64url', birth({ ...good, csr: 'not a csr!' }), 400],
        ['csr garbage', birth({ ...good, csr: 'AAAA' }), 400],
        ['csr signature', birth({ ...good, csr: tamperedCsr(key.csrDer) }), 400],
        ['P-521 key', makeDeviceKey('ec-p521').then((k) => birth({ ...good, csr: k.csrPem })), 400],
        ['RSA 1024 key', makeDeviceKey('rsa1024').then((k) => birth({ ...good, csr: k.csrPem })), 400],
        ['not JSON', server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, raw: '{"serial":' }), 400],
        ['JSON array', server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, raw: '[]' }), 400],
        ['wrong content type', server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, raw: 'x', contentType: 'text/plain' }), 415],
        ['oversized', birth({ ...good, csr: 'A'.repeat(70_000) }), 413],
        ['model out of scope', birth({ ...good, model: 'hub-1' }, server.tokens.factoryScoped), 403],
        ['operator token', birth(good, server.tokens.operator), 403],
        ['revoked-looking token', birth(good, 'devid_0000000000000000_' + 'A'.repeat(43)), 401],
        ['no token', server.request('POST', '/factory/v1/birth-certificates', { body: good }), 401],
      ];
      for (const [name, pending, status] of cases) {
        const response = await pending;
        expect(response.status, `${name}: ${JSON.stringify(response.json)}`).to.equal(status);
        expectProblem(response, status);
      }
      expect(await counts(server)).to.deep.equal(before);
      expect((await birth(good)).status).to.equal(201);
    });

    it('a batch gives each item its own result, all-or-nothing per item', async () => {
      const key = await makeDeviceKey();
      const good = { serial: nextSerial(), model: 'thermo-2', batch: 'b9', csr: key.csrPem };
      const requests = [good, { ...good, serial: 'bad_serial' }, { ...good, serial: nextSerial() }, { ...good, serial: nextSerial(), csr: (await makeDeviceKey()).csrPem }];
      const before = await counts(server);
      const response = await server.request('POST', '/factory/v1/birth-certificates/batch', { token: server.tokens.factory, body: { requests } });
      expect(response.status, response.text).to.equal(200);
      const results = response.json.results as Array<{ status: number; certificate?: string; problem?: { status: number; type: string } }>;
      // Items run concurrently: of the first and third (one key, two serials) whichever commits first wins, the other is a suspected clone.
      expect([results[0]!.status, results[2]!.status].sort()).to.deep.equal([201, 409]);
      expect([results[1]!.status, results[3]!.status]).to.deep.equal([400, 201]);
      expect(results[1]!.problem!.type).to.equal('urn:devid-ca:problem:malformed');
      const winner = results[0]!.status === 201 ? 0 : 2;
      expect(opensslVerify(server.rootPem, server.running.hierarchy.factory.certificate.toString('pem'), results[winner]!.certificate!).ok).to.equal(true);
      expect((await counts(server)).devices).to.equal(before.devices + 2);
      const retry = await server.request('POST', '/factory/v1/birth-certificates/batch', { token: server.tokens.factory, body: { requests: [requests[winner]] } });
      expect(retry.json.results[0].status).to.equal(200);
      expectProblem(await server.request('POST', '/factory/v1/birth-certificates/batch', { token: server.tokens.factory, body: { requests: Array(101).fill(good) } }), 400);
      expectProblem(await server.request('POST', '/factory/v1/birth-certificates/batch', { token: server.tokens.factory, body: { requests: [] } }), 400);
    });

    it('a revoked token is refused with 401', async () => {
      const { ctx } = server.env;
      const created = await createToken(ctx.store, ctx.audit, { role: 'factory', line: 'line-3' }, 'cli', new Date());
      const key = await makeDeviceKey();
      await revokeToken(ctx.store, ctx.audit, created.id, 'cli', new Date());
      expectProblem(await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: key.csrPem }, created.token), 401);
    });

    it('one key is one key: the same EC key with a compressed point is caught as a clone, and certified uncompressed', async () => {
      const dir = mkdtempSync('/tmp/devid-test-compressed-');
      try {
        execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${dir}/k.pem`]);
        execFileSync('openssl', ['ec', '-in', `${dir}/k.pem`, '-conv_form', 'compressed', '-out', `${dir}/kc.pem`], { stdio: 'ignore' });
        const csr = (key: string) => execFileSync('openssl', ['req', '-new', '-key', `${dir}/${key}`, '-subj', '/CN=x'], { encoding: 'utf8' });
        const compressed = await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: csr('kc.pem') });
        expect(compressed.status, compressed.text).to.equal(201);
        expect(opensslText(compressed.json.certificate)).to.match(/pub:\s+04:/);
        expectProblem(await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: csr('k.pem') }), 409);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a PEM that never ends is refused at once (no catastrophic backtracking)', async () => {
      const response = await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: `-----BEGIN CERTIFICATE REQUEST-----${' '.repeat(16_000)}` });
      expectProblem(response, 400);
    });

    it('a CSR with a bad signature says so in a badCSR problem', async () => {
      const key = await makeDeviceKey();
      const response = await birth({ serial: nextSerial(), model: 'thermo-2', batch: 'b1', csr: tamperedCsr(key.csrDer) });
      expect(response.json.type).to.equal('urn:devid-ca:problem:bad-csr');
      expect(response.json.detail).to.contain('signature');
    });
  });

  describe('reprovisioning (repair, RMA)', () => {
    const reprovision = (serial: string, body: unknown, token = server.tokens.operator) =>
      server.request('POST', `/operator/v1/devices/${serial}/reprovision`, { token, body });

    it('revokes the birth certificate and allows exactly one new one; history keeps both', async () => {
      const s = nextSerial();
      const oldKey = await makeDeviceKey();
      const first = await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: oldKey.csrPem });
      const response = await reprovision(s, { reason: 'RMA 4711: secure element replaced' });
      expect(response.status, response.text).to.equal(200);
      expect(response.json.device.state).to.equal('manufactured');
      expect(response.json.revokedCertificates).to.deep.equal([first.json.certificateSerial]);
      const revoked = (await server.env.ctx.store.certificates.find(first.json.certificateSerial))!;
      expect(revoked.revokedAt).to.be.instanceOf(Date);
      expect(revoked.revocationReason).to.equal(4);

      const newKey = await makeDeviceKey();
      const second = await birth({ serial: s, model: 'thermo-2', batch: 'b2', csr: newKey.csrPem });
      expect(second.status, second.text).to.equal(201);
      expect(second.json.device.batch).to.equal('b2');
      expect((await birth({ serial: s, model: 'thermo-2', batch: 'b2', csr: newKey.csrPem })).status).to.equal(200);
      expectProblem(await birth({ serial: s, model: 'thermo-2', batch: 'b2', csr: (await makeDeviceKey()).csrPem }), 409);
      expectProblem(await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: oldKey.csrPem }), 409);

      const history = await server.request('GET', `/audit/v1/devices/${s}/history`, { token: server.tokens.auditor });
      expect(history.json.events.map((e: { action: string }) => e.action)).to.deep.equal([
        'device.manufactured', 'certificate.revoked', 'device.reprovision-allowed', 'device.reprovisioned', 'device.birth-certificate-returned',
      ]);
      expect(history.json.events[2].data.reason).to.equal('RMA 4711: secure element replaced');
      expect(history.json.certificates.map((c: { kind: string; revokedAt: string | null }) => [c.kind, c.revokedAt !== null])).to.deep.equal([['birth', true], ['birth', false]]);
    });

    it('a reprovisioned device must bring a key it never had certified', async () => {
      const s = nextSerial();
      const oldKey = await makeDeviceKey();
      await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: oldKey.csrPem });
      expect((await reprovision(s, { reason: 'suspected key leak' })).status).to.equal(200);
      const response = await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: oldKey.csrPem });
      expectProblem(response, 409);
      expect(response.json.detail).to.contain('never had certified');
      expect((await birth({ serial: s, model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem })).status).to.equal(201);
    });

    it('refuses an unknown device, a missing reason and a factory token, writing nothing', async () => {
      const before = await counts(server);
      expectProblem(await reprovision('SN-404', { reason: 'x' }), 404);
      expectProblem(await reprovision('SN-000001', {}), 400);
      expectProblem(await reprovision('SN-000001', { reason: 'x' }, server.tokens.factory), 403);
      expect(await counts(server)).to.deep.equal(before);
    });
  });

  describe('device history and audit', () => {
    it('history shows the birth with its certificate; auditors and operators may read it, factories may not', async () => {
      const key = await makeDeviceKey();
      const s = nextSerial();
      const issued = await birth({ serial: s, model: 'thermo-2', batch: 'b7', csr: key.csrPem });
      const history = await server.request('GET', `/audit/v1/devices/${s}/history`, { token: server.tokens.auditor });
      expect(history.status).to.equal(200);
      expect(history.json.device).to.include({ serial: s, state: 'manufactured', batch: 'b7', line: 'line-1' });
      expect(history.json.events.map((e: { action: string }) => e.action)).to.deep.equal(['device.manufactured']);
      expect(history.json.events[0].actor).to.match(/^token:[0-9a-f]{16}$/);
      expect(history.json.events[0].data.certificateSerial).to.equal(issued.json.certificateSerial);
      expect(history.json.certificates).to.have.length(1);
      expect(history.json.certificates[0]).to.include({ kind: 'birth', serial: issued.json.certificateSerial, predecessorSha256: null });
      expect((await server.request('GET', `/audit/v1/devices/${s}/history`, { token: server.tokens.operator })).status).to.equal(200);
      expectProblem(await server.request('GET', `/audit/v1/devices/${s}/history`, { token: server.tokens.factory }), 403);
      expectProblem(await server.request('GET', '/audit/v1/devices/SN-404/history', { token: server.tokens.auditor }), 404);
    });

    it('no audit event carries a token secret', async () => {
      const rows: Array<{ canonical: string }> = await rawConnection(server.env.ctx.store)('audit_events').select('canonical');
      for (const secret of Object.values(server.tokens).map((t) => t.slice('devid_0123456789abcdef_'.length))) {
        expect(rows.some((r) => r.canonical.includes(secret))).to.equal(false);
      }
    });

    it('GET /audit/v1/verify passes on the untouched log, with signed checkpoints', async () => {
      const checkpoint = await server.request('POST', '/audit/v1/checkpoints', { token: server.tokens.operator });
      expect(checkpoint.status).to.equal(201);
      const report = await server.request('GET', '/audit/v1/verify', { token: server.tokens.auditor });
      expect(report.json).to.include({ ok: true, checkpoints: 2 });
      // The request for the checkpoint is itself the one event after it.
      expect(report.json.latestCheckpoint.seq).to.equal(report.json.events - 1);
      expectProblem(await server.request('GET', '/audit/v1/verify', { token: server.tokens.operator }), 403);
      expectProblem(await server.request('GET', '/audit/v1/checkpoints', { token: server.tokens.operator }), 403);
      const reads = (await server.env.ctx.store.audit.page(0, 10_000)).map((e) => e.action);
      expect(reads).to.include.members(['audit.verified', 'audit.history-read', 'audit.checkpoint-requested']);
      const published = await server.request('GET', '/audit/v1/checkpoints', { token: server.tokens.auditor });
      expect(published.json.publicKey).to.contain('BEGIN PUBLIC KEY');
      expectProblem(await server.request('POST', '/audit/v1/checkpoints', { token: server.tokens.auditor }), 403);
    });

    it('an outside verifier checks a checkpoint signature with OpenSSL and any JCS library', async () => {
      const published = await server.request('GET', '/audit/v1/checkpoints', { token: server.tokens.auditor });
      const latest = published.json.checkpoints.at(-1);
      const { signature, ...body } = latest;
      const canonical = JSON.stringify(Object.fromEntries(Object.entries(body).sort(([a], [b]) => (a < b ? -1 : 1))));
      const dir = mkdtempSync('/tmp/devid-test-checkpoint-');
      try {
        writeFileSync(`${dir}/key.pem`, published.json.publicKey);
        writeFileSync(`${dir}/body.json`, canonical);
        writeFileSync(`${dir}/sig.der`, Buffer.from(signature, 'base64'));
        const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', `${dir}/key.pem`, '-signature', `${dir}/sig.der`, `${dir}/body.json`], { encoding: 'utf8' });
        expect(out.trim()).to.equal('Verified OK');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

for (const kind of DATABASE_KINDS) {
  describe(`factory API concurrency on ${kind}`, function () {
    this.timeout(120_000);
    checkAnswersAgainstOpenapi();
    let server: TestServer;
    before(async () => {
      server = await startTestServer(kind);
      await server.request('PUT', '/operator/v1/models/thermo-2', { token: server.tokens.operator, body: MODEL });
    });
    after(() => server.close());

    it('20 parallel requests for one serial, each with its own key: one 201 and 19 409s; the winner can retry', async () => {
      const keys = await Promise.all(Array.from({ length: 20 }, () => makeDeviceKey()));
      const responses = await Promise.all(keys.map((key) =>
        server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-RACE', model: 'thermo-2', batch: 'b1', csr: key.csrPem } })));
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).to.have.length(1);
      expect(statuses.filter((s) => s === 409)).to.have.length(19);
      const winner = statuses.indexOf(201);
      const retry = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-RACE', model: 'thermo-2', batch: 'b1', csr: keys[winner]!.csrPem } });
      expect(retry.status).to.equal(200);
      expect(retry.json.certificate.trim()).to.equal(responses[winner]!.json.certificate.trim());
      expect(await server.env.ctx.store.certificates.byDevice('SN-RACE')).to.have.length(1);
      const report = await server.request('GET', '/audit/v1/verify', { token: server.tokens.auditor });
      expect(report.json.ok).to.equal(true);
    });

    it('a checkpoint kept outside the CA catches a cut-back log whose newer stored checkpoints were removed too', async () => {
      const key = await makeDeviceKey();
      await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-KEEP', model: 'thermo-2', batch: 'b1', csr: key.csrPem } });
      const exported = (await server.request('POST', '/audit/v1/checkpoints', { token: server.tokens.operator })).json.checkpoint;
      const db = rawConnection(server.env.ctx.store);
      await db.transaction(async (trx) => {
        await trx.raw('set local session_replication_role = replica');
        await trx.raw('delete from audit_events where seq >= ?', [exported.seq - 1]);
        await trx.raw('delete from audit_checkpoints where seq >= ?', [exported.seq - 1]);
      });
      const { ctx } = server.env;
      const auditKey = (await loadAuditKey(ctx.provider, ctx.store)).signer.key.publicKey;
      expect((await verifyAudit(ctx.store, ctx.audit, auditKey)).ok).to.equal(true);
      const withExternal = await verifyAudit(ctx.store, ctx.audit, auditKey, [fromExported(exported)]);
      expect(withExternal).to.include({ ok: false, brokenAt: exported.seq - 1 });
    });

    it('a log whose checkpoints were all removed fails verification', async () => {
      const db = rawConnection(server.env.ctx.store);
      await db.transaction(async (trx) => {
        await trx.raw('set local session_replication_role = replica');
        await trx.raw('delete from audit_checkpoints');
      });
      const report = await server.request('GET', '/audit/v1/verify', { token: server.tokens.auditor });
      expect(report.json).to.include({ ok: false });
      expect(report.json.reason).to.contain('no signed checkpoint');
    });

    it('deleting the newest events after a checkpoint is detected and names the event', async () => {
      const key = await makeDeviceKey();
      await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-TAIL', model: 'thermo-2', batch: 'b1', csr: key.csrPem } });
      const checkpoint = await server.request('POST', '/audit/v1/checkpoints', { token: server.tokens.operator });
      const seq = checkpoint.json.checkpoint.seq as number;
      const db = rawConnection(server.env.ctx.store);
      await db.transaction(async (trx) => {
        await trx.raw('set local session_replication_role = replica');
        await trx.raw('delete from audit_events where seq >= ?', [seq - 1]);
      });
      const report = await server.request('GET', '/audit/v1/verify', { token: server.tokens.auditor });
      expect(report.json).to.include({ ok: false, brokenAt: seq - 1 });
      expect(report.json.reason).to.contain('missing');
    });
  });
}
