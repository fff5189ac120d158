import type { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, KeyUsage, KeyUsageFlags, SubjectAlternativeName, Certificate as AsnCertificate } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { OID } from '../../ca/asn1.ts';
import { sha256Hex } from '../../ca/digest.ts';
import { checkCertificate, isKeyRefusal } from '../certificate-key.ts';
import type { CheckedKey } from '../public-key.ts';
import { AttestationError } from './attestation-object.ts';

/** x5c of a birth certificate: the certificate and at most four intermediates above it. */
export const MAX_BIRTH_CHAIN = 5;

/**
 * Extensions a path may mark critical: the ones this validator processes
 * (RFC 5280 4.2: an unknown critical one fails the path). extKeyUsage asks
 * nothing of an attestation; name constraints and policies are not processed.
 */
const UNDERSTOOD_CRITICAL = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.subjectAltName, OID.extKeyUsage]);

/** What a birth certificate says about its device. */
export interface BirthIdentity {
  /** hwSerialNum of the HardwareModuleName, or the subject serialNumber when there is none (Matter DACs). */
  serial: string;
  /** hwType of the HardwareModuleName; null without one. */
  hwType: string | null;
  /** The certificate serial number, lowercase hex without leading zeros (as CRL entries are compared). */
  serialHex: string;
  sha256: string;
  keySpki: Buffer;
}

/** A birth certificate that chained to a registered anchor. */
export interface ValidatedBirth {
  identity: BirthIdentity;
  der: Buffer;
  /** SHA-256 of the certificate that signed it: the CRL issuer its revocation is read from. */
  issuerSha256: string;
  /** SHA-256 of every CA certificate on the path, issuer first, root last. */
  path: string[];
  /** Those certificates' DER, in the same order (the export carries them, so the birth checks offline). */
  pathDer: Buffer[];
  notBefore: Date;
  notAfter: Date;
}

interface Parsed {
  der: Buffer;
  cert: X509Certificate;
  /** The subject public key, checked before node:crypto touched it: links verify with it. */
  key: CheckedKey;
  asn: AsnCertificate;
  sha256: string;
}

/**
 * Manufacturers' CA certificates parsed once, and the links between them
 * verified once: they are the same for every device of a manufacturer, and
 * parsing and verifying them again cost 9 ms of each attestation (node's
 * X509Certificate parse dominates). Keyed by SHA-256 of the DER, bounded.
 */
const CACHE_LIMIT = 512;
const parsedCas = new Map<string, Parsed>();
const verifiedLinks = new Set<string>();

function remember<T>(cache: Map<string, T> | Set<string>, key: string, value?: T): void {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  if (cache instanceof Map) cache.set(key, value!);
  else cache.add(key);
}

function parseCa(der: Buffer, what: string): Parsed {
  const sha256 = sha256Hex(der);
  const cached = parsedCas.get(sha256);
  if (cached) return cached;
  const parsed = parse(der, what);
  remember(parsedCas, sha256, parsed);
  return parsed;
}

/** Whether `issuer` issued `child` (names, key identifiers, keyCertSign, signature); links between CA certificates are remembered. */
function issuedBy(child: Parsed, issuer: Parsed): boolean {
  const key = `${child.sha256}>${issuer.sha256}`;
  if (verifiedLinks.has(key)) return true;
  const ok = child.cert.checkIssued(issuer.cert) && child.cert.verify(issuer.key.key);
  if (ok && parsedCas.get(child.sha256) === child) remember(verifiedLinks, key);
  return ok;
}

function parse(der: Buffer, what: string): Parsed {
  try {
    const { cert, key } = checkCertificate(der);
    return { der, cert, key, asn: AsnConvert.parse(der, AsnCertificate), sha256: sha256Hex(der) };
  } catch (err) {
    if (isKeyRefusal(err)) throw new AttestationError('check 1 (chain)', `${what} has a public key that is refused: ${err.detail}`);
    throw new AttestationError('check 1 (chain)', `${what} is not an X.509 certificate`);
  }
}

function extension(certificate: Parsed, oid: string) {
  return certificate.asn.tbsCertificate.extensions?.find((e) => e.extnID === oid);
}

