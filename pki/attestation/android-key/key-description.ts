import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { AuthorizationList, KeyDescription, NonStandardKeyDescription, SecurityLevel, id_ce_keyDescription } from '@peculiar/asn1-android';
import { AttestationError } from '../attestation-object.ts';

/** What the Android Key Attestation extension (KeyDescription) of x5c[0] says, as far as this CA asks. */
export interface AndroidKeyDescription {
  securityLevel: SecurityLevel;
  challenge: Buffer;
  /** attestationIdSerial of teeEnforced (KeyMint: hardwareEnforced), UTF-8; null without one. */
  teeSerial: string | null;
  /** Whether softwareEnforced names a serial: never trusted, told apart only to say why. */
  softwareSerial: boolean;
  /** KM_ORIGIN of teeEnforced: 0 = generated in the secure hardware. */
  teeOrigin: number | undefined;
  /** KM_PURPOSE values of teeEnforced: 2 = sign. */
  teePurposes: number[];
  /** allApplications in either list: a key any app may use, refused by WebAuthn 8.4.1. */
  allApplications: boolean;
}

export const SECURITY_LEVEL_NAMES: Record<number, string> = { 0: 'Software', 1: 'TrustedEnvironment', 2: 'StrongBox' };

const bad = (detail: string) => new AttestationError('attStmt.x5c', detail);

/** A list whose fields came in any order (NonStandardKeyDescription, seen on some devices) or in the order of the schema. */
type Lookup = <K extends keyof AuthorizationList>(key: K) => AuthorizationList[K] | undefined;

function serialOf(value: { buffer: ArrayBuffer } | undefined): string | null {
  if (!value) return null;
  const bytes = Buffer.from(value.buffer);
  const text = bytes.toString('utf8');
  if (bytes.length === 0 || bytes.length > 128 || !Buffer.from(text, 'utf8').equals(bytes)) throw bad('attestationIdSerial is not a UTF-8 serial of 1 to 128 bytes');
  return text;
}

function describe(level: SecurityLevel, challenge: ArrayBuffer, tee: Lookup, software: Lookup): AndroidKeyDescription {
  return {
    securityLevel: level, challenge: Buffer.from(challenge),
    teeSerial: serialOf(tee('attestationIdSerial')), softwareSerial: software('attestationIdSerial') !== undefined,
    teeOrigin: tee('origin'), teePurposes: [...(tee('purpose') ?? [])],
    allApplications: tee('allApplications') !== undefined || software('allApplications') !== undefined,
  };
}

/** The KeyDescription (OID 1.3.6.1.4.1.11129.2.1.17) of a certificate: AttestationError when it is missing or malformed. */
export function keyDescriptionOf(certificate: Certificate): AndroidKeyDescription {
  const extensions = (certificate.tbsCertificate.extensions ?? []).filter((e) => e.extnID === id_ce_keyDescription);
  if (extensions.length !== 1) throw bad(`x5c[0] must carry one Android Key Attestation extension (${id_ce_keyDescription})`);
  const value = extensions[0]!.extnValue.buffer;
  try {
    const d = AsnConvert.parse(value, KeyDescription);
    return describe(d.attestationSecurityLevel, d.attestationChallenge.buffer, (k) => d.teeEnforced[k], (k) => d.softwareEnforced[k]);
  } catch {
    // Some devices order the authorization lists' fields freely: read them as a list of single fields.
  }
  try {
    const d = AsnConvert.parse(value, NonStandardKeyDescription);
    return describe(d.attestationSecurityLevel, d.attestationChallenge.buffer, (k) => d.teeEnforced.findProperty(k), (k) => d.softwareEnforced.findProperty(k));
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw bad('the Android Key Attestation extension is not a KeyDescription');
  }
}
