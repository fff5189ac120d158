import { generateKeyPairSync, sign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, BasicConstraints, Certificate, ExtendedKeyUsage, Extension, Extensions, GeneralName, Name, OtherName,
  RelativeDistinguishedName, SubjectAlternativeName, SubjectPublicKeyInfo, TBSCertificate, Validity, Version,
} from '@peculiar/asn1-x509';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OIDS = {
  commonName: '2.5.4.3', organization: '2.5.4.10', serialNumber: '2.5.4.5', subjectAltName: '2.5.29.17', basicConstraints: '2.5.29.19', keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37', hardwareModuleName: '1.3.6.1.5.5.7.8.4', permanentIdentifier: '1.3.6.1.5.5.7.8.3',
  tcgAkCertificate: '2.23.133.8.3', tpmManufacturer: '2.23.133.2.1', tpmModel: '2.23.133.2.2', tpmVersion: '2.23.133.2.3',
};

/** What an AK certificate carries; each field can be left out or bent to break one rule of WebAuthn 8.3.1. */
export interface AkOptions {
  serial: string;
  /** 'hwmn' (with hwType), 'permanent' or 'none'. */
  deviceName?: 'hwmn' | 'permanent' | 'none';
  hwType?: string;
  version?: 1 | 3;
  /** A subject (WebAuthn wants none). */
  subject?: string;
  sanCritical?: boolean;
  /** TCG attributes of the directoryName left out. */
  without?: Array<'manufacturer' | 'model' | 'version'>;
  /** The extended key usage's purposes; null: no extension. */
  purposes?: string[] | null;
  /** basicConstraints cA; null: no extension. */
  ca?: boolean | null;
}

const name = (attributes: Array<[string, string]>) => new Name(attributes.map(([type, value]) =>
  new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) })])));
const extension = (extnID: string, critical: boolean, value: unknown) => new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

/**
 * A TPM maker's PKI made in the test (a root and an intermediate on
 * software keys, written with @peculiar/asn1-x509, not with the CA's code):
 * it certifies attestation keys the way WebAuthn 8.3.1 asks, or with one
 * rule broken.
 */
export class TpmMaker {
  readonly root: { der: Buffer; key: KeyObject; name: Name };
  readonly intermediate: { der: Buffer; key: KeyObject; name: Name };
  private serial = 1;

  constructor(readonly label: string) {
    const rootKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rootName = name([[OIDS.organization, label], [OIDS.commonName, `${label} TPM Root`]]);
    const caExtensions = [extension(OIDS.basicConstraints, true, new BasicConstraints({ cA: true })), new Extension({ extnID: OIDS.keyUsage, critical: true, extnValue: new OctetString(Buffer.from('03020106', 'hex')) })];
    this.root = { der: this.issue(rootName, rootName, rootKey.publicKey, rootKey.privateKey, caExtensions), key: rootKey.privateKey, name: rootName };
    const intermediateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const intermediateName = name([[OIDS.organization, label], [OIDS.commonName, `${label} AK CA`]]);
    this.intermediate = { der: this.issue(rootName, intermediateName, intermediateKey.publicKey, rootKey.privateKey, caExtensions), key: intermediateKey.privateKey, name: intermediateName };
  }

  pem(der: Buffer): string {
    return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  }