/** An extension's value parsed, or an AttestationError naming it: a malformed extension is a bad certificate, not a server error. */
function parseExtension<T>(certificate: Parsed, oid: string, parse: (value: ArrayBuffer) => T, check = 'check 1 (chain)'): T | undefined {
  const ext = extension(certificate, oid);
  if (!ext) return undefined;
  try {
    return parse(ext.extnValue.buffer);
  } catch {
    throw new AttestationError(check, `a certificate of the chain has a malformed extension ${oid}`);
  }
}

function basicConstraints(certificate: Parsed): BasicConstraints | undefined {
  return parseExtension(certificate, OID.basicConstraints, (value) => AsnConvert.parse(value, BasicConstraints));
}

function keyUsageAllows(certificate: Parsed, flag: KeyUsageFlags): boolean {
  const usage = parseExtension(certificate, OID.keyUsage, (value) => AsnConvert.parse(value, KeyUsage).toNumber());
  // RFC 5280 4.2.1.3: without the extension every use is allowed.
  return usage === undefined || (usage & flag) !== 0;
}

function checkCommon(certificate: Parsed, what: string, now: Date): void {
  const validity = certificate.asn.tbsCertificate.validity;
  if (validity.notBefore.getTime().getTime() > now.getTime()) throw new AttestationError('check 1 (chain)', `${what} is not valid before ${validity.notBefore.getTime().toISOString()}`);
  // 99991231235959Z (IEEE 802.1AR: no well-defined expiry) is simply far in the future.
  if (validity.notAfter.getTime().getTime() < now.getTime()) throw new AttestationError('check 1 (chain)', `${what} expired at ${validity.notAfter.getTime().toISOString()}`);
  const unknown = certificate.asn.tbsCertificate.extensions?.find((e) => e.critical && !UNDERSTOOD_CRITICAL.has(e.extnID));
  if (unknown) throw new AttestationError('check 1 (chain)', `${what} has the critical extension ${unknown.extnID}, which is not processed here`);
}

/** The device serial and hwType: the HardwareModuleName, else the subject serialNumber. */
export function birthIdentity(der: Buffer): BirthIdentity {
  return identityOf(parse(der, 'x5c[0]'));
}

function identityOf(certificate: Parsed): BirthIdentity {
  let serial: string | undefined;
  let hwType: string | null = null;
  const names = parseExtension(certificate, OID.subjectAltName, (value) => AsnConvert.parse(value, SubjectAlternativeName), 'check 2 (serial)');
  if (names) {
    for (const name of names) {
      if (name.otherName?.typeId !== OID.hardwareModuleName) continue;
      const hwn = hardwareModuleNameOf(name.otherName.value);
      if (!hwn) throw new AttestationError('check 2 (serial)', 'the HardwareModuleName is not SEQUENCE { hwType OID, hwSerialNum OCTET STRING }');
      ({ serial, hwType } = hwn);
    }
  }
  if (serial === undefined) {
    const subjectSerials = certificate.asn.tbsCertificate.subject.flatMap((rdn) => [...rdn]).filter((a) => a.type === OID.serialNumber);
    if (subjectSerials.length === 1) serial = String(subjectSerials[0]!.value.toString());
  }
  // A TPM attestation key's certificate has an empty subject (WebAuthn 8.3.1): its SAN may name the device in a PermanentIdentifier instead.
  if (serial === undefined && names) {
    const identifiers = names.filter((n) => n.otherName?.typeId === OID.permanentIdentifier).map((n) => permanentIdentifierOf(n.otherName!.value));
    if (identifiers.length === 1 && identifiers[0] !== undefined) serial = identifiers[0];
  }
  if (serial === undefined) throw new AttestationError('check 2 (serial)', 'x5c[0] names no device serial: it has neither a HardwareModuleName, one subject serialNumber nor one PermanentIdentifier');
  return { serial, hwType, serialHex: serialHexOf(certificate.asn), sha256: certificate.sha256, keySpki: Buffer.from(AsnConvert.serialize(certificate.asn.tbsCertificate.subjectPublicKeyInfo)) };
}

