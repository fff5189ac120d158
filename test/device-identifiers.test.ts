import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { OID } from '../ca/asn1.ts';
import { encodeTbsCertificate } from '../ca/certificate-der.ts';
import { HOUR_MS, operationalProfile, type DeviceName, type Profile } from '../ca/profiles.ts';
import { AcmeProblem } from '../enroll/acme/problems.ts';
import { parseOrderedIdentifier } from '../enroll/acme/identifiers.ts';
import { DomainError } from '../errors/domain-error.ts';
import { HsmCryptoKey, signingAlgorithm } from '../hsm/webcrypto.ts';
import { verifyCsr } from '../pki/csr.ts';
import type { AttestationEvidence } from '../pki/attestation/format.ts';
import type { Attested } from '../registry/enrollment/attestation-checks.ts';
import { checkCsr } from '../registry/enrollment/csr-policy.ts';
import { checkDeviceName, hardwareModuleProblem } from '../registry/enrollment/device-name.ts';
import type { DeviceRecord } from '../store/types.ts';
import { estCsr, newKey } from './support/est-client.ts';
import { BASE, createMemoryCa, type MemoryCa } from './support/memory-ca.ts';
import { opensslText, opensslVerify } from './support/openssl.ts';

const HW_TYPE = '1.3.6.1.4.1.99999.1.2';
const ASSIGNER = '1.3.6.1.4.1.99999.42';
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** The otherName GeneralNames, encoded by asn1js and @peculiar/asn1-x509: not by the code under test. */
function independentName(serial: string, name: DeviceName | undefined): asn1X509.GeneralName {
  const inner = name?.type === 'hardware-module'
    ? new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: name.hwType }), new asn1js.OctetString({ valueHex: new TextEncoder().encode(serial) })] })
    : new asn1js.Sequence({ value: [new asn1js.Utf8String({ value: serial }), ...(name?.assigner ? [new asn1js.ObjectIdentifier({ value: name.assigner })] : [])] });
  const typeId = name?.type === 'hardware-module' ? OID.hardwareModuleName : OID.permanentIdentifier;
  return new asn1X509.GeneralName({ otherName: new asn1X509.OtherName({ typeId, value: inner.toBER() }) });
}