  /** The certificate of an attestation key (its SPKI DER), issued by the intermediate. */
  akCertificate(spki: Buffer, options: AkOptions): Buffer {
    const without = new Set(options.without ?? []);
    const directory = name([
      ...(without.has('manufacturer') ? [] : [[OIDS.tpmManufacturer, 'id:53575450'] as [string, string]]),
      ...(without.has('model') ? [] : [[OIDS.tpmModel, 'SWTPM'] as [string, string]]),
      ...(without.has('version') ? [] : [[OIDS.tpmVersion, 'id:20191023'] as [string, string]]),
    ]);
    const names = [new GeneralName({ directoryName: directory })];
    const kind = options.deviceName ?? 'hwmn';
    if (kind === 'hwmn') {
      const value = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: options.hwType! }), new asn1js.OctetString({ valueHex: Buffer.from(options.serial, 'utf8') })] });
      names.push(new GeneralName({ otherName: new OtherName({ typeId: OIDS.hardwareModuleName, value: value.toBER() }) }));
    } else if (kind === 'permanent') {
      const value = new asn1js.Sequence({ value: [new asn1js.Utf8String({ value: options.serial })] });
      names.push(new GeneralName({ otherName: new OtherName({ typeId: OIDS.permanentIdentifier, value: value.toBER() }) }));
    }
    const extensions = [extension(OIDS.subjectAltName, options.sanCritical ?? true, new SubjectAlternativeName(names))];
    if (options.purposes !== null) extensions.push(extension(OIDS.extKeyUsage, false, new ExtendedKeyUsage(options.purposes ?? [OIDS.tcgAkCertificate])));
    if (options.ca !== null) extensions.push(extension(OIDS.basicConstraints, true, new BasicConstraints({ cA: options.ca ?? false })));
    extensions.push(new Extension({ extnID: OIDS.keyUsage, critical: true, extnValue: new OctetString(Buffer.from('03020780', 'hex')) }));
    const subject = options.subject ? name([[OIDS.commonName, options.subject]]) : new Name([]);
    return this.issue(this.intermediate.name, subject, spki, this.intermediate.key, options.version === 1 ? undefined : extensions);
  }

  private issue(issuer: Name, subject: Name, publicKey: KeyObject | Buffer, signer: KeyObject, extensions: Extension[] | undefined): Buffer {
    const spki = Buffer.isBuffer(publicKey) ? publicKey : publicKey.export({ format: 'der', type: 'spki' });
    const serial = Buffer.from([0x10, this.serial++]);
    const tbs = new TBSCertificate({
      version: extensions ? Version.v3 : Version.v1, serialNumber: new Uint8Array(serial).buffer, signature: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
      issuer, subject, validity: new Validity({ notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date('9999-12-31T23:59:59Z') }),
      subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo), ...(extensions ? { extensions: new Extensions(extensions) } : {}),
    });
    const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbs)), signer);
    const certificate = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signatureValue: new Uint8Array(signature).buffer });
    return Buffer.from(AsnConvert.serialize(certificate));
  }
}

x509.cryptoProvider.set(webcrypto as Crypto);
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/**
 * A TPM maker's CA, as the TCG EK credential profile has it: a root, and
 * the EK certificate it issues for one TPM's RSA endorsement key
 * (keyEncipherment: the EK decrypts, it never signs); and the root of
 * another maker, which certifies nothing of this TPM.
 */
export async function testTpmMaker(ekSpki: Buffer): Promise<{ rootPem: string; ekDer: Buffer; otherRootPem: string }> {
  const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 365 * 86400_000) };
  const root = async (name: string) => {
    const keys = (await webcrypto.subtle.generateKey(ECDSA, false, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name, keys, signingAlgorithm: ECDSA, ...validity,
      extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
    });
    return { keys, cert };
  };
  const maker = await root('CN=Test TPM Maker EK Root');
  const other = await root('CN=Another TPM Maker');
  const ekKey = await webcrypto.subtle.importKey('spki', ekSpki, { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt']);
  const ek = await x509.X509CertificateGenerator.create({
    serialNumber: '0a1b2d', issuer: maker.cert.subject, subject: 'CN=TPM EK', ...validity, publicKey: ekKey, signingKey: maker.keys.privateKey, signingAlgorithm: ECDSA,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment, true), await x509.AuthorityKeyIdentifierExtension.create(maker.keys.publicKey)],
  });
  return { rootPem: maker.cert.toString('pem'), ekDer: Buffer.from(ek.rawData), otherRootPem: other.cert.toString('pem') };
}
