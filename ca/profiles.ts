import * as x509 from '@peculiar/x509';
import type { CertificateKind } from '../store/types.ts';
import { ASSURANCE_POLICY, OID, generalNames, hardwareModuleName, permanentIdentifier, predecessorValue, uriName } from './asn1.ts';
import { element, name, octetString, wholeSeconds, type NameAttribute } from './der.ts';
import { fromPeculiar, type Issuer, type ProfileExtension } from './issuer.ts';
import { keyIdentifier } from './signer.ts';
import { crlUrl } from './urls.ts';

/** RFC 5280 4.1.2.5: no well-defined expiry. */
export const NO_EXPIRY = new Date('9999-12-31T23:59:59Z');
/** End-entity notBefore is backdated for clock skew (docs/reference/certificates.md). */
export const BACKDATE_MS = 5 * 60 * 1000;
export const HOUR_MS = 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;

/** What the profile decides about a certificate; the issuance pipeline adds serial and signature. */
export interface Profile {
  kind: CertificateKind;
  /** DER Name. */
  subject: Buffer;
  /** The subject for people and the certificates table, e.g. "serialNumber=SN-1, O=Acme, CN=thermo-2". */
  subjectText: string;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER, in its canonical encoding. */
  spki: Buffer;
  extensions: ProfileExtension[];
}

/** What every end-entity profile starts from. */
export interface ProfileContext {
  issuer: Issuer;
  /** SubjectPublicKeyInfo DER of the key to certify. */
  spki: Buffer;
  baseUrl: string;
  now: Date;
}

const CA_KEY_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

/** The end-entity extensions that never change (docs/reference/certificates.md), built once with @peculiar/x509. */
export const END_ENTITY = {
  basicConstraints: fromPeculiar(new x509.BasicConstraintsExtension(false, undefined, true)),
  keyUsage: fromPeculiar(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)),
  clientAuth: fromPeculiar(new x509.ExtendedKeyUsageExtension([OID.clientAuth], false)),
  clientAndServerAuth: fromPeculiar(new x509.ExtendedKeyUsageExtension([OID.clientAuth, OID.serverAuth], false)),
  serverAuth: fromPeculiar(new x509.ExtendedKeyUsageExtension([OID.serverAuth], false)),
  codeSigning: fromPeculiar(new x509.ExtendedKeyUsageExtension([OID.codeSigning], false)),
  /** certificatePolicies, non-critical, one policy OID without qualifiers: the two template variants of operational certificates. */
  attestedPolicy: fromPeculiar(new x509.CertificatePolicyExtension([ASSURANCE_POLICY.attested], false)),
  mediatedPolicy: fromPeculiar(new x509.CertificatePolicyExtension([ASSURANCE_POLICY.mediated], false)),
} as const;

/** Root: self-signed, CA, keyCertSign + cRLSign, valid until 9999 (docs/reference/certificates.md). */
export async function rootExtensions(publicKey: x509.PublicKey, crypto: Crypto): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
  ];
}

/** Intermediates: CA with pathLen 0, keyCertSign + cRLSign, SKI/AKI, the root's CRL (docs/reference/certificates.md). */
export async function intermediateExtensions(root: Issuer, publicKey: x509.PublicKey, baseUrl: string, crypto: Crypto): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
    new x509.AuthorityKeyIdentifierExtension(root.record.ski.toString('hex'), false),
    new x509.CRLDistributionPointsExtension([crlUrl(baseUrl, root.slug)]),
  ];
}

/** The audit key's certificate, by the root: it signs checkpoints only, so auditors can anchor them to the root offline. */
export async function auditKeyExtensions(root: Issuer, publicKey: x509.PublicKey, baseUrl: string, crypto: Crypto): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
    new x509.AuthorityKeyIdentifierExtension(root.record.ski.toString('hex'), false),
    new x509.CRLDistributionPointsExtension([crlUrl(baseUrl, root.slug)]),
  ];
}

/** The subjectPublicKey bytes of a SubjectPublicKeyInfo (the BIT STRING without its unused-bits byte). */
export function subjectPublicKeyBits(spki: Uint8Array): Buffer {
  const outer = element(spki);
  const algorithm = element(outer.contents);
  return element(outer.contents, algorithm.end).contents.subarray(1);
}