/** Whether a certificate names a device (a HardwareModuleName or a subject serialNumber): a birth certificate, whose key signs attestations only. */
export function namesADevice(der: Buffer): boolean {
  try {
    birthIdentity(der);
    return true;
  } catch (err) {
    // A malformed name is a device's certificate gone wrong, not a signer's.
    return !(err instanceof AttestationError && /names no device serial/.test(err.detail));
  }
}

/** Certificate and CRL entry serials compared as lowercase hex without leading zero octets. */
export function normalizeSerialHex(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, '');
}

function serialHexOf(asn: AsnCertificate): string {
  return normalizeSerialHex(Buffer.from(asn.tbsCertificate.serialNumber).toString('hex'));
}

function hardwareModuleNameOf(value: ArrayBuffer): { serial: string; hwType: string } | undefined {
  const parsed = asn1js.fromBER(value);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return undefined;
  const [type, serial, ...rest] = parsed.result.valueBlock.value;
  if (rest.length > 0 || !(type instanceof asn1js.ObjectIdentifier) || !(serial instanceof asn1js.OctetString)) return undefined;
  const bytes = Buffer.from(serial.valueBlock.valueHexView);
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? { serial: text, hwType: type.valueBlock.toString() } : undefined;
}

/** identifierValue of an RFC 4043 PermanentIdentifier (SEQUENCE { identifierValue UTF8String OPTIONAL, assigner OID OPTIONAL }), when it has one. */
export function permanentIdentifierOf(value: ArrayBuffer): string | undefined {
  const parsed = asn1js.fromBER(value);
  if (parsed.offset !== value.byteLength || !(parsed.result instanceof asn1js.Sequence)) return undefined;
  const [first, second, ...rest] = parsed.result.valueBlock.value;
  if (rest.length > 0 || !(first instanceof asn1js.Utf8String) || (second !== undefined && !(second instanceof asn1js.ObjectIdentifier))) return undefined;
  return first.valueBlock.value.length > 0 ? first.valueBlock.value : undefined;
}

/**
 * RFC 5280 path validation of a birth certificate up to one of a
 * manufacturer's registered roots (validatePath), plus what IEEE 802.1AR
 * asks of the birth certificate itself: an end entity allowed to sign that
 * names its device.
 */
export function validateBirthChain(x5c: readonly Buffer[], anchors: readonly Buffer[], now: Date, withdrawn: ReadonlySet<string> = new Set()): ValidatedBirth {
  if (x5c.length === 0 || x5c.length > MAX_BIRTH_CHAIN) throw new AttestationError('check 1 (chain)', `x5c holds 1 to ${MAX_BIRTH_CHAIN} certificates`);
  const leaf = parse(x5c[0]!, 'x5c[0]');
  const identity = identityOf(leaf);
  const path = validateParsedPath(leaf, x5c.slice(1), anchors, now, 'x5c[0]', withdrawn);
  const { validity } = leaf.asn.tbsCertificate;
  return {
    identity, der: x5c[0]!, issuerSha256: path[0]!.sha256, path: path.map((p) => p.sha256), pathDer: path.map((p) => p.der),
    notBefore: validity.notBefore.getTime(), notAfter: validity.notAfter.getTime(),
  };
}

/**
 * RFC 5280 path validation of an end-entity certificate (`chain[0]`) up to
 * one of a manufacturer's registered roots: OpenSSL (node:crypto) checks
 * name chaining, the key identifiers and the issuer's keyCertSign for each
 * link (X509_check_issued) and its signature; here each CA must be a CA
 * (basicConstraints) within its pathLenConstraint, every certificate inside
 * its validity, no unprocessed critical extension, and the end entity no CA
 * and allowed to sign. `anchors` are the manufacturer's registered
 * certificates (roots and intermediates); `chain[1..]` may bring
 * intermediates too. Returns the SHA-256 of each CA certificate on the
 * path, issuer first, root last.
 */
