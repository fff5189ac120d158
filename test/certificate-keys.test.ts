import { expect } from 'chai';
import canonicalize from 'canonicalize';
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcmeClient, AcmeError } from '../client/acme-client.ts';
import { certificatePem } from '../ca/pem.ts';
import { Device } from '../client/device.ts';
import { fileFactoryKey } from '../client/factory-key.ts';
import { spkiOfJwk } from '../pki/public-key.ts';
import { STATEMENT_TYPE } from '../registry/manufacturers/ownership-statements.ts';
import { createToken } from '../server/tokens.ts';
import { directoryUrl, makeDevice, PUBLIC_HOST, toLoopback } from './support/acme-device.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { badCertificateKeys, certificateAround, csrAround, oddPublicKeys, withSubjectKey } from './support/hostile.ts';
import { outsideCa, type OutsideCa } from './support/outside-ca.ts';

const SENSOR = { name: 'key-sensor', hwType: '1.3.6.1.4.1.99999.8.1', manufacturer: 'Keyco' };
const INFINITY = oddPublicKeys().find(([name]) => name === 'EC point at infinity (00)')![1];
const derOf = (pem: string) => Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');

/**
 * A certificate key node:crypto cannot take (the EC point at infinity makes
 * Node abort when it reads the key's details) is refused wherever a
 * certificate, key or CSR comes in: a 400 problem document, nothing written,
 * the server still up.
 */
