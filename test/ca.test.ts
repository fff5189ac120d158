import { createHash, generateKeyPairSync, X509Certificate as NodeCertificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { ASSURANCE_POLICY, OID } from '../ca/asn1.ts';
import { encodeTbsCertificate } from '../ca/certificate-der.ts';
import { ProfileLintError, lintProfile } from '../ca/lint.ts';
import { END_ENTITY, birthProfile, DAY_MS, HOUR_MS, NO_EXPIRY, operationalProfile, serverProfile, type Profile } from '../ca/profiles.ts';
import { ecdsaSigValue } from '../ca/signer.ts';
import { extensionOidProblem } from '../ca/oid.ts';
import { HsmCryptoKey, signingAlgorithm } from '../hsm/webcrypto.ts';
import { BASE, createMemoryCa, type MemoryCa } from './support/memory-ca.ts';
import { opensslSubject, opensslText, opensslVerify } from './support/openssl.ts';

function deviceSpki(curve: 'P-256' | 'P-384' = 'P-256'): Buffer {
  return generateKeyPairSync('ec', { namedCurve: curve }).publicKey.export({ format: 'der', type: 'spki' });
}

function extension(cert: x509.X509Certificate, oid: string): x509.Extension {
  const ext = cert.extensions.find((e) => e.type === oid);
  if (!ext) throw new Error(`no extension ${oid}`);
  return ext;
}

function otherNames(cert: x509.X509Certificate): asn1X509.OtherName[] {
  const san = AsnConvert.parse(extension(cert, OID.subjectAltName).value, asn1X509.SubjectAlternativeName);
  return san.filter((n) => n.otherName).map((n) => n.otherName!);
}

describe('ca: hierarchy, profiles and the issuance pipeline (in-memory keys)', () => {
  let ca: MemoryCa;
  const pem = (c: x509.X509Certificate) => c.toString('pem');

  before(async () => {
    ca = await createMemoryCa();
  });
  after(() => ca.close());

  const issue = (profile: Profile, issuer = profile.kind === 'birth' ? ca.hierarchy.factory : ca.hierarchy.operational, predecessorSha256: string | null = null) =>
    ca.store.transaction((tx) => ca.issuance.issue(tx, { issuer, profile, deviceSerial: 'SN-000123', predecessorSha256 }));
  const parsed = (der: Buffer) => new x509.X509Certificate(new Uint8Array(der));

  describe('hierarchy', () => {
    it('OpenSSL verifies both intermediates and the audit key certificate against the root', () => {
      for (const cert of [ca.hierarchy.factory.certificate, ca.hierarchy.operational.certificate, parsed(ca.audit.der)]) {
        const result = opensslVerify(pem(ca.hierarchy.root.certificate), undefined, pem(cert));
        expect(result.ok, result.output).to.equal(true);
      }
    });

    it('root: self-signed P-384, CA, keyCertSign+cRLSign critical, SKI, valid until 99991231235959Z', async () => {
      const root = ca.hierarchy.root.certificate;
      expect(await root.isSelfSigned()).to.equal(true);
      expect(root.notAfter.toISOString()).to.equal('9999-12-31T23:59:59.000Z');
      const bc = root.getExtension(x509.BasicConstraintsExtension)!;
      expect([bc.ca, bc.critical]).to.deep.equal([true, true]);
      const ku = root.getExtension(x509.KeyUsagesExtension)!;
      expect([ku.usages, ku.critical]).to.deep.equal([x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true]);
      expect((root.publicKey.algorithm as EcKeyAlgorithm).namedCurve).to.equal('P-384');
      expect(opensslText(pem(root))).to.contain('Not After : Dec 31 23:59:59 9999 GMT');
    });

    it('intermediates: pathLen 0 critical, key usage critical, SKI/AKI, root CRL, validity', () => {
      const rootSki = ca.hierarchy.root.certificate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
      for (const issuer of [ca.hierarchy.factory, ca.hierarchy.operational]) {
        const cert = issuer.certificate;
        const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
        expect([bc.ca, bc.pathLength, bc.critical]).to.deep.equal([true, 0, true]);
        const ku = cert.getExtension(x509.KeyUsagesExtension)!;
        expect([ku.usages, ku.critical]).to.deep.equal([x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true]);
        expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(rootSki);
        expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId).to.equal(issuer.record.ski.toString('hex'));
        expect(JSON.stringify(cert.getExtension(x509.CRLDistributionPointsExtension)!.distributionPoints)).to.contain(`${BASE}/crl/root.crl`);
        expect(cert.signatureAlgorithm.hash.name).to.equal('SHA-384');
      }
      expect(ca.hierarchy.factory.notAfter.toISOString()).to.equal('9999-12-31T23:59:59.000Z');
      const years = (ca.hierarchy.operational.notAfter.getTime() - Date.now()) / (365 * DAY_MS);
      expect(years).to.be.within(4.99, 5.01);
    });

    it('every CA row records its role, generation, SKI, public key, label and CKA_ID', async () => {
      const rows = await ca.store.caCertificates.all();
      expect(rows.map((r) => [r.role, r.generation, r.keyLabel, r.active])).to.deep.equal([
        ['root', 1, 'devid-root', true], ['factory', 1, 'devid-factory', true], ['operational', 1, 'devid-operational', true], ['audit', 1, 'devid-audit', true],
      ]);
      for (const row of rows) {
        const key = (await ca.provider.findKeyById(row.keyId))!;
        expect(key.publicKey.export({ format: 'der', type: 'spki' }).equals(row.publicKey)).to.equal(true);
        expect(new NodeCertificate(row.der).publicKey.equals(key.publicKey)).to.equal(true);
      }
    });

    it('the audit key certificate: CA:FALSE, digitalSignature only, by the root, no expiry', () => {
      const cert = parsed(ca.audit.der);
      expect(cert.subject).to.contain('CN=devid-ca Audit Key');
      expect(cert.getExtension(x509.BasicConstraintsExtension)!.ca).to.equal(false);
      expect(cert.getExtension(x509.KeyUsagesExtension)!.usages).to.equal(x509.KeyUsageFlags.digitalSignature);
      expect(cert.issuer).to.equal(ca.hierarchy.root.certificate.subject);
      expect(cert.notAfter.getTime()).to.equal(NO_EXPIRY.getTime());
    });
  });

  describe('birth certificate', () => {
    let cert: x509.X509Certificate;
    before(async () => {
      const profile = birthProfile({ issuer: ca.hierarchy.factory, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, {
        serial: 'SN-000123', manufacturer: 'Acme Devices', model: 'thermo-2', hwType: '1.3.6.1.4.1.99999.1.2',
      });
      cert = parsed((await issue(profile)).der);
    });

    it('OpenSSL verifies it through the factory intermediate', () => {
      const result = opensslVerify(pem(ca.hierarchy.root.certificate), pem(ca.hierarchy.factory.certificate), pem(cert));
      expect(result.ok, result.output).to.equal(true);
    });

    it('subject serialNumber (PrintableString), O, CN; notAfter 9999; EKU clientAuth only (never a TLS server)', () => {
      expect(opensslSubject(pem(cert))).to.equal('subject=CN=thermo-2,O=Acme Devices,serialNumber=SN-000123');
      const asn = AsnConvert.parse(cert.rawData, asn1X509.Certificate);
      const serialAttr = asn.tbsCertificate.subject[0]![0]!;
      expect(serialAttr.type).to.equal(OID.serialNumber);
      expect(serialAttr.value.printableString).to.equal('SN-000123');
      expect(cert.notAfter.toISOString()).to.equal(NO_EXPIRY.toISOString());
      const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
      expect(eku?.usages).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
      expect(eku?.critical).to.equal(false);
    });

    it('SAN otherName HardwareModuleName with hwType and hwSerialNum', () => {
      const [name] = otherNames(cert);
      expect(name!.typeId).to.equal(OID.hardwareModuleName);
      const seq = asn1js.fromBER(name!.value).result as asn1js.Sequence;
      const [hwType, hwSerial] = seq.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.OctetString];
      expect(hwType.valueBlock.toString()).to.equal('1.3.6.1.4.1.99999.1.2');
      expect(Buffer.from(hwSerial.valueBlock.valueHexView).toString('utf8')).to.equal('SN-000123');
    });

    it('end-entity extensions: CA:FALSE, digitalSignature critical, SKI/AKI, AIA, CDP, backdated notBefore, 128-bit serial', () => {
      expectEndEntity(cert, 'factory');
    });
  });

  function expectEndEntity(cert: x509.X509Certificate, slug: 'factory' | 'operational'): void {
    expect(cert.getExtension(x509.BasicConstraintsExtension)!.ca).to.equal(false);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).to.deep.equal([x509.KeyUsageFlags.digitalSignature, true]);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).to.not.equal(null);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(ca.hierarchy.active(slug).record.ski.toString('hex'));
    const text = opensslText(cert.toString('pem'));
    expect(text).to.contain(`OCSP - URI:${BASE}/ocsp`);
    expect(text).to.contain(`CA Issuers - URI:${BASE}/ca/${slug}.crt`);
    expect(text).to.contain(`URI:${BASE}/crl/${slug}.crl`);
    expect(Date.now() - cert.notBefore.getTime()).to.be.within(4 * 60_000, 6 * 60_000);
    expect(cert.serialNumber).to.match(/^(?!00)[0-9a-f]{32}$/);
  }

  describe('operational certificate', () => {
    const predecessor = createHash('sha256').update('the birth certificate').digest();
    const operational = (options: { predecessorOid?: string; serverAuth?: boolean; ttlMs?: number } = {}) =>
      operationalProfile({ issuer: ca.hierarchy.operational, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, {
        serial: 'SN-000123', trustDomain: 'devices.example', ttlMs: options.ttlMs ?? 24 * HOUR_MS,
        serverAuth: options.serverAuth ?? false, predecessorSha256: predecessor,
        ...(options.predecessorOid ? { predecessorOid: options.predecessorOid } : {}),
      });

    it('CN=serial, PermanentIdentifier and SPIFFE URI SANs, clientAuth, 24 h, predecessor recorded', async () => {
      const issued = await issue(operational(), ca.hierarchy.operational, predecessor.toString('hex'));
      const cert = parsed(issued.der);
      expect(opensslSubject(pem(cert))).to.equal('subject=CN=SN-000123');
      const [name] = otherNames(cert);
      expect(name!.typeId).to.equal(OID.permanentIdentifier);
      const seq = asn1js.fromBER(name!.value).result as asn1js.Sequence;
      expect((seq.valueBlock.value[0] as asn1js.Utf8String).valueBlock.value).to.equal('SN-000123');
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
      expect(san.critical).to.equal(false);
      expect(san.names.items.map((n) => n.value)).to.include('spiffe://devices.example/device/SN-000123');
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OID.clientAuth]);
      expect(cert.notAfter.getTime() - cert.notBefore.getTime()).to.equal(24 * HOUR_MS + 5 * 60_000);
      expect(issued.record.predecessorSha256).to.equal(predecessor.toString('hex'));
      expect(issued.record.issuerId).to.equal(ca.hierarchy.operational.id);
      expectEndEntity(cert, 'operational');
      const chain = opensslVerify(pem(ca.hierarchy.root.certificate), pem(ca.hierarchy.operational.certificate), pem(cert), 'sslclient');
      expect(chain.ok, chain.output).to.equal(true);
    });

    it('serverAuth too when the device class asks for it', async () => {
      const cert = parsed((await issue(operational({ serverAuth: true }))).der);
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OID.clientAuth, OID.serverAuth]);
    });

    it('carries the predecessor extension, SEQUENCE { OCTET STRING }, non-critical, when an OID is configured', async () => {
      const cert = parsed((await issue(operational({ predecessorOid: '1.3.6.1.4.1.99999.7' }))).der);
      const ext = extension(cert, '1.3.6.1.4.1.99999.7');
      expect(ext.critical).to.equal(false);
      const result = asn1js.fromBER(ext.value);
      expect(result.offset).to.equal(ext.value.byteLength);
      const octets = (result.result as asn1js.Sequence).valueBlock.value[0] as asn1js.OctetString;
      expect(Buffer.from(octets.valueBlock.valueHexView).equals(predecessor)).to.equal(true);
      expect(opensslVerify(pem(ca.hierarchy.root.certificate), pem(ca.hierarchy.operational.certificate), pem(cert)).ok).to.equal(true);
    });

    it('carries exactly one assurance policy: attested by default, mediated when a gateway vouched; OpenSSL reads and verifies both', async () => {
      for (const assurance of ['attested', 'mediated'] as const) {
        const profile = operationalProfile({ issuer: ca.hierarchy.operational, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, {
          serial: 'SN-000123', trustDomain: 'devices.example', ttlMs: HOUR_MS, serverAuth: false, predecessorSha256: predecessor,
          ...(assurance === 'mediated' ? { assurance } : {}),
        });
        const cert = parsed((await issue(profile)).der);
        const policies = cert.extensions.filter((e) => e.type === OID.certificatePolicies);
        expect(policies).to.have.length(1);
        expect(policies[0]!.critical).to.equal(false);
        // The value as @peculiar/asn1-x509 writes CertificatePolicies with one PolicyInformation and no qualifiers.
        const expected = AsnConvert.serialize(new asn1X509.CertificatePolicies([new asn1X509.PolicyInformation({ policyIdentifier: ASSURANCE_POLICY[assurance] })]));
        expect(Buffer.from(policies[0]!.value).equals(Buffer.from(expected))).to.equal(true);
        expect(cert.getExtension(x509.CertificatePolicyExtension)!.policies).to.deep.equal([ASSURANCE_POLICY[assurance]]);
        const text = opensslText(pem(cert));
        expect(text).to.contain(`Policy: ${ASSURANCE_POLICY[assurance]}`);
        expect(text).not.to.contain(`Policy: ${ASSURANCE_POLICY[assurance === 'attested' ? 'mediated' : 'attested']}`);
        const result = opensslVerify(pem(ca.hierarchy.root.certificate), pem(ca.hierarchy.operational.certificate), pem(cert), 'sslclient');
        expect(result.ok, result.output).to.equal(true);
      }
    });

    it('never runs beyond the issuer notAfter', async () => {
      const cert = parsed((await issue(operational({ ttlMs: 20 * 365 * DAY_MS }))).der);
      expect(cert.notAfter.getTime()).to.equal(ca.hierarchy.operational.notAfter.getTime());
    });
  });

  describe('server certificate', () => {
    it('serverAuth for the public host, 90 days, verified by OpenSSL as an SSL server', async () => {
      const cert = parsed((await issue(serverProfile({ issuer: ca.hierarchy.operational, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, 'ca.devid.test'))).der);
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OID.serverAuth]);
      expect(Math.round((cert.notAfter.getTime() - Date.now()) / DAY_MS)).to.equal(90);
      const result = opensslVerify(pem(ca.hierarchy.root.certificate), pem(ca.hierarchy.operational.certificate), pem(cert), 'sslserver');
      expect(result.ok, result.output).to.equal(true);
      expect(opensslText(pem(cert))).to.contain('DNS:ca.devid.test');
    });
  });

  describe('DER template (docs/developers/architecture.md: built once, patched per request)', () => {
    /** The TBSCertificate @peculiar/x509 builds from the same fields: ours must be the same bytes. */
    async function peculiarTbs(profile: Profile, issuer: MemoryCa['hierarchy']['factory'], serial: Buffer): Promise<Buffer> {
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial.toString('hex'),
        issuer: issuer.certificate.subjectName,
        subject: new x509.Name(new Uint8Array(profile.subject)),
        notBefore: profile.notBefore,
        notAfter: profile.notAfter,
        publicKey: new x509.PublicKey(new Uint8Array(profile.spki)),
        extensions: profile.extensions.map((e) => new x509.Extension(e.type, e.critical, new Uint8Array(e.value))),
        signingKey: new HsmCryptoKey(issuer.key),
        signingAlgorithm: signingAlgorithm(issuer.key),
      }, ca.crypto);
      return Buffer.from(AsnConvert.serialize(AsnConvert.parse(cert.rawData, asn1X509.Certificate).tbsCertificate));
    }

    const cases: Array<[string, () => Profile]> = [
      ['birth (P-256 key, GeneralizedTime notAfter)', () => birthProfile({ issuer: ca.hierarchy.factory, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, { serial: 'SN-1.A-b', manufacturer: 'Acmé Devices', model: 'm', hwType: '1.3.6.1.4.1.99999.1.2' })],
      ['birth (Ed25519 key, 64-character serial)', () => birthProfile({ issuer: ca.hierarchy.factory, spki: generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }), baseUrl: BASE, now: new Date() }, { serial: 'S'.repeat(64), manufacturer: 'M'.repeat(64), model: 'x'.repeat(64), hwType: '1.2.3' })],
      ['birth (RSA 2048 key: long lengths)', () => birthProfile({ issuer: ca.hierarchy.factory, spki: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' }), baseUrl: BASE, now: new Date() }, { serial: 'SN-2', manufacturer: 'A', model: 'm', hwType: '1.2.3' })],
      ['operational with predecessor (P-384 key)', () => operationalProfile({ issuer: ca.hierarchy.operational, spki: deviceSpki('P-384'), baseUrl: BASE, now: new Date() }, { serial: 'SN-3', trustDomain: 'd.example', ttlMs: HOUR_MS, serverAuth: true, predecessorSha256: Buffer.alloc(32, 7), predecessorOid: '1.3.6.1.4.1.99999.7' })],
      ['operational, mediated (P-256 key, no predecessor)', () => operationalProfile({ issuer: ca.hierarchy.operational, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, { serial: 'SN-4', trustDomain: 'd.example', ttlMs: HOUR_MS, serverAuth: false, assurance: 'mediated' })],
      ['server (IP address)', () => serverProfile({ issuer: ca.hierarchy.operational, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, '127.0.0.1')],
    ];
    for (const [name, make] of cases) {
      it(`${name}: byte-identical to @peculiar/x509`, async () => {
        const profile = make();
        const issuer = profile.kind === 'birth' ? ca.hierarchy.factory : ca.hierarchy.operational;
        for (const serial of [Buffer.from('01'.repeat(16), 'hex'), Buffer.from('ff'.repeat(16), 'hex')]) {
          expect(encodeTbsCertificate(issuer, profile, serial).equals(await peculiarTbs(profile, issuer, serial))).to.equal(true);
        }
      });
    }

    it('ECDSA signatures become the same DER Ecdsa-Sig-Value as @peculiar/x509 makes, whatever the leading bytes', () => {
      const formatter = new x509.AsnEcSignatureFormatter();
      for (const size of [32, 48]) {
        for (const fill of [0x00, 0x01, 0x7f, 0x80, 0xff]) {
          const raw = Buffer.alloc(2 * size, fill);
          raw[size - 1] = 0x42;
          raw[2 * size - 1] = 0x17;
          const expected = formatter.toAsnSignature({ name: 'ECDSA', namedCurve: size === 32 ? 'P-256' : 'P-384' } as EcKeyAlgorithm, new Uint8Array(raw))!;
          expect(ecdsaSigValue(raw).equals(Buffer.from(expected))).to.equal(true);
        }
      }
    });
  });

  describe('lint before signing', () => {
    const good = () => birthProfile({ issuer: ca.hierarchy.factory, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, { serial: 'SN-L', manufacturer: 'A', model: 'm', hwType: '1.2.3' });
    const without = (profile: Profile, oid: string): Profile => ({ ...profile, extensions: profile.extensions.filter((e) => e.type !== oid) });
    const replaced = (profile: Profile, oid: string, value: Buffer, critical = false): Profile => ({
      ...profile, extensions: profile.extensions.map((e) => (e.type === oid ? { type: oid, critical, value } : e)),
    });

    it('refuses every profile that breaks the profile rules, before the HSM is asked to sign', async () => {
      const other = ca.hierarchy.operational;
      const cases: Array<[string, () => void]> = [
        ['birth by the operational CA', () => lintProfile(other, good())],
        ['notAfter before notBefore', () => lintProfile(ca.hierarchy.factory, { ...good(), notAfter: new Date(0) })],
        ['beyond the issuer', () => lintProfile(other, { ...operationalProfile({ issuer: other, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, { serial: 's', trustDomain: 'd', ttlMs: HOUR_MS, serverAuth: false, predecessorSha256: Buffer.alloc(32) }), notAfter: new Date('9999-12-31T23:59:59Z') })],
        ['no basicConstraints', () => lintProfile(ca.hierarchy.factory, without(good(), OID.basicConstraints))],
        ['CA:TRUE', () => lintProfile(ca.hierarchy.factory, replaced(good(), OID.basicConstraints, Buffer.from('30030101ff', 'hex'), true))],
        ['keyUsage not critical', () => lintProfile(ca.hierarchy.factory, replaced(good(), OID.keyUsage, END_ENTITY.keyUsage.value, false))],
        ['SKI of another key', () => lintProfile(ca.hierarchy.factory, { ...good(), spki: deviceSpki() })],
        ['AKI of another CA', () => lintProfile(ca.hierarchy.factory, replaced(good(), OID.authorityKeyIdentifier, other.authorityKeyIdentifier.value))],
        ['AIA of another CA', () => lintProfile(ca.hierarchy.factory, replaced(good(), OID.authorityInfoAccess, other.publicationExtensions(BASE).authorityInfoAccess.value))],
        ['CDP of another CA', () => lintProfile(ca.hierarchy.factory, replaced(good(), OID.crlDistributionPoints, other.publicationExtensions(BASE).crlDistributionPoints.value))],
        ['no AIA', () => lintProfile(ca.hierarchy.factory, without(good(), OID.authorityInfoAccess))],
        ['an extension twice', () => lintProfile(ca.hierarchy.factory, { ...good(), extensions: [...good().extensions, END_ENTITY.keyUsage] })],
        ['birth without an EKU', () => lintProfile(ca.hierarchy.factory, without(good(), OID.extKeyUsage))],
        ['birth for TLS servers', () => lintProfile(ca.hierarchy.factory, replaced(good(), OID.extKeyUsage, END_ENTITY.clientAndServerAuth.value))],
        ['no SAN', () => lintProfile(ca.hierarchy.factory, without(good(), OID.subjectAltName))],
        ['birth with an assurance policy', () => lintProfile(ca.hierarchy.factory, { ...good(), extensions: [...good().extensions, END_ENTITY.attestedPolicy] })],
        ['operational without an assurance policy', () => lintProfile(other, without(operationalProfile({ issuer: other, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, { serial: 's', trustDomain: 'd', ttlMs: HOUR_MS, serverAuth: false }), OID.certificatePolicies))],
        ['operational with both assurance policies', () => lintProfile(other, replaced(operationalProfile({ issuer: other, spki: deviceSpki(), baseUrl: BASE, now: new Date() }, { serial: 's', trustDomain: 'd', ttlMs: HOUR_MS, serverAuth: false }), OID.certificatePolicies, Buffer.from(AsnConvert.serialize(new asn1X509.CertificatePolicies([new asn1X509.PolicyInformation({ policyIdentifier: ASSURANCE_POLICY.attested }), new asn1X509.PolicyInformation({ policyIdentifier: ASSURANCE_POLICY.mediated })])))))],
      ];
      for (const [name, lint] of cases) expect(lint, name).to.throw(ProfileLintError);
      expect(() => lintProfile(ca.hierarchy.factory, good())).not.to.throw();

      let signed = 0;
      const sign = ca.provider.sign.bind(ca.provider);
      ca.provider.sign = async (...args) => {
        signed += 1;
        return sign(...args);
      };
      try {
        const err = await issue(without(good(), OID.keyUsage)).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(ProfileLintError);
        expect(signed).to.equal(0);
      } finally {
        ca.provider.sign = sign;
      }
    });

    it('records what it signs: 16-byte positive serial, issuer row, hashes', async () => {
      const before = await ca.store.certificates.count();
      const issued = await issue(good());
      expect(await ca.store.certificates.count()).to.equal(before + 1);
      const stored = (await ca.store.certificates.find(issued.record.serial))!;
      expect(stored.der.equals(issued.der)).to.equal(true);
      expect(stored.issuerId).to.equal(ca.hierarchy.factory.id);
      expect(stored.sha256).to.equal(createHash('sha256').update(stored.der).digest('hex'));
      expect(stored.serial).to.equal(parsed(stored.der).serialNumber);
      expect(stored.notAfter.getTime()).to.equal(parsed(stored.der).notAfter.getTime());
    });
  });
});

describe('ca: extension OID check', () => {
  it('accepts an enterprise-arc OID', () => {
    expect(extensionOidProblem('1.3.6.1.4.1.99999.1')).to.equal(undefined);
    expect(extensionOidProblem(`1.3.6.1.4.1.${2 ** 28 - 1}.1`)).to.equal(undefined);
  });

  it('refuses an arc of 2^28 or more, saying why', () => {
    expect(extensionOidProblem(`1.3.6.1.4.1.${2 ** 28}.1`)).to.contain('2^28');
    expect(extensionOidProblem('2.25.329800735698586629295641978511506172918')).to.contain("Go's crypto/x509");
  });

  it('refuses what is not an OID, and OIDs too long to be real', () => {
    expect(extensionOidProblem('1.3.6.01')).to.contain('not a dotted OID');
    expect(extensionOidProblem('hello')).to.contain('not a dotted OID');
    expect(extensionOidProblem('1.40.1')).to.contain('below 40');
    expect(extensionOidProblem(`1.3${'.1'.repeat(40)}`)).to.contain('arcs');
    expect(extensionOidProblem(`1.3.${'1'.repeat(200)}`)).to.contain('longer');
  });
});
