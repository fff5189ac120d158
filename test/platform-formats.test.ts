import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createHash, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { AttestationError } from '../pki/attestation/attestation-object.ts';
import { validatePath } from '../pki/attestation/birth-chain.ts';
import { ATTESTATION_FORMATS } from '../pki/attestation/formats.ts';
import { checkManufacturerConfig } from '../registry/manufacturers/manufacturers.ts';
import { AttestationStatusList, parseStatusList, statusKey } from '../pki/attestation/android-key/status-list.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AttestationChallenge } from '../pki/attestation/format.ts';
import { androidAttestation, appleAttestation, platformCa, type PlatformCa } from './support/platform-ca.ts';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

/** A small deterministic generator, so a failing round can be replayed. */
function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x80000000;
  };
}

/** Parsing, and then every check of the evidence, either works or throws AttestationError: never anything else. */
async function onlyAttestationErrors(bytes: Buffer, label: string, challenge: AttestationChallenge): Promise<void> {
  try {
    const evidence = ATTESTATION_FORMATS.parse(bytes);
    evidence.signatureProblem(evidence.key.spki, challenge);
    evidence.bindingProblem(challenge);
  } catch (err) {
    expect(err, `${label}: ${(err as Error).stack}`).to.be.instanceOf(AttestationError);
  }
}