export function validatePath(chain: readonly Buffer[], anchors: readonly Buffer[], now: Date, name: string, withdrawn: ReadonlySet<string> = new Set()): string[] {
  if (chain.length === 0 || chain.length > MAX_BIRTH_CHAIN) throw new AttestationError('check 1 (chain)', `a chain holds 1 to ${MAX_BIRTH_CHAIN} certificates`);
  return validateParsedPath(parse(chain[0]!, name), chain.slice(1), anchors, now, name, withdrawn).map((p) => p.sha256);
}

/**
 * validatePath for a TPM's endorsement key certificate: its key decrypts
 * (keyEncipherment), it never signs. Returns the path's SHA-256s, issuer first.
 */
export function validateEndorsementPath(chain: readonly Buffer[], anchors: readonly Buffer[], now: Date, withdrawn: ReadonlySet<string> = new Set()): string[] {
  if (chain.length === 0 || chain.length > MAX_BIRTH_CHAIN) throw new AttestationError('check 1 (chain)', `a chain holds 1 to ${MAX_BIRTH_CHAIN} certificates`);
  return validateParsedPath(parse(chain[0]!, 'the EK certificate'), chain.slice(1), anchors, now, 'the EK certificate', withdrawn, 'keyEncipherment').map((p) => p.sha256);
}

/** `withdrawn`: SHA-256 of CA certificates the manufacturer's trust no longer covers; a path through one fails, however it is offered. */
function validateParsedPath(
  leaf: Parsed, intermediates: readonly Buffer[], anchors: readonly Buffer[], now: Date, name: string, withdrawn: ReadonlySet<string>,
  leafUsage: 'digitalSignature' | 'keyEncipherment' = 'digitalSignature',
): Parsed[] {
  checkCommon(leaf, name, now);
  if (basicConstraints(leaf)?.cA) throw new AttestationError('check 1 (chain)', `${name} is a CA certificate, not an end entity`);
  if (!keyUsageAllows(leaf, KeyUsageFlags[leafUsage])) throw new AttestationError('check 1 (chain)', `${name} may not ${leafUsage === 'digitalSignature' ? 'sign' : 'encrypt keys'} (keyUsage without ${leafUsage})`);
  const registered = anchors.map((der, i) => parseCa(der, `anchor certificate ${i}`));
  const offered = intermediates.map((der, i) => parseCa(der, `chain certificate ${i + 1}`)).filter((c) => !registered.includes(c));
  const pool = [...registered, ...offered];
  const path: Parsed[] = [];
  let current = leaf;
  for (;;) {
    if (path.length >= MAX_BIRTH_CHAIN) throw new AttestationError('check 1 (chain)', 'the chain is longer than the registered anchors allow');
    const issuer = pool.find((candidate) => !path.includes(candidate) && candidate !== current && issuedBy(current, candidate));
    if (!issuer) throw new AttestationError('check 1 (chain)', path.length === 0 ? `${name} was not issued by any certificate of a registered manufacturer` : `the chain ends at "${subjectOf(current)}", which no registered manufacturer root issued`);
    const what = `CA certificate "${subjectOf(issuer)}"`;
    if (withdrawn.has(issuer.sha256)) throw new AttestationError('check 1 (chain)', `the chain goes through ${what}, which was withdrawn`);
    checkCommon(issuer, what, now);
    const constraints = basicConstraints(issuer);
    if (!constraints?.cA) throw new AttestationError('check 1 (chain)', `${what} is not a CA (basicConstraints)`);
    if (constraints.pathLenConstraint !== undefined && path.length > constraints.pathLenConstraint) {
      throw new AttestationError('check 1 (chain)', `${what} allows ${constraints.pathLenConstraint} CA certificates below it, the path has ${path.length}`);
    }
    if (!keyUsageAllows(issuer, KeyUsageFlags.keyCertSign)) throw new AttestationError('check 1 (chain)', `${what} may not sign certificates (keyUsage)`);
    path.push(issuer);
    if (issuedBy(issuer, issuer)) {
      if (!registered.includes(issuer)) throw new AttestationError('check 1 (chain)', `the chain ends at a root that is not registered: "${subjectOf(issuer)}"`);
      return path;
    }
    current = issuer;
  }
}

const subjectOf = (certificate: Parsed) => certificate.cert.subject.replace(/\n/g, ', ');