export function subjectKeyIdentifier(spki: Uint8Array): ProfileExtension {
  return { type: OID.subjectKeyIdentifier, critical: false, value: octetString(keyIdentifier(subjectPublicKeyBits(spki))) };
}

/** docs/reference/certificates.md, all end-entity certificates: CA:FALSE, digitalSignature, SKI, AKI, AIA, CDP. */
function endEntityExtensions(ctx: ProfileContext): ProfileExtension[] {
  const published = ctx.issuer.publicationExtensions(ctx.baseUrl);
  return [
    END_ENTITY.basicConstraints,
    END_ENTITY.keyUsage,
    subjectKeyIdentifier(ctx.spki),
    ctx.issuer.authorityKeyIdentifier,
    published.authorityInfoAccess,
    published.crlDistributionPoints,
  ];
}

/** Never beyond the issuer's notAfter (docs/reference/certificates.md); whole seconds, as the certificate carries them. */
function validity(ctx: ProfileContext, lifetimeMs: number | 'forever'): { notBefore: Date; notAfter: Date } {
  const notBefore = wholeSeconds(new Date(ctx.now.getTime() - BACKDATE_MS));
  const wanted = lifetimeMs === 'forever' ? NO_EXPIRY : wholeSeconds(new Date(ctx.now.getTime() + lifetimeMs));
  return { notBefore, notAfter: wanted > ctx.issuer.notAfter ? ctx.issuer.notAfter : wanted };
}

const SHORT_NAMES: Record<string, string> = { [OID.serialNumber]: 'serialNumber', [OID.organization]: 'O', [OID.organizationalUnit]: 'OU', [OID.commonName]: 'CN' };

function subject(attributes: NameAttribute[]): Pick<Profile, 'subject' | 'subjectText'> {
  return { subject: name(attributes), subjectText: attributes.map(([type, , value]) => `${SHORT_NAMES[type]}=${value}`).join(', ') };
}

export interface BirthSubject {
  serial: string;
  manufacturer: string;
  model: string;
  hwType: string;
  /** Lifetime; the default is no expiry (99991231235959Z). */
  lifetimeMs?: number;
}

/** Birth certificate (IEEE 802.1AR IDevID), docs/reference/certificates.md. */
export function birthProfile(ctx: ProfileContext, device: BirthSubject): Profile {
  return {
    kind: 'birth',
    ...subject([
      [OID.serialNumber, 'printable', device.serial],
      [OID.organization, 'utf8', device.manufacturer],
      [OID.commonName, 'utf8', device.model],
    ]),
    ...validity(ctx, device.lifetimeMs ?? 'forever'),
    spki: ctx.spki,
    extensions: [
      ...endEntityExtensions(ctx),
      { type: OID.subjectAltName, critical: false, value: generalNames([hardwareModuleName(device.hwType, Buffer.from(device.serial, 'utf8'))]) },
      // What a birth certificate is for: the device authenticating itself (TLS client for EST and BRSKI-style onboarding,
      // attestation signatures); never a TLS server. Without an EKU a relying party would take it for any purpose.
      END_ENTITY.clientAuth,
    ],
  };
}

/**
 * How an operational certificate names its device, as the order named it
 * (draft-ietf-acme-device-attest-09 sections 3.2 and 4.2): a
 * PermanentIdentifier of the serial (with the assigner OID when the order
 * gave one), or a HardwareModuleName of the birth certificate's hwType and
 * the serial's octets.
 */
export type DeviceName =
  | { type: 'permanent-identifier'; assigner?: string }
  | { type: 'hardware-module'; hwType: string };

/** The otherName GeneralName of a device, octet for octet what its order said. */
export function deviceNameDer(serial: string, name?: DeviceName): Buffer {
  if (name?.type === 'hardware-module') return hardwareModuleName(name.hwType, Buffer.from(serial, 'utf8'));
  return permanentIdentifier(serial, name?.assigner);
}

