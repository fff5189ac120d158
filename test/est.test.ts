import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { expect } from 'chai';
import { startTestServer, type TestServer } from './support/api.ts';
import { DATABASE_KINDS } from './support/databases.ts';
import { rawConnection } from '../store/test-access.ts';
import { bornDevice, certsOf, estCsr, estSession, newKey, type Credentials, type EstAnswer } from './support/est-client.ts';
import { opensslVerify } from './support/openssl.ts';

const ENROLL = '/.well-known/est/meters/simpleenroll';
const REENROLL = '/.well-known/est/meters/simplereenroll';
const PKCS10 = { 'content-type': 'application/pkcs10' };
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse' };

/** Every refusal: a 4xx with a text/plain reason (RFC 7030 4.2.3). */
function refusedWith(answer: EstAnswer, status: number, reason?: RegExp): void {
  expect(answer.status, answer.text).to.equal(status);
  expect(answer.type).to.match(/^text\/plain/);
  if (reason) expect(answer.text).to.match(reason);
}

function pemOf(cert: X509Certificate): string {
  return cert.toString();
}

for (const kind of DATABASE_KINDS) describe(`EST (RFC 7030) on ${kind}: cacerts, csrattrs, simpleenroll and simplereenroll by TLS client certificate with a tls-exporter binding`, function () {
  this.timeout(120_000);
  let server: TestServer;
  let dir: string;
  let counter = 0;
  const nextSerial = () => `EST-${++counter}`;

  before(async () => {
    server = await startTestServer(kind);
    dir = mkdtempSync(join(tmpdir(), 'devid-test-est-'));
    const operator = (method: string, path: string, body: unknown) => server.request(method, path, { token: server.tokens.operator, body });
    expect((await operator('PUT', '/operator/v1/device-classes/meters', { ...CLASS, est: true })).status).to.equal(201);
    expect((await operator('PUT', '/operator/v1/device-classes/acme-only', CLASS)).status).to.equal(201);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function estDevice(className = 'meters'): Promise<{ serial: string; birth: Credentials }> {
    const serial = nextSerial();
    const birth = await bornDevice(server, serial);
    const assigned = await server.request('PUT', `/operator/v1/devices/${serial}/class`, { token: server.tokens.operator, body: { class: className } });
    expect(assigned.status, assigned.text).to.equal(200);
    return { serial, birth };
  }

  /** One enrollment on a session of its own: the CSR bound to it unless `binding` says otherwise. */
  async function enroll(path: string, client: Credentials | undefined, key: Awaited<ReturnType<typeof newKey>>, options: { name?: string; binding?: string | null } = {}): Promise<EstAnswer> {
    const session = await estSession(server, client);
    try {
      const password = options.binding === null ? undefined : options.binding ?? session.binding;
      const csr = await estCsr(key, { ...(options.name !== undefined ? { name: options.name } : {}), ...(password !== undefined ? { challengePassword: password } : {}) });
      return await session.request('POST', path, csr, PKCS10);
    } finally {
      session.close();
    }
  }

  function issuedOf(answer: EstAnswer): X509Certificate {
    expect(answer.status, answer.text).to.equal(200);
    expect(answer.type).to.equal('application/pkcs7-mime; smime-type=certs-only');
    const certs = certsOf(answer.text);
    expect(certs).to.have.length(1);
    return certs[0]!;
  }

  /** The certificate's serial as the CA records it. */
  async function serialOf(cert: X509Certificate): Promise<string> {
    return (await server.env.ctx.store.certificates.bySha256(createHash('sha256').update(cert.raw).digest('hex')))!.serial;
  }

  async function actions(serial: string): Promise<Array<{ action: string; data: Record<string, unknown> }>> {
    const history = await server.request('GET', `/audit/v1/devices/${serial}/history`, { token: server.tokens.auditor });
    return history.json.events;
  }

  it('cacerts: the operational intermediate and the root as certs-only CMS, read by openssl and by asn1js', async () => {
    const session = await estSession(server);
    const answer = await session.request('GET', '/.well-known/est/cacerts');
    session.close();
    expect(answer.status).to.equal(200);
    expect(answer.type).to.equal('application/pkcs7-mime');
    const certs = certsOf(answer.text);
    const { hierarchy } = server.running;
    expect(certs.map((c) => c.raw.toString('hex')).sort()).to.deep.equal([hierarchy.operational.record.der, hierarchy.root.record.der].map((d) => Buffer.from(d).toString('hex')).sort());
    const file = join(dir, 'cacerts.p7');
    writeFileSync(file, Buffer.from(answer.text.replace(/\s+/g, ''), 'base64'));
    const printed = execFileSync('openssl', ['pkcs7', '-inform', 'DER', '-in', file, '-print_certs', '-noout'], { encoding: 'utf8' });
    expect(printed.match(/subject=/g)).to.have.length(2);
    // The same under a label that allows EST; a label of a class without EST is refused, an unknown one not found.
    const labelled = await estSession(server);
    expect((await labelled.request('GET', '/.well-known/est/meters/cacerts')).text).to.equal(answer.text);
    labelled.close();
    const other = await estSession(server);
    refusedWith(await other.request('GET', '/.well-known/est/acme-only/cacerts'), 403, /does not allow EST/);
    other.close();
    const unknown = await estSession(server);
    refusedWith(await unknown.request('GET', '/.well-known/est/no-such-class/cacerts'), 404);
    unknown.close();
  });

  it('csrattrs: challengePassword and the key types, as RFC 7030 4.5.2 CsrAttrs', async () => {
    const session = await estSession(server);
    const answer = await session.request('GET', '/.well-known/est/csrattrs');
    session.close();
    expect(answer.status).to.equal(200);
    expect(answer.type).to.equal('application/csrattrs');
    const parsed = asn1js.fromBER(Buffer.from(answer.text.replace(/\s+/g, ''), 'base64'));
    const items = (parsed.result as asn1js.Sequence).valueBlock.value;
    const oids = items.filter((i) => i instanceof asn1js.ObjectIdentifier).map((i) => (i as asn1js.ObjectIdentifier).valueBlock.toString());
    expect(oids).to.include('1.2.840.113549.1.9.7');
    const ec = items.find((i) => i instanceof asn1js.Sequence) as asn1js.Sequence;
    expect((ec.valueBlock.value[0] as asn1js.ObjectIdentifier).valueBlock.toString()).to.equal('1.2.840.10045.2.1');
    const file = join(dir, 'csrattrs.der');
    writeFileSync(file, Buffer.from(answer.text.replace(/\s+/g, ''), 'base64'));
    expect(execFileSync('openssl', ['asn1parse', '-inform', 'DER', '-in', file], { encoding: 'utf8' })).to.match(/challengePassword[\s\S]*prime256v1/);
  });

  it('enrolls with the birth certificate, answers a retry with the same certificate, re-enrolls with the operational one; the lineage is recorded', async () => {
    const { serial, birth } = await estDevice();
    const key = await newKey();
    const first = issuedOf(await enroll(ENROLL, birth, key, { name: `CN=${serial}` }));
    expect(first.subject).to.equal(`CN=${serial}`);
    const { hierarchy } = server.running;
    const verified = opensslVerify(server.rootPem, hierarchy.operational.certificate.toString('pem'), pemOf(first), 'sslclient');
    expect(verified.ok, verified.output).to.equal(true);
    // A lost answer: the same birth certificate and key get the same certificate, nothing new is issued.
    const count = await server.env.ctx.store.certificates.count();
    expect(issuedOf(await enroll(ENROLL, birth, key)).serialNumber).to.equal(first.serialNumber);
    expect(await server.env.ctx.store.certificates.count()).to.equal(count);

    const operational: Credentials = { keyPem: key.keyPem, certPem: pemOf(first) };
    const nextKey = await newKey();
    const second = issuedOf(await enroll(REENROLL, operational, nextKey));
    expect(second.serialNumber).to.not.equal(first.serialNumber);
    // A retry of the re-enrollment too.
    expect(issuedOf(await enroll(REENROLL, operational, nextKey)).serialNumber).to.equal(second.serialNumber);

    const events = await actions(serial);
    const enrolled = events.find((e) => e.action === 'device.enrolled')!;
    const renewed = events.find((e) => e.action === 'device.renewed')!;
    expect(enrolled.data).to.include({ protocol: 'est', operation: 'simpleenroll', predecessorKind: 'birth', predecessorSha256: new X509Certificate(birth.certPem).fingerprint256.replace(/:/g, '').toLowerCase() });
    expect(renewed.data).to.include({ protocol: 'est', operation: 'simplereenroll', predecessorKind: 'operational', predecessorSerial: await serialOf(first) });

    // A second re-enrollment from the first certificate with another key: a lineage fork, 409 and audited.
    refusedWith(await enroll(REENROLL, operational, await newKey()), 409, /successor/);
    expect((await actions(serial)).map((e) => e.action)).to.include('device.lineage-fork');
  });

  it('of two re-enrollments racing from one certificate with two keys, one gets the successor, the other 409; a revoked certificate re-enrolls no more', async () => {
    const { serial, birth } = await estDevice();
    const key = await newKey();
    const operational: Credentials = { keyPem: key.keyPem, certPem: pemOf(issuedOf(await enroll(ENROLL, birth, key))) };
    const keys = [await newKey(), await newKey()];
    const answers = await Promise.all(keys.map((k) => enroll(REENROLL, operational, k)));
    expect(answers.map((a) => a.status).sort(), answers.map((a) => a.text).join(' ')).to.deep.equal([200, 409]);
    const won = answers.findIndex((a) => a.status === 200);
    const successor = issuedOf(answers[won]!);
    const revoked = await server.request('POST', `/operator/v1/certificates/${await serialOf(successor)}/revoke`, { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    refusedWith(await enroll(REENROLL, { keyPem: keys[won]!.keyPem, certPem: pemOf(successor) }, await newKey()), 403, /revoked/);
    expect((await actions(serial)).map((e) => e.action)).to.include('device.lineage-fork');
  });

  it('re-enrollment waits for the birth key once factoryReattestEvery has passed; a model with a firmware allowlist is refused (check 5)', async () => {
    const { serial, birth } = await estDevice();
    const key = await newKey();
    const operational: Credentials = { keyPem: key.keyPem, certPem: pemOf(issuedOf(await enroll(ENROLL, birth, key))) };
    await rawConnection(server.env.ctx.store)('devices').where({ serial }).update({ factory_attested_at: new Date(Date.now() - 31 * 86_400_000) });
    refusedWith(await enroll(REENROLL, operational, await newKey()), 403, /factory re-attestation/);
    const again = await newKey();
    const renewed: Credentials = { keyPem: again.keyPem, certPem: pemOf(issuedOf(await enroll(ENROLL, birth, again))) };
    issuedOf(await enroll(REENROLL, renewed, await newKey()));

    const operator = (method: string, path: string, body: unknown) => server.request(method, path, { token: server.tokens.operator, body });
    expect((await operator('PUT', '/operator/v1/models/est-fw', { hwType: '1.3.6.1.4.1.99999.1.9', manufacturer: 'Acme Devices', defaultClass: 'meters' })).status).to.be.oneOf([200, 201]);
    expect((await operator('PUT', '/operator/v1/models/est-fw/firmware', { allowed: [{ version: '1.0.0', digest: 'ab'.repeat(32) }] })).status).to.equal(200);
    const withFirmware = await bornDevice(server, nextSerial(), 'est-fw');
    refusedWith(await enroll(ENROLL, withFirmware, await newKey()), 403, /check 5 \(firmware\)/);
  });

  it('refuses a CSR without the binding, with another session\'s binding, with the client certificate\'s key, or naming anything but the device', async () => {
    const { serial, birth } = await estDevice();
    refusedWith(await enroll(ENROLL, birth, await newKey(), { binding: null }), 400, /challengePassword/);
    const other = await estSession(server, birth);
    const stolen = other.binding;
    other.close();
    refusedWith(await enroll(ENROLL, birth, await newKey(), { binding: stolen }), 400, /channel binding/);
    refusedWith(await enroll(ENROLL, birth, await newKey(), { binding: 'not base64 at all' }), 400, /channel binding/);
    const birthKey = { keys: await importPair(birth.keyPem), signing: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm };
    refusedWith(await enroll(ENROLL, birth, { ...birthKey, keyPem: birth.keyPem }, { name: `CN=${serial}` }), 400, /key of the client certificate/);
    refusedWith(await enroll(ENROLL, birth, await newKey(), { name: 'CN=someone-else' }), 400, /subject/);
    refusedWith(await enroll(ENROLL, birth, await newKey(), { name: `CN=${serial}, O=Acme` }), 400, /subject/);
    // Over TLS 1.2 there is no tls-exporter to bind to.
    const old = await estSession(server, birth, 'TLSv1.2');
    refusedWith(await old.request('POST', ENROLL, await estCsr(await newKey(), { challengePassword: old.binding }), PKCS10), 403, /TLS 1.3/);
    old.close();
    // The refusals of a device that proved its key are audited with their reason.
    const refusals = (await actions(serial)).filter((e) => e.action === 'device.enrollment-refused');
    const reasons = refusals.map((e) => String(e.data.reason));
    for (const reason of [/no challengePassword/, /not the channel binding/, /key of the client certificate/, /subject/]) expect(reasons.some((r) => reason.test(r)), String(reason)).to.equal(true);
  });

  it('refuses clients without a suitable certificate, classes without EST, and devices that may not enroll (403, audited)', async () => {
    const { serial, birth } = await estDevice();
    refusedWith(await enroll(ENROLL, undefined, await newKey()), 403, /client certificate/);
    // Without a certificate nothing it sends is read: random bytes are the same 403, not a verdict on the body.
    const anonymous = await estSession(server, undefined);
    try {
      refusedWith(await anonymous.request('POST', ENROLL, randomBytes(300), PKCS10), 403, /client certificate/);
    } finally {
      anonymous.close();
    }
    // The birth certificate does not re-enroll; an operational one does not enroll.
    refusedWith(await enroll(REENROLL, birth, await newKey()), 403, /newest operational certificate/);
    const key = await newKey();
    const operational = { keyPem: key.keyPem, certPem: pemOf(issuedOf(await enroll(ENROLL, birth, key))) };
    refusedWith(await enroll(ENROLL, operational, await newKey()), 403, /birth certificate/);
    // A certificate from no CA of ours.
    const stranger = selfSigned(dir);
    refusedWith(await enroll(ENROLL, stranger, await newKey()), 403, /birth certificate/);
    // A device of a class without EST, with or without a label.
    const acmeOnly = await estDevice('acme-only');
    refusedWith(await enroll('/.well-known/est/simpleenroll', acmeOnly.birth, await newKey()), 403, /does not allow EST/);
    refusedWith(await enroll(ENROLL, acmeOnly.birth, await newKey()), 403, /class acme-only, not meters/);
    refusedWith(await enroll('/.well-known/est/simpleenroll', acmeOnly.birth, await newKey(), { binding: null }), 403, /does not allow EST/);
    // With EST off for its class, EST writes nothing for the device.
    expect((await actions(acmeOnly.serial)).map((e) => e.action)).not.to.include('device.enrollment-refused');
    const suspended = await server.request('POST', `/operator/v1/devices/${serial}/suspend`, { token: server.tokens.operator, body: {} });
    expect(suspended.status, suspended.text).to.equal(200);
    refusedWith(await enroll(ENROLL, birth, await newKey()), 403, /suspended/);
    expect((await actions(serial)).filter((e) => e.action === 'device.enrollment-refused').map((e) => e.data.reason)).to.satisfy((r: string[]) => r.some((x) => /suspended/.test(x)));
  });

  it('answers hostile input with a 4xx text/plain reason, never a 500', async () => {
    const { birth } = await estDevice();
    const session = async (method: string, path: string, body?: string | Buffer, headers: Record<string, string> = PKCS10) => {
      const s = await estSession(server, birth);
      try {
        return await s.request(method, path, body, headers);
      } finally {
        s.close();
      }
    };
    const csr = await estCsr(await newKey(), { challengePassword: 'x' });
    refusedWith(await session('POST', ENROLL, Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 37) % 256))), 400);
    refusedWith(await session('POST', ENROLL, csr.slice(0, csr.length - 9)), 400);
    refusedWith(await session('POST', ENROLL, Buffer.from('MII=').toString()), 400);
    refusedWith(await session('POST', ENROLL, 'AAAA'), 400);
    refusedWith(await session('POST', ENROLL, csr, { 'content-type': 'application/json' }), 415);
    refusedWith(await session('POST', ENROLL, csr, {}), 415);
    refusedWith(await session('POST', ENROLL, 'A'.repeat(200_000)), 413);
    refusedWith(await session('GET', ENROLL), 405);
    refusedWith(await session('POST', '/.well-known/est/cacerts', csr), 405);
    refusedWith(await session('GET', '/.well-known/est/serverkeygen'), 404);
    refusedWith(await session('GET', '/.well-known/est/a/b/cacerts'), 404);
    refusedWith(await session('GET', `/.well-known/est/${'%00'.repeat(10)}/cacerts`), 404);
    // Attributes whose values are not what their type says: each a 400 naming the CSR, none a 500.
    const odd = async (attributes: x509.Attribute[], password?: string) => {
      const s = await estSession(server, birth);
      try {
        return await s.request('POST', ENROLL, await estCsr(await newKey(), { challengePassword: password ?? s.binding, attributes }), PKCS10);
      } finally {
        s.close();
      }
    };
    const der = (hex: string) => Buffer.from(hex, 'hex');
    refusedWith(await odd([new x509.Attribute('1.2.840.113549.1.9.14', [der('020101')])]), 400);
    refusedWith(await odd([new x509.Attribute('1.2.840.113549.1.9.14', [der('3003020101')])]), 400);
    refusedWith(await odd([new x509.Attribute('1.2.840.113549.1.9.14', [der('300d300b0603551d1104040c0a0102')])]), 400);
    refusedWith(await odd([new x509.Attribute('1.2.840.113549.1.9.14', [der('3000'), der('3000')])]), 400);
    refusedWith(await odd([new x509.Attribute('1.2.840.113549.1.9.7', [der('1603616263')])]), 400, /challengePassword/);
    refusedWith(await odd([new x509.Attribute('1.2.3.4', [der('0500')])]), 400);
    // Keys the CA does not certify: P-521, RSA 1024.
    refusedWith(await enroll(ENROLL, birth, await newKey('p521')), 400, /P-256 or P-384/);
    refusedWith(await enroll(ENROLL, birth, await newKey('rsa1024')), 400, /RSA/);
  });

  it('tls-exporter: no context and an empty one agree on TLS 1.3 (RFC 8446 7.5), not on TLS 1.2 (RFC 5705), which EST refuses', async () => {
    for (const [version, same] of [['TLSv1.3', true], ['TLSv1.2', false]] as const) {
      const session = await estSession(server, undefined, version);
      // node's context argument is optional (its types say otherwise): without it, no context at all.
      const withoutContext = session.socket.exportKeyingMaterial as unknown as (this: typeof session.socket, length: number, label: string) => Buffer;
      const none = withoutContext.call(session.socket, 32, 'EXPORTER-Channel-Binding');
      expect(none.toString('base64') === session.binding, version).to.equal(same);
      session.close();
    }
  });

  it('clients without a certificate, and with one, still reach ACME and the APIs unchanged', async () => {
    const plain = await estSession(server);
    const directory = await plain.request('GET', '/acme/directory');
    plain.close();
    expect(directory.status).to.equal(200);
    const { birth } = await estDevice();
    const withCert = await estSession(server, birth);
    const health = await withCert.request('GET', '/acme/directory');
    withCert.close();
    expect(health.status).to.equal(200);
    const api = await server.request('GET', '/operator/v1/device-classes/meters', { token: server.tokens.operator });
    expect(api.status).to.equal(200);
    expect(api.json.est).to.equal(true);
  });
});

async function importPair(keyPem: string): Promise<CryptoKeyPair> {
  const { createPrivateKey, createPublicKey, webcrypto } = await import('node:crypto');
  const privateKey = createPrivateKey(keyPem);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  return {
    privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), algorithm, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', createPublicKey(privateKey).export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']),
  };
}

/** A self-signed certificate made by openssl: a client certificate from no CA of ours. */
function selfSigned(dir: string): Credentials {
  const key = join(dir, 'stranger.key');
  const cert = join(dir, 'stranger.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=stranger', '-days', '1'], { stdio: 'ignore' });
  return { keyPem: readFileSync(key, 'utf8'), certPem: readFileSync(cert, 'utf8') };
}