describe('android-key and apple statements: parsing is strict and hostile input is an AttestationError', function () {
  this.timeout(60_000);
  let google: PlatformCa;
  let key: KeyObject;
  const keyAuthorization = 'tOkEn.thumbprint';
  const challenge: AttestationChallenge = { keyAuthorization, rpIdHash: Buffer.alloc(32), token: 'tOkEn' };
  const input = { factoryKey: { coseAlg: -7, sign: async () => Buffer.alloc(0) }, x5c: [], keyAuthorization, rpId: 'ca', newKeySpki: Buffer.alloc(0), signCount: 0 };

  before(async () => {
    google = await platformCa('Google');
    key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  });

  it('a well-formed android-key statement proves the serial in teeEnforced and the leaf key, and answers this challenge only', async () => {
    const evidence = ATTESTATION_FORMATS.parse(await androidAttestation({ ca: google, key, serial: 'pixel-1' })(input));
    expect(evidence.identity).to.deep.equal({ kind: 'manufacturer-serial', serial: 'pixel-1' });
    expect(evidence.signatureProblem(evidence.key.spki, challenge)).to.equal(undefined);
    expect(evidence.bindingProblem(challenge)).to.equal(undefined);
    expect(evidence.signatureProblem(evidence.key.spki, { ...challenge, keyAuthorization: 'other.thumbprint' })?.check).to.equal('check 3 (sig)');
    expect(evidence.bindingProblem({ ...challenge, keyAuthorization: 'other.thumbprint' })?.check).to.equal('check 3 (attestationChallenge)');
  });

  it('the attestation object: exactly {"alg", "sig", "x5c"} for android-key and {"x5c"} for apple; authData refused for android-key', async () => {
    const attObj = decoder.decode(await androidAttestation({ ca: google, key, serial: 'pixel-1' })(input)) as Map<string, unknown>;
    const statement = attObj.get('attStmt') as Map<string, unknown>;
    const encode = (fmt: string, members: Map<string, unknown>, authData?: Buffer) => encoder.encode(new Map<string, unknown>([['fmt', fmt], ['attStmt', members], ...(authData ? [['authData', authData] as [string, unknown]] : [])]));
    expect(() => ATTESTATION_FORMATS.parse(encode('android-key', statement, Buffer.alloc(37)))).to.throw(AttestationError, /omit authData/);
    expect(() => ATTESTATION_FORMATS.parse(encode('android-key', new Map([...statement, ['extra', 1]])))).to.throw(AttestationError, /attStmt must be/);
    expect(() => ATTESTATION_FORMATS.parse(encode('android-key', new Map([...statement, ['x5c', []]])))).to.throw(AttestationError, /x5c/);
    expect(() => ATTESTATION_FORMATS.parse(encode('android-key', new Map([...statement, ['x5c', [Buffer.from([0x30, 0x00])]]])))).to.throw(AttestationError, /x5c\[0\]/);
    const x5c = statement.get('x5c') as Buffer[];
    expect(() => ATTESTATION_FORMATS.parse(encode('android-key', new Map([...statement, ['x5c', [x5c[1]!]]])))).to.throw(AttestationError, /one Android Key Attestation extension/);
    expect(() => ATTESTATION_FORMATS.parse(encode('apple', new Map<string, unknown>([['x5c', x5c]])))).to.throw(AttestationError, /1\.2\.840\.113635\.100\.8\.9\.1/);
    expect(() => ATTESTATION_FORMATS.parse(encode('apple', new Map<string, unknown>([['x5c', x5c], ['sig', Buffer.alloc(1)]])))).to.throw(AttestationError, /\{"x5c"/);
  });

  it('apple: the freshness code is SHA-256 of the token alone', async () => {
    const evidence = ATTESTATION_FORMATS.parse(await appleAttestation({ ca: google, key, serial: 'C02XYZ' })(input));
    expect(evidence.identity).to.deep.equal({ kind: 'manufacturer-serial', serial: 'C02XYZ' });
    expect(evidence.bindingProblem(challenge)).to.equal(undefined);
    expect(evidence.bindingProblem({ ...challenge, token: 'another' })?.check).to.equal('check 3 (nonce)');
  });

  it('truncations and random mutations of android-key and apple objects throw AttestationError or nothing', async () => {
    const objects = [await androidAttestation({ ca: google, key, serial: 'pixel-1' })(input), await appleAttestation({ ca: google, key, serial: 'C02XYZ' })(input)];
    const random = prng(0x51a);
    for (const [o, attObj] of objects.entries()) {
      for (let length = 0; length < attObj.length; length += 7) await onlyAttestationErrors(attObj.subarray(0, length), `object ${o} truncated to ${length}`, challenge);
      for (let round = 0; round < 600; round += 1) {
        const copy = Buffer.from(attObj);
        const edits = 1 + Math.floor(random() * 4);
        for (let i = 0; i < edits; i += 1) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
        await onlyAttestationErrors(copy, `object ${o} round ${round}`, challenge);
      }
    }
  });

  it('a real Pixel 8a attestation (published in SimpleWebAuthn\'s tests, January 2025) parses: TEE, no serial attested, its chain validates to Google\'s root', () => {
    // A WebAuthn object: authData dropped, as a device enrolling here would send it; its challenge is a WebAuthn client data hash, never ours.
    const webauthn = decoder.decode(Buffer.from(readFileSync('test/fixtures/android-key-pixel-8a.b64url', 'utf8').trim(), 'base64url')) as Map<string, unknown>;
    const statement = webauthn.get('attStmt') as Map<string, unknown>;
    const evidence = ATTESTATION_FORMATS.parse(encoder.encode(new Map<string, unknown>([['fmt', 'android-key'], ['attStmt', statement]])));
    expect(evidence.chain).to.have.length(5);
    expect(evidence.key.keyType).to.match(/P-256/);
    expect(evidence.identity).to.deep.include({ kind: 'manufacturer-serial', serial: null });
    expect((evidence.identity as { serialProblem: string }).serialProblem).to.match(/not in teeEnforced/);
    expect(evidence.bindingProblem(challenge)?.check).to.equal('check 3 (attestationChallenge)');
    const root = evidence.chain[4]!;
    const path = validatePath(evidence.chain.slice(0, 4), [root], new Date('2025-02-02T10:00:00Z'), 'x5c[0]');
    expect(path).to.have.length(4);
    expect(() => validatePath(evidence.chain.slice(0, 4), [root], new Date('2025-03-01T00:00:00Z'), 'x5c[0]')).to.throw(AttestationError, /expired/);
  });

  it('Apple\'s published Enterprise Attestation Root CA (apple.com/certificateauthority/private/) is taken as a manufacturer anchor: P-384, self-signed, valid to 2047', () => {
    // No real Managed Device Attestation leaf is published (it carries a device's serial and UDID): the root is the public part.
    // Its facts as Apple publishes them: serial 42c0c2bb..., SHA-256 ccf59ef8...f05b, 2022-02-16 to 2047-02-20.
    const pem = readFileSync('test/fixtures/apple-enterprise-attestation-root.pem', 'utf8');
    const root = new X509Certificate(pem);
    expect(createHash('sha256').update(root.raw).digest('hex')).to.equal('ccf59ef8fcb3017d97f8b5fa6fa90e7a3f9283f76b55ac6cf6eda8b8b949f05b');
    expect(root.serialNumber.toLowerCase()).to.equal('42c0c2bb2c727c5c5eabf6f1a66f1fac5d798737');
    expect(root.subject).to.equal('CN=Apple Enterprise Attestation Root CA\nO=Apple Inc.\nC=US');
    expect(root.verify(root.publicKey)).to.equal(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('secp384r1');
    expect(new Date(root.validTo).toISOString()).to.equal('2047-02-20T00:00:00.000Z');
    const config = checkManufacturerConfig({ certificates: [pem], models: ['macbook-m4'], crl: null });
    expect(config.certificates).to.deep.equal([root.raw.toString('base64')]);
  });

  it('the status list: Google\'s JSON, keys compared without leading zeros; anything else is refused', () => {
    const statuses = parseStatusList(JSON.stringify({ entries: { '0a1B': { status: 'REVOKED', reason: 'KEY_COMPROMISE' }, ff: { status: 'SUSPENDED' } } }));
    expect(statuses.get(statusKey('00000a1b'))).to.equal('REVOKED');
    expect(statuses.get('ff')).to.equal('SUSPENDED');
    for (const bad of ['', 'null', '[]', '{"entries": []}', '{"entries": {"xyz": {"status": "REVOKED"}}}', '{"entries": {"ab": {"status": 1}}}', '{"entries": {"ab": null}}']) {
      expect(() => parseStatusList(bad), bad).to.throw(Error);
    }
  });

  it('the status list is kept an hour, used for a day while reads fail, then refuses; a failed read is not retried within a minute', async () => {
    let down = false;
    let reads = 0;
    const server = createServer((_req, res) => {
      reads += 1;
      if (down) res.writeHead(500).end();
      else res.writeHead(200).end(JSON.stringify({ entries: { abc: { status: 'SUSPENDED' } } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const list = new AttestationStatusList(`http://127.0.0.1:${(server.address() as AddressInfo).port}/status`);
      const t0 = new Date('2030-01-01T00:00:00Z');
      const at = (hours: number) => new Date(t0.getTime() + hours * 3_600_000);
      expect(await list.problem(['01', '0abc'], t0)).to.match(/serial abc of the chain is SUSPENDED/);
      expect(await list.problem(['01'], at(0.5))).to.equal(undefined);
      expect(reads, 'younger than an hour: not read again').to.equal(1);
      down = true;
      expect(await list.problem(['01'], at(2)), 'a failed read keeps the list of the day').to.equal(undefined);
      expect(await list.problem(['01'], at(2.01))).to.equal(undefined);
      expect(reads, 'no second read within a minute of a failure').to.equal(2);
      expect(await list.problem(['01'], at(25))).to.match(/unavailable \(the last one read is from 2030-01-01T00:00:00.000Z; .*HTTP 500\)/);
      down = false;
      expect(await list.problem(['01'], at(25.1))).to.equal(undefined);
    } finally {
      server.close();
    }
  });
});