export interface OperationalSubject {
  serial: string;
  /** Absent: a PermanentIdentifier of the serial without assigner. */
  name?: DeviceName;
  trustDomain: string;
  ttlMs: number;
  serverAuth: boolean;
  /** Absent for a first certificate with no certificate before it (a device claimed by serial): the extension is left out. */
  predecessorSha256?: Buffer;
  /** DEVID_PREDECESSOR_OID: when set, the predecessor is carried in the certificate too. */
  predecessorOid?: string;
  /** The certificate policy it carries: `attested` (the default) or `mediated` by a gateway. */
  assurance?: 'attested' | 'mediated';
}

/** Operational certificate (LDevID), docs/reference/certificates.md. */
export function operationalProfile(ctx: ProfileContext, device: OperationalSubject): Profile {
  const extensions = [
    ...endEntityExtensions(ctx),
    {
      type: OID.subjectAltName,
      critical: false,
      value: generalNames([deviceNameDer(device.serial, device.name), uriName(`spiffe://${device.trustDomain}/device/${device.serial}`)]),
    },
    device.serverAuth ? END_ENTITY.clientAndServerAuth : END_ENTITY.clientAuth,
    device.assurance === 'mediated' ? END_ENTITY.mediatedPolicy : END_ENTITY.attestedPolicy,
  ];
  if (device.predecessorOid && device.predecessorSha256) extensions.push({ type: device.predecessorOid, critical: false, value: predecessorValue(device.predecessorSha256) });
  return {
    kind: 'operational',
    ...subject([[OID.commonName, 'utf8', device.serial]]),
    ...validity(ctx, device.ttlMs),
    spki: ctx.spki,
    extensions,
  };
}

export interface SupportSubject {
  serial: string;
  vendor: string;
  trustDomain: string;
  /** The approved window: the certificate is valid exactly inside it. */
  notBefore: Date;
  notAfter: Date;
}

/**
 * Support certificate (docs/reference/certificates.md): time-bound vendor access to one
 * device. Its CN is never the device's serial (a broker that maps CN to a
 * user must not take the vendor for the device).
 */
export function supportProfile(ctx: ProfileContext, support: SupportSubject): Profile {
  return {
    kind: 'support',
    ...subject([[OID.commonName, 'utf8', `support ${support.vendor} ${support.serial}`]]),
    notBefore: wholeSeconds(support.notBefore),
    notAfter: wholeSeconds(support.notAfter > ctx.issuer.notAfter ? ctx.issuer.notAfter : support.notAfter),
    spki: ctx.spki,
    extensions: [
      ...endEntityExtensions(ctx),
      { type: OID.subjectAltName, critical: false, value: generalNames([uriName(`spiffe://${support.trustDomain}/support/${support.vendor}/${support.serial}`)]) },
      END_ENTITY.clientAuth,
    ],
  };
}

/** The CA's own HTTPS certificate: serverAuth for the public host, 90 days (docs/reference/certificates.md). */
export function serverProfile(ctx: ProfileContext, host: string): Profile {
  const ip = /^[0-9.]+$/.test(host) || host.includes(':');
  return {
    kind: 'server',
    ...subject([[OID.commonName, 'utf8', host]]),
    ...validity(ctx, 90 * DAY_MS),
    spki: ctx.spki,
    extensions: [
      ...endEntityExtensions(ctx),
      fromPeculiar(new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }], false)),
      END_ENTITY.serverAuth,
    ],
  };
}

export interface FirmwareSignerSubject {
  /** The model (or manufacturer line) whose releases the signer signs. */
  signs: string;
  organization: string;
}

/**
 * Firmware signer (docs/reference/certificates.md): the key that signs a
 * model's SUIT manifests, certified by the firmware intermediate for
 * id-kp-codeSigning only. Valid until 9999 like its issuer: a device verifies
 * an image years after it was signed; a compromised signer is revoked.
 */
export function firmwareSignerProfile(ctx: ProfileContext, signer: FirmwareSignerSubject): Profile {
  return {
    kind: 'firmware-signer',
    ...subject([[OID.organization, 'utf8', signer.organization], [OID.organizationalUnit, 'utf8', 'Firmware Signer'], [OID.commonName, 'utf8', signer.signs]]),
    ...validity(ctx, 'forever'),
    spki: ctx.spki,
    extensions: [...endEntityExtensions(ctx), END_ENTITY.codeSigning],
  };
}