describe('outside certificate keys: every refused key is a 400, nothing written, the process alive', function () {
  this.timeout(300_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let bob: string;
  let dir: string;
  let oem: OutsideCa;
  const as = (token: string) => (method: string, path: string, body?: unknown) => server.request(method, path, { token, ...(body === undefined ? {} : { body }) });
  const alice = (method: string, path: string, body?: unknown) => as(server.tokens.operator)(method, path, body);
  const keyOf = (which: 'root' | 'intermediate') => readFileSync(join(oem.dir, which, 'key.pem'), 'utf8');
  const writes = async () => {
    const { store } = server.env.ctx;
    return { events: await store.audit.count(), devices: await store.devices.count(), certificates: await store.certificates.count() };
  };

  /** The answer is a 400 problem document whose detail names the key, nothing was written, and the server still answers. */
  async function refused(send: () => Promise<{ status: number; headers: Record<string, unknown>; json?: { detail?: string } }>, detail: RegExp, what: string) {
    const before = await writes();
    const answer = await send();
    expect(answer.status, `${what}: ${JSON.stringify(answer.json)}`).to.equal(400);
    expect(String(answer.headers['content-type']), what).to.contain('problem+json');
    expect(answer.json?.detail, what).to.match(detail);
    expect(await writes(), `${what}: nothing written`).to.deep.equal(before);
    expect((await server.request('GET', '/healthz')).status, `${what}: still up`).to.equal(200);
  }

  before(async () => {
    server = await startTestServer('pglite');
    bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
    dir = mkdtempSync(join(tmpdir(), 'devid-test-keys-'));
    oem = outsideCa('keyco', join(dir, 'keyco'));
    expect((await alice('PUT', `/operator/v1/models/${SENSOR.name}`, { hwType: SENSOR.hwType, manufacturer: SENSOR.manufacturer })).status).to.equal(201);
    const proposed = await alice('PUT', '/operator/v1/manufacturers/keyco', { certificates: [oem.rootPem, oem.intermediatePem], models: [SENSOR.name], crl: null });
    expect(proposed.status).to.equal(201);
    expect((await as(bob)('POST', '/operator/v1/manufacturers/keyco/approve', { proposal: proposed.json.pending.sha256 })).status).to.equal(200);
  });
  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a manifest signed by a certificate of the registered manufacturer whose key is the point at infinity (or another refused key)', async () => {
    const signer = oem.signer();
    const devices = [{ serial: 'key-m1', model: SENSOR.name, birthCertificateSha256: 'a'.repeat(64) }];
    const signature = nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), signer.keyPem).toString('base64');
    for (const [name, key] of badCertificateKeys()) {
      const bad = certificatePem(withSubjectKey(derOf(signer.certPem), key, keyOf('intermediate')));
      await refused(() => alice('POST', '/operator/v1/manufacturers/keyco/manifests', { devices, signature, signer: bad }), /the signer .*public key/, `signer: ${name}`);
    }
    expect((await server.request('GET', '/audit/v1/devices/key-m1/history', { token: server.tokens.auditor })).status).to.equal(404);
  });

  it('a manifest that lists a birth certificate with such a key', async () => {
    const birth = oem.birth({ serial: 'key-m2', hwType: SENSOR.hwType });
    const signer = oem.signer();
    for (const [name, key] of badCertificateKeys()) {
      const bad = withSubjectKey(birth.der, key, keyOf('intermediate'));
      const devices = [{ serial: 'key-m2', model: SENSOR.name, birthCertificateSha256: sha256(bad), birthCertificate: certificatePem(bad) }];
      const signature = nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), signer.keyPem).toString('base64');
      await refused(() => alice('POST', '/operator/v1/manufacturers/keyco/manifests', { devices, signature, signer: signer.certPem }), /birthCertificate: x5c\[0\] has a public key that is refused/, `birth: ${name}`);
    }
  });

  it("a manufacturer's certificate list (PUT) with an intermediate that carries such a key", async () => {
    for (const [name, key] of badCertificateKeys()) {
      const bad = certificatePem(withSubjectKey(derOf(oem.intermediatePem), key, keyOf('root')));
      await refused(() => alice('PUT', '/operator/v1/manufacturers/keyco-2', { certificates: [oem.rootPem, bad], models: [SENSOR.name], crl: null }), /certificates\[1\] has a public key that is refused/, `PUT: ${name}`);
      expect((await alice('GET', '/operator/v1/manufacturers/keyco-2')).status, 'nothing registered').to.equal(404);
    }
  });

  it('an ownership statement import whose signer has such a key', async () => {
    const birth = oem.birth({ serial: 'key-o1', hwType: SENSOR.hwType });
    const signerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const [name, key] of badCertificateKeys()) {
      const bad = withSubjectKey(derOf(oem.intermediatePem), key, keyOf('root'));
      const statement = {
        type: STATEMENT_TYPE, version: 1, device: 'key-o1', birthCertificateSha256: birth.sha256, from: null, to: 'buyer', at: new Date().toISOString(), previous: null,
        signer: [bad.toString('base64'), derOf(oem.rootPem).toString('base64')],
      };
      const signature = nodeSign('sha256', Buffer.from(canonicalize(statement)!, 'utf8'), signerKey).toString('base64');
      await refused(() => alice('POST', '/operator/v1/ownership-statements', { statements: [{ ...statement, signature }], manufacturer: 'keyco', model: SENSOR.name }), /statements\[0\]\.signer has a public key that is refused/, `statement: ${name}`);
    }
  });

  it("an ACME attestation whose x5c (an outside birth chain) holds such a key, for a claimed device", async () => {
    const birth = oem.birth({ serial: 'key-a1', hwType: SENSOR.hwType });
    const bad = withSubjectKey(birth.der, INFINITY, keyOf('intermediate'));
    expect((await alice('POST', '/operator/v1/devices/key-a1/claim', { manufacturer: 'keyco', model: SENSOR.name, birthCertificateSha256: sha256(bad) })).status).to.equal(201);
    const home = mkdtempSync(join(dir, 'device-'));
    writeFileSync(join(home, 'factory-key.pem'), birth.keyPem, { mode: 0o600 });
    writeFileSync(join(home, 'birth.pem'), certificatePem(bad) + oem.intermediatePem);
    const device = new Device(birth.serial, home, await fileFactoryKey(join(home, 'factory-key.pem')), new AcmeClient(directoryUrl(server), Device.accountKey(home), server.rootPem, toLoopback), PUBLIC_HOST);
    const certificates = await server.env.ctx.store.certificates.count();
    const error = await device.enroll().then(() => undefined, (err: unknown) => err);
    expect(error).to.be.instanceOf(AcmeError);
    expect((error as AcmeError).problem?.type).to.equal('urn:ietf:params:acme:error:badAttestationStatement');
    expect((error as AcmeError).problem?.detail).to.match(/check 1 \(chain\).*x5c\[0\] has a public key that is refused/);
    expect(await server.env.ctx.store.certificates.count(), 'no certificate issued').to.equal(certificates);
    expect((await server.request('GET', '/healthz')).status).to.equal(200);
  });

  it('a factory CSR, a support CSR and an ACME finalize CSR with the point at infinity', async () => {
    const csr = csrAround(INFINITY).toString('base64url');
    await refused(() => server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'key-f1', model: 'thermo-2', batch: 'b1', csr } }), /EC point/, 'factory CSR');

    const device = await makeDevice(server, 'key-s1');
    await device.enroll();
    const vendor = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'vendor', vendor: 'key-svc' } as never, 'cli', new Date())).token;
    const grant = await alice('POST', '/operator/v1/devices/key-s1/support-grants', { vendor: 'key-svc', reason: 'repair', hours: 1 });
    expect((await as(bob)('POST', `/operator/v1/support-grants/${grant.json.id}/approve`, {})).status).to.equal(200);
    await refused(() => as(vendor)('POST', `/support/v1/grants/${grant.json.id}/certificate`, { csr }), /EC point/, 'support CSR');

    // The device attests a good key, then finalizes with a CSR of the point at infinity.
    const { acme } = device;
    const post = acme.post.bind(acme);
    let finalized: AcmeError | undefined;
    acme.post = async (url, payload, options) => {
      if (typeof payload !== 'object' || payload === null || !('csr' in payload)) return post(url, payload, options);
      finalized = await post(url, { csr }, options).then(() => undefined, (err: AcmeError) => err);
      throw finalized;
    };
    const certificates = await server.env.ctx.store.certificates.count();
    await device.enroll().catch(() => undefined);
    expect(finalized?.status).to.equal(400);
    expect(finalized?.problem?.detail).to.match(/EC point/);
    expect(await server.env.ctx.store.certificates.count()).to.equal(certificates);
  });

  it('every odd key, in a certificate at every endpoint that takes one: 400 naming the key, nothing written', async () => {
    const signer = oem.signer();
    for (const [name, key] of oddPublicKeys()) {
      const leaf = certificateAround(key);
      const ca = certificateAround(key, true);
      const devices = [{ serial: 'key-h1', model: SENSOR.name, birthCertificateSha256: sha256(leaf), birthCertificate: certificatePem(leaf) }];
      const statement = {
        type: STATEMENT_TYPE, version: 1, device: 'key-h1', birthCertificateSha256: 'b'.repeat(64), from: null, to: 'buyer', at: new Date().toISOString(), previous: null, signer: [leaf.toString('base64')], signature: 'AAAA',
      };
      const sends: Array<[string, () => ReturnType<typeof alice>, RegExp]> = [
        ['root', () => alice('PUT', '/operator/v1/manufacturers/keyco-3', { certificates: [certificatePem(ca)], models: [SENSOR.name], crl: null }), /certificates\[0\] has a public key that is refused/],
        ['intermediate', () => alice('PUT', '/operator/v1/manufacturers/keyco-3', { certificates: [oem.rootPem, certificatePem(ca)], models: [SENSOR.name], crl: null }), /certificates\[1\] has a public key that is refused/],
        ['manifest signer', () => alice('POST', '/operator/v1/manufacturers/keyco/manifests', { devices: devices.map(({ birthCertificate: _, ...d }) => d), signature: 'AAAA', signer: certificatePem(leaf) }), /the signer .*public key/],
        ['manifest signer intermediate', () => alice('POST', '/operator/v1/manufacturers/keyco/manifests', { devices: devices.map(({ birthCertificate: _, ...d }) => d), signature: 'AAAA', signer: signer.certPem + certificatePem(ca) }), /public key that is refused/],
        ['manifest birth certificate', () => alice('POST', '/operator/v1/manufacturers/keyco/manifests', { devices }), /birthCertificate: x5c\[0\] has a public key that is refused/],
        ['statement signer', () => alice('POST', '/operator/v1/ownership-statements', { statements: [statement], manufacturer: 'keyco', model: SENSOR.name }), /statements\[0\]\.signer has a public key that is refused/],
      ];
      for (const [where, send, detail] of sends) await refused(send, detail, `${where}: ${name}`);
    }
  });

  it('an ACME account key (JWK) off the curve, of the wrong length or size', async () => {
    const device = await makeDevice(server, 'key-j1');
    const { acme } = device;
    await acme.init();
    const p = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex').toString('base64url');
    const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64url');
    const jwks = [
      { kty: 'EC', crv: 'P-256', x: b64(32, 0), y: b64(32, 0) }, { kty: 'EC', crv: 'P-256', x: p, y: p }, { kty: 'EC', crv: 'P-256', x: b64(31), y: b64(32) },
      { kty: 'EC', crv: 'P-521', x: b64(66), y: b64(66) }, { kty: 'OKP', crv: 'Ed25519', x: b64(31) }, { kty: 'OKP', crv: 'X25519', x: b64(32) },
      { kty: 'RSA', n: b64(128, 0xc5), e: 'AQAB' }, { kty: 'RSA', n: b64(256, 0xc5), e: 'Aw' }, { kty: 'RSA', n: '', e: '' },
    ];
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const jwk of jwks) {
      await refused(async () => acme.send('POST', acme.directory.newAccount, await acme.sign(acme.directory.newAccount, { termsOfServiceAgreed: true }, { jwkKey: key, header: { jwk } })), /./, `JWK ${JSON.stringify(jwk).slice(0, 60)}`);
    }
  });

  it('account and COSE keys go from JWK to SubjectPublicKeyInfo without node:crypto, to the bytes node:crypto exports', () => {
    const keys: KeyObject[] = [
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
      generateKeyPairSync('ed25519').publicKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
    ];
    for (const key of keys) {
      expect(spkiOfJwk(key.export({ format: 'jwk' }) as Record<string, unknown>).equals(key.export({ format: 'der', type: 'spki' })), key.asymmetricKeyType).to.equal(true);
    }
  });
});
