import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { ASSURANCE_POLICY } from '../ca/asn1.ts';
import { buildAttestation } from '../client/attestation.ts';
import { attestationStatement, ID_AA_ATTESTATION } from '../client/est-attributes.ts';
import { rawConnection } from '../store/test-access.ts';
import { PUBLIC_HOST } from './support/acme-device.ts';
import { BAD_VALUES, prng } from './support/hostile.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { DATABASE_KINDS } from './support/databases.ts';
import { bornDevice, certsOf, estCsr, estSession, newKey, type Credentials, type EstAnswer } from './support/est-client.ts';
import { opensslVerify } from './support/openssl.ts';

const PKCS10 = { 'content-type': 'application/pkcs10' };
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse' };
const SENSOR_MODEL = 'sensor-1';

function refusedWith(answer: EstAnswer, status: number, reason?: RegExp): void {
  expect(answer.status, answer.text).to.equal(status);
  expect(answer.type).to.match(/^text\/plain/);
  if (reason) expect(answer.text).to.match(reason);
}

function issuedOf(answer: EstAnswer): X509Certificate {
  expect(answer.status, answer.text).to.equal(200);
  const certs = certsOf(answer.text);
  expect(certs).to.have.length(1);
  return certs[0]!;
}

function policiesOf(cert: X509Certificate): readonly string[] {
  return new x509.X509Certificate(new Uint8Array(cert.raw)).getExtension(x509.CertificatePolicyExtension)?.policies ?? [];
}

const sha256 = (cert: X509Certificate) => createHash('sha256').update(cert.raw).digest('hex');

