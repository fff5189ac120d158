import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { Encoder } from 'cbor-x';
import { AcmeClient, AcmeError } from '../client/acme-client.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { directoryUrl, toLoopback } from './support/acme-device.ts';
import { opensslVerify } from './support/openssl.ts';
import { AK_ATTRIBUTES, SoftwareTpm, softwareTpmOrSkip, tpmCsr } from './support/swtpm.ts';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();
const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });
const TYPE = (name: string) => `urn:ietf:params:acme:error:${name}`;
const KEY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';

/** A device whose identity is its TPM's attestation key: the AK's persistent handle and its birth certificate. */
interface TpmDevice {
  serial: string;
  ak: number;
  birthDer: Buffer;
  acme: AcmeClient;
}

/** An order with its device-attest-01 challenge, not yet answered. */
interface OpenOrder {
  order: { finalize: string };
  orderUrl: string;
  challengeUrl: string;
  keyAuthorization: string;
}

describe('tpm format end to end: a TPM-born device (swtpm, tpm2-tools) gets its birth certificate for its AK and enrolls over ACME with fmt "tpm"', function () {
  this.timeout(300_000);
  let tpm: SoftwareTpm;
  let server: TestServer;
  let serial = 0;
  const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: true, onCloneSignal: 'refuse' };

  before(async function () {
    tpm = await softwareTpmOrSkip(this);
    server = await startTestServer('pglite');
    const put = await server.request('PUT', '/operator/v1/device-classes/tpm-devices', { token: server.tokens.operator, body: { ...CLASS, attestationFormats: ['tpm'] } });
    expect(put.status, put.text).to.equal(201);
  });
  after(async () => {
    await server?.close();
    tpm?.stop();
  });

  /** The factory line: an AK in the TPM, its CSR signed through TPM2_Hash + TPM2_Sign with the hash ticket, the birth certificate from the factory API. */
  async function born(inClass = 'tpm-devices'): Promise<TpmDevice> {
    const name = `SN-TPM${++serial}`;
    const ak = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
    const csr = tpmCsr(name, tpm.publicKeyDer(ak), (tbs) => tpm.hashAndSign(ak, tbs));
    const birth = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: name, model: 'thermo-2', batch: 'b1', csr: csr.toString('base64url') } });
    expect(birth.status, birth.text).to.equal(201);
    if (inClass !== 'default') {
      const assigned = await server.request('PUT', `/operator/v1/devices/${name}/class`, { token: server.tokens.operator, body: { class: inClass } });
      expect(assigned.status, assigned.text).to.equal(200);
    }
    const acme = new AcmeClient(directoryUrl(server), AcmeClient.generateAccountKey(), server.rootPem, toLoopback);
    await acme.init();
    await acme.newAccount();
    return { serial: name, ak, birthDer: new X509Certificate(birth.json.certificate).raw, acme };
  }

  async function openOrder(device: TpmDevice): Promise<OpenOrder> {
    const ordered = await device.acme.post(device.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }] });
    const authz = (await device.acme.post(ordered.json.authorizations[0], '')).json;
    const challenge = authz.challenges.find((c: { type: string }) => c.type === 'device-attest-01');
    return { order: ordered.json, orderUrl: ordered.headers.location as string, challengeUrl: challenge.url, keyAuthorization: `${challenge.token}.${await device.acme.thumbprint()}` };
  }

  /** WebAuthn 8.3 with draft-ietf-acme-device-attest: TPM2_Certify of the key by the AK, qualifyingData = SHA-256(keyAuthorization), no authData. */
  function attestation(device: TpmDevice, key: number, qualifyingData: Buffer): Buffer {
    const { certInfo, signature } = tpm.certify(key, device.ak, qualifyingData);
    const attStmt = new Map<string, unknown>([['ver', '2.0'], ['alg', -7], ['x5c', [device.birthDer]], ['sig', signature], ['certInfo', certInfo], ['pubArea', tpm.publicArea(key)]]);
    return encoder.encode(new Map<string, unknown>([['fmt', 'tpm'], ['attStmt', attStmt]]));
  }

  async function answer(device: TpmDevice, open: OpenOrder, attObj: Buffer): Promise<void> {
    await device.acme.post(open.challengeUrl, { attObj: attObj.toString('base64url') });
  }

  /** finalize with a CSR the operational key signed in the TPM (unrestricted: it signs a digest hashed outside); the certificate chain. */
  async function finalize(device: TpmDevice, open: OpenOrder, key: number): Promise<string> {
    const csr = tpmCsr(device.serial, tpm.publicKeyDer(key), (tbs) => tpm.signDigest(key, sha256(tbs)));
    let order = (await device.acme.post(open.order.finalize, { csr: csr.toString('base64url') })).json;
    for (let polls = 0; order.status === 'processing' && polls < 20; polls += 1) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      order = (await device.acme.post(open.orderUrl, '')).json;
    }
    expect(order.status, JSON.stringify(order)).to.equal('valid');
    return (await device.acme.post(order.certificate, '')).text;
  }

  async function enroll(device: TpmDevice): Promise<{ chainPem: string; key: number }> {
    const open = await openOrder(device);
    const key = tpm.createKey('ecc', KEY_ATTRIBUTES);
    await answer(device, open, attestation(device, key, sha256(open.keyAuthorization)));
    return { chainPem: await finalize(device, open, key), key };
  }

  async function refused(work: Promise<unknown>, type: string, detail: RegExp): Promise<void> {
    const err = await work.catch((e: unknown) => e);
    expect(err, `expected ${type}`).to.be.instanceOf(AcmeError);
    const problem = (err as AcmeError).problem!;
    expect(problem.type, JSON.stringify(problem)).to.equal(TYPE(type));
    expect(problem.detail).to.match(detail);
  }

  async function history(device: TpmDevice): Promise<Array<{ action: string; data: Record<string, unknown> }>> {
    return (await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor })).json.events;
  }

  it('enrolls: the factory certifies the AK from a CSR the TPM signed with a hash ticket; the operational certificate carries the TPM key and verifies with openssl', async () => {
    const device = await born();
    const { chainPem, key } = await enroll(device);
    const pems = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
    const leaf = new X509Certificate(pems[0]!);
    expect(leaf.subject).to.equal(`CN=${device.serial}`);
    expect(leaf.publicKey.export({ format: 'der', type: 'spki' })).to.deep.equal(createPublicKey({ key: tpm.publicKeyDer(key), format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }));
    const verified = opensslVerify(server.rootPem, pems.slice(1).join('\n'), pems[0]!);
    expect(verified.ok, verified.output).to.equal(true);
    const attested = (await history(device)).find((e) => e.action === 'device.attested')!;
    expect(attested.data).to.include({ fmt: 'tpm', byBirthKey: true });
    expect(attested.data.signCount).to.be.a('number').above(0);
    // A renewal: a new key, a later clock.
    const renewed = await enroll(device);
    expect(new X509Certificate(renewed.chainPem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----').subject).to.equal(`CN=${device.serial}`);
  });

  it('is refused when the device class does not name "tpm"', async () => {
    const device = await born('default');
    const open = await openOrder(device);
    await refused(answer(device, open, attestation(device, tpm.createKey('ecc', KEY_ATTRIBUTES), sha256(open.keyAuthorization))),
      'badAttestationStatement', /^format: device class default accepts attestation formats devid, not tpm/);
  });

  it('refuses a key that could leave its TPM (no fixedTPM, fixedParent), a wrong extraData, and the AK itself as the new key', async () => {
    const device = await born();
    const duplicable = tpm.createKey('ecc', 'sensitivedataorigin|userwithauth|sign');
    let open = await openOrder(device);
    await refused(answer(device, open, attestation(device, duplicable, sha256(open.keyAuthorization))), 'badAttestationStatement', /^check 3 \(objectAttributes\): the attested key lacks fixedTPM, fixedParent/);
    open = await openOrder(device);
    await refused(answer(device, open, attestation(device, tpm.createKey('ecc', KEY_ATTRIBUTES), sha256(`${open.keyAuthorization}x`))), 'badAttestationStatement', /^check 3 \(extraData\)/);
    open = await openOrder(device);
    await refused(answer(device, open, attestation(device, device.ak, sha256(open.keyAuthorization))), 'badAttestationStatement', /^attested key: .*certified/);
    expect((await history(device)).some((e) => e.action === 'device.clone-suspected' || e.action === 'device.attested')).to.equal(false);
    await enroll(device);
  });

  it('refuses an older clock (an attestation made before the last accepted one) as a clone signal', async () => {
    const device = await born();
    const first = await openOrder(device);
    const second = await openOrder(device);
    const earlier = attestation(device, tpm.createKey('ecc', KEY_ATTRIBUTES), sha256(second.keyAuthorization));
    const laterKey = tpm.createKey('ecc', KEY_ATTRIBUTES);
    await answer(device, first, attestation(device, laterKey, sha256(first.keyAuthorization)));
    await finalize(device, first, laterKey);
    await refused(answer(device, second, earlier), 'badAttestationStatement', /^check 4 \(signCount\): signCount \d+ is not above the last accepted one/);
    const events = await history(device);
    expect(events.map((e) => e.action)).to.include('device.clone-suspected');
  });

  it('after an unorderly shutdown (clockInfo.safe = NO) the attestation is a retryable refusal, no clone signal; once the TPM saved its clock it enrolls', async () => {
    const device = await born();
    await enroll(device);
    await tpm.powerCut();
    const open = await openOrder(device);
    await refused(answer(device, open, attestation(device, tpm.createKey('ecc', KEY_ATTRIBUTES), sha256(open.keyAuthorization))), 'badAttestationStatement', /^check 4 \(clock\): the TPM reports clockInfo.safe = NO/);
    expect((await history(device)).map((e) => e.action)).to.not.include('device.clone-suspected');
    tpm.setClock(tpm.clock() + 60_000);
    await enroll(device);
  });
});
