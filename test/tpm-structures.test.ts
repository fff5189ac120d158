import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { Encoder } from 'cbor-x';
import { AttestationError } from '../pki/attestation/attestation-object.ts';
import { ATTESTATION_FORMATS } from '../pki/attestation/formats.ts';
import { parseCertifyAttest } from '../pki/attestation/tpm/attest.ts';
import { parsePublicArea } from '../pki/attestation/tpm/public-area.ts';
import { parseTpmSignature } from '../pki/attestation/tpm/signature.ts';
import { tpmBindingProblem, tpmSignatureProblem, parseTpmStatement } from '../pki/attestation/tpm/tpm-format.ts';
import { prng } from './support/hostile.ts';
import { AK_ATTRIBUTES, SoftwareTpm, hex, softwareTpmOrSkip } from './support/swtpm.ts';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();
const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });

/** Throws nothing but AttestationError, whatever the bytes. */
function onlyAttestationErrors(parse: () => unknown, label: string): void {
  try {
    parse();
  } catch (err) {
    expect(err, `${label}: ${(err as Error).stack}`).to.be.instanceOf(AttestationError);
  }
}

const ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';

describe('tpm format: TPMS_ATTEST, TPMT_PUBLIC and TPMT_SIGNATURE read from a real (software) TPM', function () {
  this.timeout(120_000);
  let tpm: SoftwareTpm;
  let ak: number;
  let key: number;

  before(async function () {
    tpm = await softwareTpmOrSkip(this);
    ak = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
    key = tpm.createKey('ecc', ATTRIBUTES);
  });
  after(() => tpm?.stop());

  it('reads what tpm2_certify writes as tpm2_print reads it, and the -f plain (DER) and TPMT_SIGNATURE signatures both verify', () => {
    tpm.tool('tpm2_certify', '-c', hex(key), '-C', hex(ak), '-g', 'sha256', '-o', tpm.file('certinfo'), '-s', tpm.file('sig.tss'));
    const certInfo = readFileSync(tpm.file('certinfo'));
    const printed = (() => {
      try {
        return tpm.tool('tpm2_print', '-t', 'TPMS_ATTEST', tpm.file('certinfo'));
      } catch (err) {
        // tpm2_print 5.4 prints the fields, then fails on the attested union of TPM_ST_ATTEST_CERTIFY.
        return (err as { stdout: string }).stdout;
      }
    })();
    const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(\\S+)`, 'm').exec(printed)![1]!;
    const attest = parseCertifyAttest(certInfo);
    expect(field('magic')).to.equal('ff544347');
    expect(field('type')).to.equal('8017');
    expect(attest.qualifiedSigner.toString('hex')).to.equal(field('qualifiedSigner'));
    expect(attest.extraData.toString('hex')).to.equal(field('extraData'));
    expect(String(attest.clockInfo.clock)).to.equal(field('clock'));
    expect(String(attest.clockInfo.resetCount)).to.equal(field('resetCount'));
    expect(String(attest.clockInfo.restartCount)).to.equal(field('restartCount'));
    expect(attest.clockInfo.safe).to.equal(field('safe') === '1');
    // tpm2_print 5.4 prints the UINT64 firmwareVersion as the bytes of the host's (little-endian) integer.
    expect(attest.firmwareVersion.toString(16).padStart(16, '0')).to.equal(Buffer.from(field('firmwareVersion'), 'hex').reverse().toString('hex'));
    expect(attest.name).to.deep.equal(tpm.name(key));
    expect(attest.qualifiedSigner).to.not.deep.equal(attest.name);

    const akKey = createPublicKey({ key: tpm.publicKeyDer(ak), format: 'der', type: 'spki' });
    const tss = parseTpmSignature(readFileSync(tpm.file('sig.tss')));
    expect(tss).to.include({ scheme: 'ecdsa', hash: 'sha256' });
    expect(verify('sha256', certInfo, akKey, tss.bytes)).to.equal(true);
    tpm.tool('tpm2_certify', '-c', hex(key), '-C', hex(ak), '-g', 'sha256', '-o', tpm.file('certinfo2'), '-s', tpm.file('sig.der'), '-f', 'plain');
    const der = parseTpmSignature(readFileSync(tpm.file('sig.der')));
    expect(der).to.include({ scheme: 'ecdsa', hash: null });
    expect(verify('sha256', readFileSync(tpm.file('certinfo2')), akKey, der.bytes)).to.equal(true);
  });

  it('reads an ECC and an RSA TPMT_PUBLIC (tpm2_readpublic -f tpmt): the key is the one -f der writes, the Name the one the TPM computes', () => {
    const rsa = tpm.createKey('rsa2048', ATTRIBUTES);
    for (const handle of [key, rsa, ak]) {
      const area = parsePublicArea(tpm.publicArea(handle));
      expect(area.key.spki).to.deep.equal(createPublicKey({ key: tpm.publicKeyDer(handle), format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }));
      expect(area.name).to.deep.equal(tpm.name(handle));
      expect(area.nameAlg).to.equal(0x000b);
    }
    expect(parsePublicArea(tpm.publicArea(rsa))).to.include({ type: 'rsa' });
    expect(parsePublicArea(tpm.publicArea(rsa)).key.keyType).to.equal('RSA 2048');
    expect(parsePublicArea(tpm.publicArea(key)).key.keyType).to.equal('EC P-256');
  });

  it('a TPM2_Certify with qualifyingData = SHA-256(key authorization) passes the format\'s check 3; another challenge, another key or another signer does not', () => {
    const keyAuthorization = 'token.thumbprint';
    const { certInfo, signature } = tpm.certify(key, ak, sha256(keyAuthorization));
    const statement = (overrides: Record<string, unknown> = {}) => parseTpmStatement({
      authData: undefined,
      attStmt: new Map<unknown, unknown>(Object.entries({ ver: '2.0', alg: -7, x5c: [Buffer.from([0x30, 0x00])], sig: signature, certInfo, pubArea: tpm.publicArea(key), ...overrides })),
    });
    const challenge = { keyAuthorization, rpIdHash: Buffer.alloc(32), token: 'token' };
    const akSpki = tpm.publicKeyDer(ak);
    expect(statement().attest.extraData).to.deep.equal(sha256(keyAuthorization));
    expect(tpmSignatureProblem(statement(), akSpki)).to.equal(undefined);
    expect(tpmBindingProblem(statement(), challenge)).to.equal(undefined);
    expect(tpmBindingProblem(statement(), { ...challenge, keyAuthorization: 'other.thumbprint' })?.check).to.equal('check 3 (extraData)');
    expect(tpmBindingProblem(statement({ pubArea: tpm.publicArea(ak) }), challenge)?.check).to.equal('check 3 (name)');
    expect(tpmSignatureProblem(statement(), tpm.publicKeyDer(key))?.check).to.equal('check 3 (sig)');
    expect(tpmSignatureProblem(statement({ alg: -35 }), akSpki)?.check).to.equal('check 3 (alg)');
    expect(tpmSignatureProblem(statement({ alg: -8 }), akSpki)?.check).to.equal('check 3 (alg)');
  });

  it('a key that could leave its TPM is refused by name (objectAttributes), after the signature verified', () => {
    const duplicable = tpm.createKey('ecc', 'sensitivedataorigin|userwithauth|sign');
    const { certInfo, signature } = tpm.certify(duplicable, ak, sha256('k.a'));
    const statement = parseTpmStatement({ authData: undefined, attStmt: new Map<unknown, unknown>(Object.entries({ ver: '2.0', alg: -7, x5c: [Buffer.from([0x30, 0x00])], sig: signature, certInfo, pubArea: tpm.publicArea(duplicable) })) });
    expect(tpmSignatureProblem(statement, tpm.publicKeyDer(ak))).to.equal(undefined);
    const problem = tpmBindingProblem(statement, { keyAuthorization: 'k.a', rpIdHash: Buffer.alloc(32), token: 'k' });
    expect(problem?.check).to.equal('check 3 (objectAttributes)');
    expect(problem?.detail).to.match(/lacks fixedTPM, fixedParent: a key that could leave its TPM/);
  });

  it('every truncation, and every extension, of certInfo, pubArea and sig is an AttestationError', () => {
    const { certInfo, signature } = tpm.certify(key, ak, sha256('k.a'));
    const pubArea = tpm.publicArea(key);
    const rsaArea = tpm.publicArea(tpm.createKey('rsa2048', ATTRIBUTES));
    for (const [name, bytes, parse] of [['certInfo', certInfo, parseCertifyAttest], ['pubArea', pubArea, parsePublicArea], ['rsa pubArea', rsaArea, parsePublicArea], ['sig', signature, parseTpmSignature]] as const) {
      for (let length = 0; length < bytes.length; length += 1) {
        expect(() => (parse as (b: Buffer) => unknown)(bytes.subarray(0, length)), `${name} cut at ${length}`).to.throw(AttestationError);
      }
      expect(() => (parse as (b: Buffer) => unknown)(Buffer.concat([bytes, Buffer.from([0])])), `${name} + 1 byte`).to.throw(AttestationError, /after its last field/);
    }
    // type (2), nameAlg (2), objectAttributes (4), authPolicy (TPM2B), symmetric (2: NULL), then the scheme, whose size an unknown one would hide.
    const schemeOffset = 8 + 2 + pubArea.readUInt16BE(8) + 2;
    const unknownScheme = Buffer.from(pubArea);
    unknownScheme.writeUInt16BE(0x0099, schemeOffset);
    expect(() => parsePublicArea(unknownScheme)).to.throw(AttestationError, /parameters.scheme 0x99 is not a scheme of this key type/);
    const sha1Name = Buffer.from(pubArea);
    sha1Name.writeUInt16BE(0x0004, 2);
    expect(() => parsePublicArea(sha1Name)).to.throw(AttestationError, /nameAlg 0x4 is not SHA-256/);
  });

  it('random mutations of the structures and of whole attestation objects throw AttestationError or nothing', () => {
    const { certInfo, signature } = tpm.certify(key, ak, sha256('k.a'));
    const pubArea = tpm.publicArea(key);
    const random = prng(0x7b3);
    const mutate = (bytes: Buffer): Buffer => {
      const copy = Buffer.from(bytes);
      const edits = 1 + Math.floor(random() * 4);
      for (let i = 0; i < edits; i += 1) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      return copy;
    };
    for (let round = 0; round < 1500; round += 1) {
      onlyAttestationErrors(() => parseCertifyAttest(mutate(certInfo)), `certInfo round ${round}`);
      onlyAttestationErrors(() => parsePublicArea(mutate(pubArea)), `pubArea round ${round}`);
      onlyAttestationErrors(() => parseTpmSignature(mutate(signature)), `sig round ${round}`);
      const attObj = encoder.encode(new Map<string, unknown>([
        ['fmt', 'tpm'],
        ['attStmt', new Map<string, unknown>([['ver', '2.0'], ['alg', -7], ['x5c', [Buffer.from([0x30, 0x00])]], ['sig', signature], ['certInfo', certInfo], ['pubArea', pubArea]])],
      ]));
      onlyAttestationErrors(() => ATTESTATION_FORMATS.parse(mutate(attObj)), `attObj round ${round}`);
    }
  });

  it('the attestation object: exactly {"ver": "2.0", "alg", "x5c", "sig", "certInfo", "pubArea"}, authData omitted or empty; a clock not safe is a retry, not malformed', () => {
    const { certInfo, signature } = tpm.certify(key, ak, sha256('k.a'));
    const members = { ver: '2.0', alg: -7, x5c: [Buffer.from([0x30, 0x00])], sig: signature, certInfo, pubArea: tpm.publicArea(key) };
    const object = (statement: Record<string, unknown>, authData?: Buffer) => encoder.encode(new Map<string, unknown>([
      ['fmt', 'tpm'], ['attStmt', new Map<string, unknown>(Object.entries(statement))], ...(authData ? [['authData', authData] as [string, unknown]] : []),
    ]));
    const evidence = ATTESTATION_FORMATS.parse(object(members));
    expect(evidence).to.include({ fmt: 'tpm', firmware: null });
    expect(evidence.retryProblem).to.equal(undefined);
    expect(evidence.counter).to.equal(Number(parseCertifyAttest(certInfo).clockInfo.clock));
    expect(ATTESTATION_FORMATS.parse(object(members, Buffer.alloc(0))).fmt).to.equal('tpm');
    expect(() => ATTESTATION_FORMATS.parse(object(members, Buffer.alloc(37)))).to.throw(AttestationError, /omit authData/);
    expect(() => ATTESTATION_FORMATS.parse(object({ ...members, ver: '1.2' }))).to.throw(AttestationError, /"ver": "2.0"/);
    expect(() => ATTESTATION_FORMATS.parse(object({ ...members, extra: 1 }))).to.throw(AttestationError);
    const { ver: _ver, ...withoutVer } = members;
    expect(() => ATTESTATION_FORMATS.parse(object(withoutVer))).to.throw(AttestationError);
    expect(() => ATTESTATION_FORMATS.parse(object({ ...members, x5c: [] }))).to.throw(AttestationError, /x5c/);

    const unsafe = Buffer.from(certInfo);
    // magic (4), type (2), qualifiedSigner (TPM2B), extraData (TPM2B), then clock (8), resetCount (4), restartCount (4), safe (1).
    const extraDataOffset = 8 + unsafe.readUInt16BE(6);
    const clockOffset = extraDataOffset + 2 + unsafe.readUInt16BE(extraDataOffset);
    expect(unsafe[clockOffset + 16]).to.equal(1);
    unsafe[clockOffset + 16] = 0;
    expect(ATTESTATION_FORMATS.parse(object({ ...members, certInfo: unsafe })).retryProblem?.check).to.equal('check 4 (clock)');
    unsafe[clockOffset + 16] = 2;
    expect(() => ATTESTATION_FORMATS.parse(object({ ...members, certInfo: unsafe }))).to.throw(AttestationError, /safe is 2/);
    unsafe[clockOffset + 16] = 1;
    unsafe.fill(0xff, clockOffset, clockOffset + 8);
    expect(() => ATTESTATION_FORMATS.parse(object({ ...members, certInfo: unsafe }))).to.throw(AttestationError, /not a clock a TPM can show/);
    const wrongMagic = Buffer.from(certInfo);
    wrongMagic[0] = 0x00;
    expect(() => parseCertifyAttest(wrongMagic)).to.throw(AttestationError, /TPM_GENERATED_VALUE/);
    const wrongType = Buffer.from(certInfo);
    wrongType.writeUInt16BE(0x8018, 4);
    expect(() => parseCertifyAttest(wrongType)).to.throw(AttestationError, /TPM_ST_ATTEST_CERTIFY/);
  });
});