for (const kind of DATABASE_KINDS) describe(`EST gateways (RFC 7030 3.7) on ${kind}: mediated devices, declarations, revocation of what a gateway mediated`, function () {
  this.timeout(180_000);
  let server: TestServer;
  let counter = 0;
  const nextSerial = (prefix: string) => `${prefix}-${++counter}`;
  const operator = (method: string, path: string, body?: unknown) => server.request(method, path, { token: server.tokens.operator, ...(body !== undefined ? { body } : {}) });

  before(async () => {
    server = await startTestServer(kind);
    expect((await operator('PUT', `/operator/v1/models/${SENSOR_MODEL}`, { hwType: '1.3.6.1.4.1.99999.1.20', manufacturer: 'Acme Devices' })).status).to.equal(201);
    expect((await operator('PUT', '/operator/v1/device-classes/gateways', { ...CLASS, est: true, gateway: { models: [SENSOR_MODEL] } })).status).to.equal(201);
    expect((await operator('PUT', '/operator/v1/device-classes/other-gateways', { ...CLASS, est: true, gateway: { models: ['thermo-2'] } })).status).to.equal(201);
    expect((await operator('PUT', '/operator/v1/device-classes/sensors', { ...CLASS, ttl: '2h', est: true })).status).to.equal(201);
  });
  after(async () => {
    await server?.close();
  });

  /** A device born on the test line, of a class, enrolled over EST with its birth certificate: its operational credentials. */
  async function enrolledDevice(className: string, prefix = 'GW'): Promise<{ serial: string; operational: Credentials; birth: Credentials }> {
    const serial = nextSerial(prefix);
    const birth = await bornDevice(server, serial);
    expect((await operator('PUT', `/operator/v1/devices/${serial}/class`, { class: className })).status).to.equal(200);
    const key = await newKey();
    const session = await estSession(server, birth);
    try {
      const csr = await estCsr(key, { name: `CN=${serial}`, challengePassword: session.binding });
      const cert = issuedOf(await session.request('POST', `/.well-known/est/${className}/simpleenroll`, csr, PKCS10));
      return { serial, birth, operational: { keyPem: key.keyPem, certPem: cert.toString() } };
    } finally {
      session.close();
    }
  }

  async function declared(gateways: string[], className = 'sensors'): Promise<string> {
    const serial = nextSerial('SENS');
    const answer = await operator('POST', '/operator/v1/devices', { serial, model: SENSOR_MODEL, class: className, gateways });
    expect(answer.status, answer.text).to.equal(201);
    expect(answer.json).to.deep.equal({ device: { serial, model: SENSOR_MODEL, batch: 'declared', line: 'operator', state: 'manufactured', class: className }, gateways: [...gateways].sort() });
    return serial;
  }

  /** The gateway's request for a device behind it: a CSR naming the device, no channel binding. */
  async function mediate(gateway: Credentials, serial: string, options: { operation?: string; label?: string; key?: Awaited<ReturnType<typeof newKey>> } = {}): Promise<EstAnswer> {
    const session = await estSession(server, gateway);
    try {
      const csr = await estCsr(options.key ?? await newKey(), { name: `CN=${serial}` });
      return await session.request('POST', `/.well-known/est/${options.label ?? 'sensors'}/${options.operation ?? 'simpleenroll'}`, csr, PKCS10);
    } finally {
      session.close();
    }
  }

  /** A gateway's nonce request for a device: the answer as it came. */
  async function nonceFor(gateway: Credentials | undefined, serial: string, body: string = JSON.stringify({ serial }), label = 'sensors'): Promise<EstAnswer> {
    const session = await estSession(server, gateway);
    try {
      return await session.request('POST', `/.well-known/est/${label}/nonce`, body, { 'content-type': 'application/json' });
    } finally {
      session.close();
    }
  }

  async function nonceOf(gateway: Credentials, serial: string): Promise<string> {
    const answer = await nonceFor(gateway, serial);
    expect(answer.status, answer.text).to.equal(200);
    expect(answer.type).to.equal('application/json');
    const { nonce, expiry } = JSON.parse(answer.text) as { nonce: string; expiry: string };
    expect(nonce).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(new Date(expiry).getTime() - Date.now()).to.be.within(4 * 60_000, 5 * 60_000 + 1000);
    return nonce;
  }

  /** The device's attestation with its birth key over the nonce, relayed by the gateway in the CSR (nonce as challengePassword). */
  async function relay(gateway: Credentials, serial: string, birth: Credentials, nonce: string, options: { signCount?: number; key?: Awaited<ReturnType<typeof newKey>> } = {}): Promise<EstAnswer> {
    const key = options.key ?? await newKey();
    const birthKey = createPrivateKey(birth.keyPem);
    const attObj = await buildAttestation({
      factoryKey: { coseAlg: -7, sign: async (data) => nodeSign('sha256', data, birthKey) },
      x5c: [new X509Certificate(birth.certPem).raw], keyAuthorization: nonce, rpId: PUBLIC_HOST,
      newKeySpki: createPublicKey(key.keyPem).export({ format: 'der', type: 'spki' }), signCount: options.signCount ?? 1,
    });
    const session = await estSession(server, gateway);
    try {
      const csr = await estCsr(key, { name: `CN=${serial}`, challengePassword: nonce, attributes: [new x509.Attribute(ID_AA_ATTESTATION, [new Uint8Array(attestationStatement(attObj)).buffer])] });
      return await session.request('POST', '/.well-known/est/sensors/simpleenroll', csr, PKCS10);
    } finally {
      session.close();
    }
  }

  /** A device with a factory key, of model sensor-1 and class sensors, declared behind these gateways. */
  async function bornBehind(gateways: string[]): Promise<{ serial: string; birth: Credentials }> {
    const serial = nextSerial('BORN');
    const birth = await bornDevice(server, serial, SENSOR_MODEL);
    expect((await operator('PUT', `/operator/v1/devices/${serial}/class`, { class: 'sensors' })).status).to.equal(200);
    expect((await operator('POST', '/operator/v1/devices', { serial, model: SENSOR_MODEL, gateways })).status).to.equal(200);
    return { serial, birth };
  }

  async function history(serial: string) {
    const answer = await server.request('GET', `/audit/v1/devices/${serial}/history`, { token: server.tokens.auditor });
    expect(answer.status, answer.text).to.equal(200);
    return answer.json as { events: Array<{ action: string; actor: string; data: Record<string, unknown> }>; certificates: Array<Record<string, unknown>> };
  }

  it('a gateway enrolls and re-enrolls a declared constrained device: mediated policy, the class TTL, the mediator in the lineage; a retry gets the same certificate', async () => {
    const gateway = await enrolledDevice('gateways');
    const serial = await declared([gateway.serial]);
    const key = await newKey();
    const first = issuedOf(await mediate(gateway.operational, serial, { key }));
    expect(first.subject).to.equal(`CN=${serial}`);
    expect(policiesOf(first)).to.deep.equal([ASSURANCE_POLICY.mediated]);
    expect(new Date(first.validTo).getTime() - new Date(first.validFrom).getTime()).to.equal(2 * 3600_000 + 5 * 60_000);
    const verified = opensslVerify(server.rootPem, server.running.hierarchy.operational.certificate.toString('pem'), first.toString(), 'sslclient');
    expect(verified.ok, verified.output).to.equal(true);
    // The gateway's own certificate is attested.
    expect(policiesOf(new X509Certificate(gateway.operational.certPem))).to.deep.equal([ASSURANCE_POLICY.attested]);
    // A lost answer: the same key again gets the same certificate.
    expect(issuedOf(await mediate(gateway.operational, serial, { key })).serialNumber).to.equal(first.serialNumber);
    // Re-enrollment through the gateway: the predecessor is the device's newest certificate.
    const second = issuedOf(await mediate(gateway.operational, serial, { operation: 'simplereenroll' }));
    expect(policiesOf(second)).to.deep.equal([ASSURANCE_POLICY.mediated]);

    const story = await history(serial);
    const gatewayCert = new X509Certificate(gateway.operational.certPem);
    const entries = story.certificates.filter((c) => c.kind === 'operational');
    expect(entries).to.have.length(2);
    for (const entry of entries) {
      expect(entry.assurance).to.equal('mediated');
      expect(entry.mediator).to.deep.equal({ serial: gateway.serial, certificateSha256: sha256(gatewayCert) });
    }
    expect(entries[0]!.predecessorSha256).to.equal(null);
    expect(entries[1]!.predecessorSha256).to.equal(sha256(first));
    const enrolled = story.events.find((e) => e.action === 'device.enrolled')!;
    expect(enrolled.data).to.deep.include({ assurance: 'mediated', gateway: gateway.serial, mediator: { serial: gateway.serial, certificateSha256: sha256(gatewayCert) } });
    expect(story.events.map((e) => e.action)).to.include.members(['device.declared', 'device.enrolled', 'device.renewed']);
  });

  it('refuses a gateway the declaration does not name, a class that does not mediate the model, a device with a factory key, and a device that is no gateway (403, audited)', async () => {
    const named = await enrolledDevice('gateways');
    const other = await enrolledDevice('gateways');
    const serial = await declared([named.serial]);
    refusedWith(await mediate(other.operational, serial), 403, /not declared with gateway/);
    const wrongClass = await enrolledDevice('other-gateways');
    refusedWith(await mediate(wrongClass.operational, serial), 403, /does not mediate model sensor-1/);
    const plain = await enrolledDevice('sensors', 'PLAIN');
    refusedWith(await mediate(plain.operational, serial), 403, /not a gateway class/);
    // The label names the device's class.
    refusedWith(await mediate(named.operational, serial, { label: 'gateways' }), 403, /of class sensors, not gateways/);
    // A born device (a factory key) behind the gateway must attest, not be mediated.
    const born = nextSerial('BORN');
    await bornDevice(server, born, SENSOR_MODEL);
    expect((await operator('POST', '/operator/v1/devices', { serial: born, model: SENSOR_MODEL, gateways: [named.serial] })).status).to.equal(200);
    expect((await operator('PUT', `/operator/v1/devices/${born}/class`, { class: 'sensors' })).status).to.equal(200);
    refusedWith(await mediate(named.operational, born), 403, /has a factory key/);
    // An unknown device: refused, audited on the gateway.
    refusedWith(await mediate(named.operational, 'NO-SUCH-1'), 403, /no device NO-SUCH-1/);

    const refusals = (await history(serial)).events.filter((e) => e.action === 'device.enrollment-refused');
    expect(refusals.map((e) => e.data.gateway)).to.include.members([other.serial, wrongClass.serial, plain.serial]);
    expect((await history(named.serial)).events.some((e) => e.action === 'device.enrollment-refused' && e.data.device === 'NO-SUCH-1')).to.equal(true);
    expect((await history(born)).events.some((e) => e.action === 'device.enrollment-refused' && /factory key/.test(String(e.data.reason)))).to.equal(true);
  });

  it('revoking a gateway revokes what it mediated (the operator\'s reason) and it mediates nothing more; suspending one does the same (affiliationChanged)', async () => {
    const gateway = await enrolledDevice('gateways');
    const serials = [await declared([gateway.serial]), await declared([gateway.serial])];
    const mediated = [];
    for (const serial of serials) mediated.push(issuedOf(await mediate(gateway.operational, serial)));
    const revoked = await operator('POST', `/operator/v1/devices/${gateway.serial}/revoke`, { reason: 'keyCompromise' });
    expect(revoked.status, revoked.text).to.equal(200);
    const states = await Promise.all(mediated.map((c) => server.env.ctx.store.certificates.bySha256(sha256(c))));
    for (const state of states) {
      expect(state!.revokedAt).to.not.equal(null);
      expect(state!.revocationReason).to.equal(1);
    }
    expect((await history(serials[0]!)).events.some((e) => e.action === 'certificate.revoked' && e.data.mediated === true && e.data.reason === 'keyCompromise')).to.equal(true);
    refusedWith(await mediate(gateway.operational, serials[0]!), 403, /revoked/);

    // Suspension: a second gateway's mediated certificate goes with affiliationChanged, and the suspended gateway is refused.
    const second = await enrolledDevice('gateways');
    const serial = await declared([second.serial]);
    const cert = issuedOf(await mediate(second.operational, serial));
    expect((await operator('POST', `/operator/v1/devices/${second.serial}/suspend`, {})).status).to.equal(200);
    const state = await server.env.ctx.store.certificates.bySha256(sha256(cert));
    expect(state!.revocationReason).to.equal(3);
    refusedWith(await mediate(second.operational, serial), 403, /suspended/);
    // Revoking one certificate of a gateway revokes what that certificate mediated.
    const third = await enrolledDevice('gateways');
    const another = await declared([third.serial]);
    const viaThird = issuedOf(await mediate(third.operational, another));
    const thirdSerial = (await server.env.ctx.store.certificates.bySha256(sha256(new X509Certificate(third.operational.certPem))))!.serial;
    expect((await operator('POST', `/operator/v1/certificates/${thirdSerial}/revoke`, { reason: 'superseded' })).status).to.equal(200);
    expect((await server.env.ctx.store.certificates.bySha256(sha256(viaThird)))!.revocationReason).to.equal(4);
  });

  it('relays a device\'s attestation: a nonce for the gateway and the serial, the attestation in id-aa-attestation, an attested certificate with the gateway as its path', async () => {
    const gateway = await enrolledDevice('gateways');
    const { serial, birth } = await bornBehind([gateway.serial]);
    const nonce = await nonceOf(gateway.operational, serial);
    const cert = issuedOf(await relay(gateway.operational, serial, birth, nonce));
    expect(policiesOf(cert)).to.deep.equal([ASSURANCE_POLICY.attested]);
    expect(new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()).to.equal(2 * 3600_000 + 5 * 60_000);
    const story = await history(serial);
    const entry = story.certificates.find((c) => c.kind === 'operational')!;
    expect(entry.assurance).to.equal('attested');
    expect(entry.gateway).to.deep.equal({ serial: gateway.serial, certificateSha256: sha256(new X509Certificate(gateway.operational.certPem)) });
    expect(entry.mediator).to.equal(undefined);
    expect(entry.predecessorSha256).to.equal(sha256(new X509Certificate(birth.certPem)));
    expect(story.events.find((e) => e.action === 'device.attested')!.data).to.include({ gateway: gateway.serial, fmt: 'devid', byBirthKey: true });
    expect(story.events.find((e) => e.action === 'device.enrolled')!.data).to.deep.include({ assurance: 'attested', gateway: { serial: gateway.serial, certificateSha256: sha256(new X509Certificate(gateway.operational.certPem)) } });
  });

  it('a nonce counts once, for its gateway and its device, for 5 minutes; a gateway not named gets none', async () => {
    const gateway = await enrolledDevice('gateways');
    const other = await enrolledDevice('gateways');
    const { serial, birth } = await bornBehind([gateway.serial, other.serial]);
    const nonce = await nonceOf(gateway.operational, serial);
    issuedOf(await relay(gateway.operational, serial, birth, nonce, { signCount: 1 }));
    // Replayed: the same nonce again.
    refusedWith(await relay(gateway.operational, serial, birth, nonce, { signCount: 2 }), 403, /unknown or was used/);
    // Another gateway's nonce.
    const theirs = await nonceOf(other.operational, serial);
    refusedWith(await relay(gateway.operational, serial, birth, theirs, { signCount: 3 }), 403, /another gateway/);
    // For another device.
    const second = await bornBehind([gateway.serial]);
    const forSecond = await nonceOf(gateway.operational, second.serial);
    refusedWith(await relay(gateway.operational, serial, birth, forSecond, { signCount: 4 }), 403, /another device/);
    // Expired.
    const late = await nonceOf(gateway.operational, serial);
    await rawConnection(server.env.ctx.store)('est_nonces').update({ expires_at: new Date(Date.now() - 1000) });
    refusedWith(await relay(gateway.operational, serial, birth, late, { signCount: 5 }), 403, /expired/);
    // Signed over another nonce than the one sent: check 3.
    const sent = await nonceOf(gateway.operational, serial);
    const wrongSignature = await relay(gateway.operational, serial, birth, sent, { signCount: 6 }).then(async () => {
      const fresh = await nonceOf(gateway.operational, serial);
      return relayWithSignedNonce(gateway.operational, serial, birth, fresh, 'something else');
    });
    refusedWith(wrongSignature, 403, /check 3/);
    // No nonce for a gateway the declaration does not name, none without a certificate, none for an unknown device.
    const stranger = await enrolledDevice('gateways');
    refusedWith(await nonceFor(stranger.operational, serial), 403, /not declared with gateway/);
    refusedWith(await nonceFor(undefined, serial), 403, /client certificate/);
    refusedWith(await nonceFor(gateway.operational, 'NO-SUCH-2'), 403, /no device/);
    refusedWith(await nonceFor(birth, serial), 403, /newest operational certificate/);
    refusedWith(await nonceFor(gateway.operational, serial, JSON.stringify({ serial }), 'gateways'), 403, /of class sensors, not gateways/);
    expect((await history(stranger.serial)).events.some((e) => e.action === 'gateway.nonce-refused')).to.equal(true);
    const refusals = (await history(serial)).events.filter((e) => e.action === 'device.enrollment-refused').map((e) => String(e.data.reason));
    for (const reason of [/used already/, /another gateway/, /another device/, /expired/]) expect(refusals.some((r) => reason.test(r)), String(reason)).to.equal(true);
  });

  /** As relay, but the device signed over `signed` while the gateway sends `sent`. */
  async function relayWithSignedNonce(gateway: Credentials, serial: string, birth: Credentials, sent: string, signed: string): Promise<EstAnswer> {
    const key = await newKey();
    const birthKey = createPrivateKey(birth.keyPem);
    const attObj = await buildAttestation({
      factoryKey: { coseAlg: -7, sign: async (data) => nodeSign('sha256', data, birthKey) },
      x5c: [new X509Certificate(birth.certPem).raw], keyAuthorization: signed, rpId: PUBLIC_HOST,
      newKeySpki: createPublicKey(key.keyPem).export({ format: 'der', type: 'spki' }), signCount: 100,
    });
    const session = await estSession(server, gateway);
    try {
      const csr = await estCsr(key, { name: `CN=${serial}`, challengePassword: sent, attributes: [new x509.Attribute(ID_AA_ATTESTATION, [new Uint8Array(attestationStatement(attObj)).buffer])] });
      return await session.request('POST', '/.well-known/est/sensors/simpleenroll', csr, PKCS10);
    } finally {
      session.close();
    }
  }

  it('staged trust escalation: a mediated device that gets a birth certificate is raised to attested only by an attestation with it', async () => {
    const gateway = await enrolledDevice('gateways');
    const serial = await declared([gateway.serial]);
    const mediatedKey = await newKey();
    const mediated = issuedOf(await mediate(gateway.operational, serial, { key: mediatedKey }));
    // Mediated: so in the rotation report (waiting for escalation, not overdue for a birth key it does not have) and the fleet view.
    const rotationEntry = async () => ((await operator('GET', `/operator/v1/reports/rotation?model=${SENSOR_MODEL}`)).json.entries as Array<Record<string, unknown>>).find((e) => e.serial === serial);
    expect(await rotationEntry()).to.deep.include({ assurance: 'mediated', reasons: ['mediated'] });
    const fleetBefore = (await operator('GET', '/console/v1/fleet')).json.assurance as { mediated: number; raised: number };
    expect(fleetBefore.mediated).to.be.at.least(1);
    // Its factory gives it a birth certificate later (a secure element fitted, a key provisioned): the declared record gains a factory key.
    const birth = await bornDevice(server, serial, SENSOR_MODEL);
    // No longer mediated: it has a factory key now.
    refusedWith(await mediate(gateway.operational, serial), 403, /has a factory key/);
    const raised = issuedOf(await relay(gateway.operational, serial, birth, await nonceOf(gateway.operational, serial)));
    expect(policiesOf(raised)).to.deep.equal([ASSURANCE_POLICY.attested]);
    const story = await history(serial);
    const step = story.events.find((e) => e.action === 'device.assurance-raised')!;
    expect(step.data).to.include({ from: 'mediated', to: 'attested', gateway: gateway.serial, attestedBy: sha256(new X509Certificate(birth.certPem)) });
    expect(story.certificates.filter((c) => c.kind === 'operational').map((c) => c.assurance)).to.deep.equal(['mediated', 'attested']);
    expect(sha256(mediated)).to.equal(story.certificates.find((c) => c.assurance === 'mediated')!.sha256);
    expect((await rotationEntry())?.reasons ?? []).not.to.include('mediated');
    const fleetAfter = (await operator('GET', '/console/v1/fleet')).json.assurance as { mediated: number; raised: number };
    expect(fleetAfter.raised).to.equal(fleetBefore.raised + 1);
    expect(fleetAfter.mediated).to.equal(fleetBefore.mediated - 1);
  });

  it('a device\'s own EST CSR with an attestation that reports allowed firmware passes check 5 (enroll and re-enroll); without one, or with other firmware, it is refused', async () => {
    expect((await operator('PUT', '/operator/v1/models/fw-sensor', { hwType: '1.3.6.1.4.1.99999.1.21', manufacturer: 'Acme Devices' })).status).to.equal(201);
    expect((await operator('PUT', '/operator/v1/models/fw-sensor/firmware', { allowed: [{ version: '1.0.0', digest: 'ab'.repeat(32) }] })).status).to.equal(200);
    const serial = nextSerial('FW');
    const birth = await bornDevice(server, serial, 'fw-sensor');
    expect((await operator('PUT', `/operator/v1/devices/${serial}/class`, { class: 'sensors' })).status).to.equal(200);
    const birthKey = createPrivateKey(birth.keyPem);
    /** One enrollment on its own session: the CSR bound to it, with the device's attestation over the binding when `firmware` is given. */
    const own = async (operation: string, client: Credentials, key: Awaited<ReturnType<typeof newKey>>, signCount: number, firmware?: { version: string; digest: Buffer }) => {
      const session = await estSession(server, client);
      try {
        const attributes = [];
        if (firmware) {
          const attObj = await buildAttestation({
            factoryKey: { coseAlg: -7, sign: async (data) => nodeSign('sha256', data, birthKey) },
            x5c: [new X509Certificate(birth.certPem).raw], keyAuthorization: session.binding, rpId: PUBLIC_HOST,
            newKeySpki: createPublicKey(key.keyPem).export({ format: 'der', type: 'spki' }), signCount, firmware,
          });
          attributes.push(new x509.Attribute(ID_AA_ATTESTATION, [new Uint8Array(attestationStatement(attObj)).buffer]));
        }
        const csr = await estCsr(key, { name: `CN=${serial}`, challengePassword: session.binding, attributes });
        return await session.request('POST', `/.well-known/est/sensors/${operation}`, csr, PKCS10);
      } finally {
        session.close();
      }
    };
    const allowed = { version: '1.0.0', digest: Buffer.alloc(32, 0xab) };
    refusedWith(await own('simpleenroll', birth, await newKey(), 1), 403, /check 5 \(firmware\)/);
    refusedWith(await own('simpleenroll', birth, await newKey(), 2, { version: '0.9.0', digest: Buffer.alloc(32, 1) }), 403, /check 5/);
    const key = await newKey();
    const first = issuedOf(await own('simpleenroll', birth, key, 3, allowed));
    const operational = { keyPem: key.keyPem, certPem: first.toString() };
    refusedWith(await own('simplereenroll', operational, await newKey(), 4), 403, /check 5 \(firmware\)/);
    issuedOf(await own('simplereenroll', operational, await newKey(), 5, allowed));
    const story = await server.request('GET', `/audit/v1/devices/${serial}/history`, { token: server.tokens.auditor });
    expect(story.json.firmware.map((f: { version: string }) => f.version)).to.deep.equal(['1.0.0', '1.0.0']);
    expect(story.json.events.filter((e: { action: string }) => e.action === 'device.attested')).to.have.length(2);
  });

  it('hostile input to the nonce endpoint, gateway CSRs and declarations: a 4xx with a reason, never a 5xx, nothing written for malformed input', async () => {
    const gateway = await enrolledDevice('gateways');
    const { serial } = await bornBehind([gateway.serial]);
    const store = server.env.ctx.store;
    const counts = async () => [await rawConnection(store)('est_nonces').count({ n: '*' }).first(), await store.certificates.count()].map((r) => JSON.stringify(r));
    const before = await counts();
    const random = prng(23);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const valid = JSON.stringify({ serial });
    const bodies: Array<string | Buffer> = [
      '', '{}', '[]', 'null', '"x"', '{"serial":', valid.slice(0, -1), `${valid}x`, JSON.stringify({ serial, extra: 1 }), JSON.stringify({ serial: [serial] }),
      Buffer.from([0xff, 0xfe, 0x7b]), 'x'.repeat(2000), ...BAD_VALUES.map((v) => JSON.stringify({ serial: v })),
      ...Array.from({ length: 20 }, (_, i) => bytes(1 + i * 17)),
      ...Array.from({ length: 20 }, () => { const b = Buffer.from(valid); b[Math.floor(random() * b.length)] = Math.floor(random() * 256); return b; }),
    ];
    for (const body of bodies) {
      const answer = await nonceFor(gateway.operational, serial, body as string);
      expect(answer.status, `${JSON.stringify(body.toString())}: ${answer.text}`).to.be.within(400, 499);
      expect(answer.type).to.match(/^text\/plain/);
    }
    // Wrong media type, wrong method.
    for (const [method, type, status] of [['POST', 'text/plain', 415], ['GET', undefined, 405]] as const) {
      const session = await estSession(server, gateway.operational);
      try {
        refusedWith(await session.request(method, '/.well-known/est/sensors/nonce', method === 'POST' ? valid : undefined, type ? { 'content-type': type } : {}), status);
      } finally {
        session.close();
      }
    }
    expect(await counts()).to.deep.equal(before);
    // Gateway CSRs whose attestation attribute is mangled: refused with a reason, never a fault.
    const nonce = await nonceOf(gateway.operational, serial);
    const values = [Buffer.from([0x05, 0x00]), Buffer.from([0x30, 0x00]), Buffer.concat([Buffer.from([0x04, 40]), bytes(40)]), attestationStatement(bytes(300)), attestationStatement(Buffer.alloc(0)), attestationStatement(Buffer.alloc(20_000, 1)),
      Buffer.from([0x30, 0x05, 0x06, 0x03, 0x2a, 0x03, 0x04]), Buffer.concat([attestationStatement(bytes(10)), Buffer.from([0])])];
    for (const value of values) {
      const s2 = await estSession(server, gateway.operational);
      try {
        const csr = await estCsr(await newKey(), { name: `CN=${serial}`, challengePassword: nonce, attributes: [new x509.Attribute(ID_AA_ATTESTATION, [new Uint8Array(value).buffer])] });
        const answer = await s2.request('POST', '/.well-known/est/sensors/simpleenroll', csr, PKCS10);
        expect(answer.status, `${value.toString('hex').slice(0, 40)} (${value.length}): ${answer.text}`).to.be.within(400, 499);
        expect(answer.type).to.match(/^text\/plain/);
      } finally {
        s2.close();
      }
    }
    // Declarations: every field wrong in every way.
    for (const field of ['serial', 'model', 'class', 'gateways']) {
      for (const value of BAD_VALUES) {
        const body = { serial: nextSerial('HOST'), model: SENSOR_MODEL, gateways: [gateway.serial], [field]: value };
        const answer = await operator('POST', '/operator/v1/devices', body);
        expect(answer.status, `${field}=${JSON.stringify(value)}: ${answer.text}`).to.be.within(400, 499);
      }
    }
    expect((await store.certificates.count())).to.equal(JSON.parse(before[1]!));
  });

  it('declarations: validated, audited, idempotent; gateways must be of a class that mediates the model', async () => {
    const gateway = await enrolledDevice('gateways');
    const wrong = await enrolledDevice('other-gateways');
    const serial = nextSerial('DECL');
    expect((await operator('POST', '/operator/v1/devices', { serial, model: SENSOR_MODEL, gateways: ['NOPE-1'] })).status).to.equal(404);
    expect((await operator('POST', '/operator/v1/devices', { serial, model: 'no-model', gateways: [gateway.serial] })).status).to.equal(404);
    expect((await operator('POST', '/operator/v1/devices', { serial, model: SENSOR_MODEL, gateways: [wrong.serial] })).status).to.equal(409);
    for (const body of [{}, { serial, model: SENSOR_MODEL }, { serial, model: SENSOR_MODEL, gateways: [] }, { serial, model: SENSOR_MODEL, gateways: [gateway.serial, gateway.serial] },
      { serial, model: SENSOR_MODEL, gateways: [serial] }, { serial: 'bad serial', model: SENSOR_MODEL, gateways: [gateway.serial] }, { serial, model: SENSOR_MODEL, gateways: [gateway.serial], extra: 1 }]) {
      expect((await operator('POST', '/operator/v1/devices', body)).status, JSON.stringify(body)).to.equal(400);
    }
    expect((await server.request('POST', '/operator/v1/devices', { token: server.tokens.auditor, body: { serial, model: SENSOR_MODEL, gateways: [gateway.serial] } })).status).to.equal(403);
    expect((await operator('POST', '/operator/v1/devices', { serial, model: SENSOR_MODEL, gateways: [gateway.serial] })).status).to.equal(201);
    expect((await operator('POST', '/operator/v1/devices', { serial, model: SENSOR_MODEL, gateways: [gateway.serial] })).status).to.equal(200);
    expect((await operator('POST', '/operator/v1/devices', { serial, model: 'thermo-2', gateways: [gateway.serial] })).status).to.equal(409);
    const events = (await history(serial)).events.filter((e) => e.action.startsWith('device.declared'));
    expect(events).to.have.length(1);
    expect(events[0]!.data).to.deep.equal({ model: SENSOR_MODEL, class: null, gateways: [gateway.serial], factoryKey: false });
    // The class shows its gateway models; a bad gateway member is a 400.
    expect((await operator('GET', '/operator/v1/device-classes/gateways')).json.gateway).to.deep.equal({ models: [SENSOR_MODEL] });
    for (const gatewaySpec of [{}, { models: [] }, { models: 'x' }, { models: ['a', 'a'] }, { models: ['ok'], other: 1 }, []]) {
      expect((await operator('PUT', '/operator/v1/device-classes/bad-gw', { ...CLASS, gateway: gatewaySpec })).status, JSON.stringify(gatewaySpec)).to.equal(400);
    }
  });
});
