import * as x509 from '@peculiar/x509';
import {
  OID, buildName, dnsOrIpName, hardwareModuleName, permanentIdentifier, predecessorExtension, subjectAltName, uriName,
} from './asn1.ts';
import type { Issuer } from './issuer.ts';
import { caCertificateUrl, crlUrl, ocspUrl } from './urls.ts';
import type { CertificateKind } from '../store/types.ts';

/** RFC 5280 4.1.2.5: no well-defined expiry. */
export const NO_EXPIRY = new Date('9999-12-31T23:59:59Z');
/** End-entity notBefore is backdated for clock skew (SPEC section 2). */
export const BACKDATE_MS = 5 * 60 * 1000;
export const HOUR_MS = 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;

/** What the profile decides about a certificate; the issuance pipeline adds serial and signature. */
export interface Profile {
  kind: CertificateKind;
  subject: x509.Name;
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

/** The parts every end-entity profile shares. */
export interface EndEntityContext {
  issuer: Issuer;
  publicKey: x509.PublicKey;
  baseUrl: string;
  now: Date;
  crypto: Crypto;
}

const CA_KEY_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

/** Root: self-signed, CA, keyCertSign + cRLSign, valid until 9999 (SPEC section 1). */
export async function rootExtensions(publicKey: x509.PublicKey, crypto: Crypto): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
  ];
}

/** Intermediates: CA with pathLen 0, keyCertSign + cRLSign, SKI/AKI, the root's CRL (SPEC section 1). */
export async function intermediateExtensions(
  root: Issuer,
  publicKey: x509.PublicKey,
  baseUrl: string,
  crypto: Crypto,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
    await root.authorityKeyIdentifier(),
    new x509.CRLDistributionPointsExtension([crlUrl(baseUrl, 'root')]),
  ];
}

/** SPEC section 2, all end-entity certificates: SKI, AKI, CA:FALSE, digitalSignature, AIA, CDP. */
async function endEntityExtensions(ctx: EndEntityContext): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(ctx.publicKey, false, ctx.crypto),
    await ctx.issuer.authorityKeyIdentifier(),
    new x509.AuthorityInfoAccessExtension({
      ocsp: [ocspUrl(ctx.baseUrl)],
      caIssuers: [caCertificateUrl(ctx.baseUrl, ctx.issuer.name)],
    }),
    new x509.CRLDistributionPointsExtension([crlUrl(ctx.baseUrl, ctx.issuer.name)]),
  ];
}

/** Never beyond the issuer's notAfter (SPEC section 2). */
function validity(ctx: EndEntityContext, lifetimeMs: number | 'forever'): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(ctx.now.getTime() - BACKDATE_MS);
  const wanted = lifetimeMs === 'forever' ? NO_EXPIRY : new Date(ctx.now.getTime() + lifetimeMs);
  const notAfter = wanted > ctx.issuer.notAfter ? ctx.issuer.notAfter : wanted;
  return { notBefore, notAfter };
}

export interface BirthSubject {
  serial: string;
  manufacturer: string;
  model: string;
  hwType: string;
  /** Lifetime; the default is no expiry (99991231235959Z). */
  lifetimeMs?: number;
}

/** Birth certificate (IEEE 802.1AR IDevID), SPEC section 2. */
export async function birthProfile(ctx: EndEntityContext, device: BirthSubject): Promise<Profile> {
  return {
    kind: 'birth',
    subject: buildName([
      [OID.serialNumber, 'printable', device.serial],
      [OID.organization, 'utf8', device.manufacturer],
      [OID.commonName, 'utf8', device.model],
    ]),
    ...validity(ctx, device.lifetimeMs ?? 'forever'),
    extensions: [
      ...(await endEntityExtensions(ctx)),
      subjectAltName([hardwareModuleName(device.hwType, Buffer.from(device.serial, 'utf8'))]),
    ],
  };
}

export interface OperationalSubject {
  serial: string;
  trustDomain: string;
  ttlMs: number;
  serverAuth: boolean;
  predecessorSha256: Buffer;
  /** DEVID_PREDECESSOR_OID: when set, the predecessor is carried in the certificate too. */
  predecessorOid?: string;
}

/** Operational certificate (LDevID), SPEC section 2. */
export async function operationalProfile(ctx: EndEntityContext, device: OperationalSubject): Promise<Profile> {
  const usages = device.serverAuth ? [OID.clientAuth, OID.serverAuth] : [OID.clientAuth];
  const extensions = [
    ...(await endEntityExtensions(ctx)),
    subjectAltName([
      permanentIdentifier(device.serial),
      uriName(`spiffe://${device.trustDomain}/device/${device.serial}`),
    ]),
    new x509.ExtendedKeyUsageExtension(usages, false),
  ];
  if (device.predecessorOid) extensions.push(predecessorExtension(device.predecessorOid, device.predecessorSha256));
  return {
    kind: 'operational',
    subject: buildName([[OID.commonName, 'utf8', device.serial]]),
    ...validity(ctx, device.ttlMs),
    extensions,
  };
}

/** The CA's own HTTPS certificate: serverAuth for the public host, 90 days (SPEC section 2). */
export async function serverProfile(ctx: EndEntityContext, host: string): Promise<Profile> {
  return {
    kind: 'server',
    subject: buildName([[OID.commonName, 'utf8', host]]),
    ...validity(ctx, 90 * DAY_MS),
    extensions: [
      ...(await endEntityExtensions(ctx)),
      subjectAltName([dnsOrIpName(host)]),
      new x509.ExtendedKeyUsageExtension([OID.serverAuth], false),
    ],
  };
}