/** The SAN extension's value as `openssl asn1parse -strparse` reads it. */
function opensslSan(pem: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'devid-test-san-'));
  try {
    const file = join(dir, 'cert.pem');
    writeFileSync(file, pem);
    const lines = execFileSync('openssl', ['asn1parse', '-in', file], { encoding: 'utf8' }).split('\n');
    const at = lines.findIndex((l) => l.includes('X509v3 Subject Alternative Name'));
    const offset = /^\s*(\d+):/.exec(lines[at + 1]!)![1]!;
    return execFileSync('openssl', ['asn1parse', '-in', file, '-strparse', offset], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function problemOf(run: () => unknown): AcmeProblem {
  try {
    run();
  } catch (err) {
    if (err instanceof AcmeProblem) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('device identifiers (draft-ietf-acme-device-attest-09 sections 3 and 4)', () => {
  describe('the order identifier, by the ABNF', () => {
    it('splits a permanent-identifier and a hardware-module value', () => {
      expect(parseOrderedIdentifier({ type: 'permanent-identifier', value: 'SN-1' })).to.deep.equal({ type: 'permanent-identifier', value: 'SN-1', serial: 'SN-1', name: { type: 'permanent-identifier' } });
      expect(parseOrderedIdentifier({ type: 'permanent-identifier', value: `SN-1/${ASSIGNER}` }).name).to.deep.equal({ type: 'permanent-identifier', assigner: ASSIGNER });
      expect(parseOrderedIdentifier({ type: 'hardware-module', value: `SN-1/${HW_TYPE}` })).to.deep.equal({ type: 'hardware-module', value: `SN-1/${HW_TYPE}`, serial: 'SN-1', name: { type: 'hardware-module', hwType: HW_TYPE } });
      // The ABNF's arcs: 0 or 1 with a second arc up to 39, or 2 with any.
      for (const oid of ['0.0', '1.39', '2.999', '2.25.329800735698586629295641978511506172918', '1.2.0.3']) {
        expect(parseOrderedIdentifier({ type: 'hardware-module', value: `a/${oid}` }).name).to.deep.equal({ type: 'hardware-module', hwType: oid });
      }
      // Anything but "/" is the ABNF's device-identifier-value: whether it names a device is the CA's decision (rejectedIdentifier), not the syntax's.
      expect(parseOrderedIdentifier({ type: 'permanent-identifier', value: 'a b\u00e9' }).serial).to.equal('a b\u00e9');
    });

    it('hostile values: odd OIDs, no serial, extra slashes, overlong values and lone surrogates are malformed; other types unsupported', () => {
      const malformed: unknown[] = [
        { type: 'hardware-module', value: 'SN-1' }, { type: 'hardware-module', value: 'SN-1/' }, { type: 'hardware-module', value: `/${HW_TYPE}` },
        { type: 'hardware-module', value: 'SN-1/1.40' }, { type: 'hardware-module', value: 'SN-1/3.1' }, { type: 'hardware-module', value: 'SN-1/1' },
        { type: 'hardware-module', value: 'SN-1/1.2.03' }, { type: 'hardware-module', value: 'SN-1/1..2' }, { type: 'hardware-module', value: 'SN-1/1.2.' },
        { type: 'hardware-module', value: 'SN-1/.1.2' }, { type: 'hardware-module', value: 'SN-1/1.2/1.2' }, { type: 'hardware-module', value: 'SN-1/1.2 ' },
        { type: 'hardware-module', value: 'SN-1/-1.2' }, { type: 'hardware-module', value: 'SN-1/1.2.\u0661' }, { type: 'hardware-module', value: 'SN-1/01.2' },
        { type: 'hardware-module', value: 'U04tMQ==/1.2.3' + '=' }, { type: 'permanent-identifier', value: 'SN-1/' }, { type: 'permanent-identifier', value: 'SN-1/x' },
        { type: 'permanent-identifier', value: 'SN-1/1.2/3' }, { type: 'permanent-identifier', value: '../x' }, { type: 'permanent-identifier', value: '' },
        { type: 'permanent-identifier', value: 'S'.repeat(1025) }, { type: 'hardware-module', value: `SN-1/1.2${'.1'.repeat(600)}` },
        { type: 'permanent-identifier', value: 'SN-\ud800' }, { type: 'permanent-identifier', value: 42 }, { type: 'permanent-identifier' },
        null, 'SN-1', [],
      ];
      for (const identifier of malformed) {
        const problem = problemOf(() => parseOrderedIdentifier(identifier));
        expect(problem.type, JSON.stringify(identifier)).to.equal('malformed');
      }
      for (const type of ['dns', 'ip', 'Permanent-Identifier', 'hardware-module ', undefined]) {
        expect(problemOf(() => parseOrderedIdentifier({ type, value: 'SN-1' })).type).to.equal('unsupportedIdentifier');
      }
      // draft-09 has no base64 in hardware-module values: a base64 serial is a serial (of no device here), its hwType still an OID.
      expect(parseOrderedIdentifier({ type: 'hardware-module', value: `U04tMQ==/${HW_TYPE}` }).serial).to.equal('U04tMQ==');
    });
  });

  describe('the operational certificate names the device as ordered', () => {
    let ca: MemoryCa;
    before(async () => {
      ca = await createMemoryCa();
    });
    after(() => ca.close());

    const spki = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    const profile = (name?: DeviceName, serial = 'SN-000123'): Profile => operationalProfile({ issuer: ca.hierarchy.operational, spki: spki(), baseUrl: BASE, now: new Date() }, {
      serial, ...(name ? { name } : {}), trustDomain: 'devices.example', ttlMs: HOUR_MS, serverAuth: false, predecessorSha256: Buffer.alloc(32, 9),
    });

    /** The certificate @peculiar/x509 builds with a SAN encoded by asn1js and @peculiar/asn1-x509 from the same name. */
    async function peculiarTbs(made: Profile, serial: Buffer, deviceSerial: string, name: DeviceName | undefined): Promise<Buffer> {
      const issuer = ca.hierarchy.operational;
      const san = new asn1X509.SubjectAlternativeName([
        independentName(deviceSerial, name), new asn1X509.GeneralName({ uniformResourceIdentifier: `spiffe://devices.example/device/${deviceSerial}` }),
      ]);
      const extensions = made.extensions.map((e) => (e.type === OID.subjectAltName
        ? new x509.Extension(OID.subjectAltName, false, AsnConvert.serialize(san))
        : new x509.Extension(e.type, e.critical, new Uint8Array(e.value))));
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial.toString('hex'), issuer: issuer.certificate.subjectName, subject: new x509.Name(new Uint8Array(made.subject)),
        notBefore: made.notBefore, notAfter: made.notAfter, publicKey: new x509.PublicKey(new Uint8Array(made.spki)), extensions,
        signingKey: new HsmCryptoKey(issuer.key), signingAlgorithm: signingAlgorithm(issuer.key),
      }, ca.crypto);
      return Buffer.from(AsnConvert.serialize(AsnConvert.parse(cert.rawData, asn1X509.Certificate).tbsCertificate));
    }

    // OpenSSL 3.0's -text names the otherName types but prints their values as <unsupported>: asn1parse reads the values.
    const forms: Array<[string, DeviceName | undefined, RegExp, string[]]> = [
      ['a plain permanent-identifier (unchanged)', undefined, /othername: Permanent Identifier::/, ['UTF8STRING        :SN-000123']],
      ['a permanent-identifier with the assigner', { type: 'permanent-identifier', assigner: ASSIGNER }, /othername: Permanent Identifier::/, ['UTF8STRING        :SN-000123', `OBJECT            :${ASSIGNER}`]],
      ['a hardware-module', { type: 'hardware-module', hwType: HW_TYPE }, /othername: (Hardware Module Name|1\.3\.6\.1\.5\.5\.7\.8\.4)::/, [`OBJECT            :${HW_TYPE}`, 'OCTET STRING      :SN-000123']],
    ];
    for (const [what, name, shown, parsedLines] of forms) {
      it(`${what}: byte-identical to @peculiar/x509 with an independently encoded SAN; OpenSSL shows and verifies it`, async () => {
        for (const serial of [Buffer.from('01'.repeat(16), 'hex'), Buffer.from('ff'.repeat(16), 'hex')]) {
          const made = profile(name);
          expect(encodeTbsCertificate(ca.hierarchy.operational, made, serial).equals(await peculiarTbs(made, serial, 'SN-000123', name))).to.equal(true);
        }
        const long = 'S'.repeat(64);
        const made = profile(name, long);
        const serial = Buffer.from('7f'.repeat(16), 'hex');
        expect(encodeTbsCertificate(ca.hierarchy.operational, made, serial).equals(await peculiarTbs(made, serial, long, name)), '64-character serial').to.equal(true);

        const issued = await ca.store.transaction((tx) => ca.issuance.issue(tx, { issuer: ca.hierarchy.operational, profile: profile(name), deviceSerial: 'SN-000123', predecessorSha256: null }));
        const pem = new x509.X509Certificate(new Uint8Array(issued.der)).toString('pem');
        const text = opensslText(pem);
        expect(text).to.match(shown);
        const sanLines = opensslSan(pem);
        for (const line of parsedLines) expect(sanLines).to.contain(line);
        if (!name?.type) expect(sanLines).not.to.contain('OBJECT            :1.3.6.1.4.1');
        expect(text).to.contain('URI:spiffe://devices.example/device/SN-000123');
        const verified = opensslVerify(ca.hierarchy.root.certificate.toString('pem'), ca.hierarchy.operational.certificate.toString('pem'), pem, 'sslclient');
        expect(verified.ok, verified.output).to.equal(true);
        // The SAN's first name, as another parser reads it, is the ordered name octet for octet.
        const san = AsnConvert.parse(new x509.X509Certificate(new Uint8Array(issued.der)).getExtension(x509.SubjectAlternativeNameExtension)!.value, asn1X509.SubjectAlternativeName);
        expect(Buffer.from(AsnConvert.serialize(san[0]!)).equals(Buffer.from(AsnConvert.serialize(independentName('SN-000123', name))))).to.equal(true);
      });
    }
  });

  describe('the CSR may request the ordered name, and no other', () => {
    async function csrNaming(names: asn1X509.GeneralName[]): Promise<{ text: string; spki: Buffer }> {
      const extensions = new asn1X509.Extensions([new asn1X509.Extension({ extnID: OID.subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(new asn1X509.SubjectAlternativeName(names))) })]);
      const der = Buffer.from((await estCsr(await newKey(), { name: 'CN=SN-1', attributes: [new x509.Attribute(EXTENSION_REQUEST, [AsnConvert.serialize(extensions)])] })).replace(/\s+/g, ''), 'base64');
      const text = der.toString('base64url');
      return { text, spki: verifyCsr(text).publicKey.spki };
    }
    const hw: DeviceName = { type: 'hardware-module', hwType: HW_TYPE };
    const assigned: DeviceName = { type: 'permanent-identifier', assigner: ASSIGNER };

    it('accepts exactly the ordered name; refuses every other form, serial, hwType or assigner with badCSR', async () => {
      const accepted: Array<[DeviceName | undefined, asn1X509.GeneralName]> = [
        [undefined, independentName('SN-1', undefined)], [hw, independentName('SN-1', hw)], [assigned, independentName('SN-1', assigned)],
      ];
      for (const [name, general] of accepted) {
        const { text, spki } = await csrNaming([general]);
        expect(checkCsr(text, spki, 'SN-1', [], name).publicKey.spki.equals(spki), JSON.stringify(name)).to.equal(true);
      }
      const refusals: Array<[DeviceName | undefined, asn1X509.GeneralName]> = [
        [undefined, independentName('SN-1', hw)], [undefined, independentName('SN-1', assigned)], [hw, independentName('SN-1', undefined)],
        [hw, independentName('SN-1', { type: 'hardware-module', hwType: '1.3.6.1.4.1.99999.1.3' })], [hw, independentName('SN-2', hw)],
        [assigned, independentName('SN-1', undefined)], [assigned, independentName('SN-1', { type: 'permanent-identifier', assigner: '1.3.6.1.4.1.99999.43' })],
        [{ type: 'permanent-identifier' }, independentName('SN-1', assigned)], [hw, new asn1X509.GeneralName({ dNSName: 'SN-1' })],
      ];
      for (const [name, general] of refusals) {
        const { text, spki } = await csrNaming([general]);
        let thrown: unknown;
        try {
          checkCsr(text, spki, 'SN-1', [], name);
        } catch (err) {
          thrown = err;
        }
        expect(thrown, `${JSON.stringify(name)}`).to.be.instanceOf(DomainError);
        expect((thrown as DomainError).kind).to.equal('badCSR');
      }
      // The ordered name and a second copy of it, or it with another: only the ordered name, each time.
      const { text, spki } = await csrNaming([independentName('SN-1', hw), independentName('SN-1', undefined)]);
      expect(() => checkCsr(text, spki, 'SN-1', [], hw)).to.throw(DomainError, /HardwareModuleName SN-1\/1\.3\.6\.1\.4\.1\.99999\.1\.2/);
    });
  });

  describe('at the attestation, a hardware-module order is held to the birth certificate that attests (hardwareModuleProblem)', () => {
    let withModule: Buffer;
    let withoutModule: Buffer;
    before(async () => {
      const crypto = globalThis.crypto;
      const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as CryptoKeyPair;
      const san = new asn1X509.SubjectAlternativeName([independentName('SN-1', { type: 'hardware-module', hwType: HW_TYPE })]);
      const make = async (extensions: x509.Extension[]) => Buffer.from((await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01', name: 'CN=birth', notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions,
      }, crypto)).rawData);
      withModule = await make([new x509.Extension(OID.subjectAltName, false, AsnConvert.serialize(san))]);
      withoutModule = await make([]);
    });

    const device = { serial: 'SN-1', manufacturer: 'self', model: 'm' } as DeviceRecord;
    const storeWith = (birth: Buffer | undefined) => ({
      certificates: { newestOfDevice: async () => (birth ? { der: birth } : undefined) }, claims: { birthOf: async () => undefined }, models: { byName: async () => undefined },
    }) as unknown as Parameters<typeof hardwareModuleProblem>[0];
    const evidence = (chain: Buffer[], identity?: AttestationEvidence['identity']) => ({ fmt: identity ? 'apple' : 'devid', chain, ...(identity ? { identity } : {}) }) as unknown as AttestationEvidence;
    const attested = (byBirthKey: boolean) => ({ byBirthKey }) as unknown as Attested;
    const ordered = (hwType = HW_TYPE) => ({ type: 'hardware-module', hwType }) as const;

    it('accepts the birth certificate\'s own name; refuses another hwType, a birth certificate without one, and a manufacturer-made leaf', async () => {
      expect(await hardwareModuleProblem(storeWith(undefined), device, evidence([withModule]), attested(true), ordered())).to.equal(undefined);
      expect((await hardwareModuleProblem(storeWith(undefined), device, evidence([withModule]), attested(true), ordered('1.2.3')))?.detail).to.match(/names hardware module SN-1\/1\.3\.6\.1\.4\.1\.99999\.1\.2, not the ordered SN-1\/1\.2\.3/);
      expect((await hardwareModuleProblem(storeWith(undefined), { ...device, serial: 'SN-2' }, evidence([withModule]), attested(true), ordered()))?.check).to.equal('identifier');
      expect((await hardwareModuleProblem(storeWith(undefined), device, evidence([withoutModule]), attested(true), ordered()))?.detail).to.match(/no HardwareModuleName/);
      expect((await hardwareModuleProblem(storeWith(withModule), device, evidence([withModule], { kind: 'manufacturer-serial', serial: 'SN-1' }), attested(true), ordered()))?.detail).to.match(/attestation service/);
      // Staged renewal: x5c[0] is an operational certificate, the recorded birth certificate decides.
      expect(await hardwareModuleProblem(storeWith(withModule), device, evidence([withoutModule]), attested(false), ordered())).to.equal(undefined);
      expect((await hardwareModuleProblem(storeWith(withoutModule), device, evidence([withModule]), attested(false), ordered()))?.detail).to.match(/no HardwareModuleName/);
      // A device born elsewhere: the birth certificate validated at this attestation.
      const outside = { byBirthKey: true, outsideBirth: { der: withoutModule } } as unknown as Attested;
      expect((await hardwareModuleProblem(storeWith(withModule), { ...device, manufacturer: 'oem' }, evidence([withModule]), outside, ordered()))?.detail).to.match(/no HardwareModuleName/);
    });
  });

  describe('what the CA accepts at newOrder (checkDeviceName)', () => {
    const store = (claim: { birthCertificateSha256: string | null } | undefined, hwType = HW_TYPE) => ({
      certificates: { newestOfDevice: async () => undefined }, claims: { find: async () => claim, birthOf: async () => undefined }, models: { byName: async () => ({ hwType }) },
    }) as unknown as Parameters<typeof checkDeviceName>[0];
    const outside = { serial: 'SN-9', manufacturer: 'oem', model: 'm' } as DeviceRecord;
    async function code(run: Promise<void>): Promise<string | undefined> {
      try {
        await run;
        return undefined;
      } catch (err) {
        expect(err).to.be.instanceOf(DomainError);
        return (err as DomainError).code;
      }
    }

    it('an assigner only when it is the CA\'s; a hardware-module only of a birth certificate\'s hwType, never for a device claimed by serial', async () => {
      const assigned = { type: 'permanent-identifier', assigner: ASSIGNER } as const;
      expect(await code(checkDeviceName(store(undefined), outside, 'SN-9', { type: 'permanent-identifier' }, undefined))).to.equal(undefined);
      expect(await code(checkDeviceName(store(undefined), outside, 'SN-9', assigned, ASSIGNER))).to.equal(undefined);
      expect(await code(checkDeviceName(store(undefined), outside, 'SN-9', assigned, undefined))).to.equal('rejectedIdentifier');
      expect(await code(checkDeviceName(store(undefined), outside, 'SN-9', assigned, `${ASSIGNER}.1`))).to.equal('rejectedIdentifier');
      const hw = { type: 'hardware-module', hwType: HW_TYPE } as const;
      expect(await code(checkDeviceName(store({ birthCertificateSha256: 'ab'.repeat(32) }), outside, 'SN-9', hw, undefined)), 'before its first attestation: the model').to.equal(undefined);
      expect(await code(checkDeviceName(store({ birthCertificateSha256: 'ab'.repeat(32) }, '1.2.3'), outside, 'SN-9', hw, undefined))).to.equal('rejectedIdentifier');
      expect(await code(checkDeviceName(store({ birthCertificateSha256: null }), outside, 'SN-9', hw, undefined)), 'claimed by serial').to.equal('rejectedIdentifier');
      expect(await code(checkDeviceName(store(undefined), null, 'SN-9', hw, undefined)), 'an unknown device: its attestation decides').to.equal(undefined);
    });
  });
});
