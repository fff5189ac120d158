import { createPublicKey, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { ECParameters, id_ecPublicKey } from '@peculiar/asn1-ecc';
import { RSAPublicKey, id_rsaEncryption } from '@peculiar/asn1-rsa';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { bitString, oid, sequence, unsignedInteger } from '../ca/der.ts';
import { DomainError } from '../errors/domain-error.ts';
import { parseStrictDer } from './strict-der.ts';

export const ID_ED25519 = '1.3.101.112';

const CURVES: Record<string, { name: 'P-256' | 'P-384'; size: number }> = {
  '1.2.840.10045.3.1.7': { name: 'P-256', size: 32 },
  '1.3.132.0.34': { name: 'P-384', size: 48 },
};

/** A public key that passed every check: its canonical SPKI and a node:crypto key for verification. */
export interface CheckedKey {
  /** SubjectPublicKeyInfo DER in one canonical encoding (EC points uncompressed, RSA with NULL parameters). */
  spki: Buffer;
  key: KeyObject;
  /** e.g. "EC P-256", "Ed25519", "RSA 2048". */
  keyType: string;
  kind: 'ec' | 'ed25519' | 'rsa';
  curve?: 'P-256' | 'P-384';
}

const badKey = (detail: string) => new DomainError('badPublicKey', detail);

/**
 * Checks a SubjectPublicKeyInfo before Node or OpenSSL sees it (an EC point
 * at infinity makes OpenSSL abort the process when Node reads its details):
 * strict DER; EC on P-256 or P-384 by named-curve OID, with a compressed or
 * uncompressed point of the curve's exact length that OpenSSL then finds on
 * the curve; RSA of 2048-8192 bits with an odd modulus and an odd public
 * exponent above 2^16; Ed25519 of 32 bytes. Returns the key re-encoded canonically: one key must
 * have one SPKI, or a compressed point would slip past clone detection.
 */
export function checkPublicKey(spkiDer: Uint8Array): CheckedKey {
  const spki = parseStrictDer(spkiDer, SubjectPublicKeyInfo, () => badKey('the public key is not a DER SubjectPublicKeyInfo'));
  const { algorithm, parameters } = spki.algorithm;
  const bits = new Uint8Array(spki.subjectPublicKey);
  switch (algorithm) {
    case id_ecPublicKey:
      return checkEc(parameters, bits, spkiDer);
    case ID_ED25519:
      if (parameters !== undefined) throw badKey('Ed25519 keys have no algorithm parameters');
      if (bits.length !== 32) throw badKey('an Ed25519 key is 32 bytes');
      return { spki: Buffer.from(spkiDer), key: nodeKey(spkiDer), keyType: 'Ed25519', kind: 'ed25519' };
    case id_rsaEncryption:
      return checkRsa(parameters, bits, spkiDer);
    default:
      throw badKey(`keys of algorithm ${algorithm} are not allowed; use EC P-256/P-384, Ed25519 or RSA >= 2048`);
  }
}

function checkEc(parameters: ArrayBuffer | null | undefined, point: Uint8Array, spkiDer: Uint8Array): CheckedKey {
  if (!parameters) throw badKey('an EC key must name its curve');
  let namedCurve: string | undefined;
  try {
    namedCurve = AsnConvert.parse(parameters, ECParameters).namedCurve;
  } catch {
    throw badKey('the EC parameters are not a named curve');
  }
  const curve = CURVES[namedCurve ?? ''];
  if (!curve) throw badKey(`EC curve ${namedCurve ?? '(explicit parameters)'} is not allowed; use P-256 or P-384`);
  const uncompressed = point.length === 1 + 2 * curve.size && point[0] === 0x04;
  const compressed = point.length === 1 + curve.size && (point[0] === 0x02 || point[0] === 0x03);
  if (!uncompressed && !compressed) throw badKey(`the EC point is not a compressed or uncompressed ${curve.name} point`);
  const key = nodeKey(spkiDer);
  // OpenSSL keeps a parsed point's form; a round trip through JWK yields the uncompressed one.
  const canonical = compressed ? createPublicKey({ key: key.export({ format: 'jwk' }), format: 'jwk' }) : key;
  return { spki: canonical.export({ format: 'der', type: 'spki' }), key: canonical, keyType: `EC ${curve.name}`, kind: 'ec', curve: curve.name };
}

/** asn1-schema reads NULL parameters as null and absent ones as undefined. */
export function isNullParameters(parameters: ArrayBuffer | null | undefined): boolean {
  return parameters === null || (parameters !== undefined && Buffer.from(parameters).equals(Buffer.from([0x05, 0x00])));
}

function checkRsa(parameters: ArrayBuffer | null | undefined, bits: Uint8Array, spkiDer: Uint8Array): CheckedKey {
  if (!isNullParameters(parameters)) throw badKey('an RSA key must have NULL algorithm parameters');
  const rsa = parseStrictDer(bits, RSAPublicKey, () => badKey('the RSA public key is not a DER RSAPublicKey'));
  const modulus = Buffer.from(rsa.modulus);
  const exponent = Buffer.from(rsa.publicExponent);
  const size = bitLength(modulus);
  // A negative or even modulus is no product of two odd primes (RFC 8017 3.1).
  if (modulus[0]! & 0x80 || (modulus[modulus.length - 1]! & 1) === 0) throw badKey('the RSA modulus is not a positive odd integer');
  if (size < 2048 || size > 8192) throw badKey(`RSA ${size}-bit keys are not allowed; use 2048 to 8192 bits`);
  if (exponent[0]! & 0x80 || bitLength(exponent) < 17 || bitLength(exponent) > 256 || (exponent[exponent.length - 1]! & 1) === 0) {
    throw badKey('the RSA public exponent must be odd and between 2^16 and 2^256 (65537 is usual)');
  }
  return { spki: Buffer.from(spkiDer), key: nodeKey(spkiDer), keyType: `RSA ${size}`, kind: 'rsa' };
}

const JWK_CURVES: Record<string, string> = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34' };
const NULL = Buffer.from([0x05, 0x00]);

/**
 * A public JWK (RFC 7518 6.2 and 6.3, RFC 8037 2) as SubjectPublicKeyInfo
 * DER, built here so that checkPublicKey sees the key before node:crypto
 * does. Members are checked for form only; checkPublicKey judges the key.
 */
export function spkiOfJwk(jwk: Readonly<Record<string, unknown>>): Buffer {
  const member = (name: string): Buffer => {
    const value = jwk[name];
    if (typeof value !== 'string' || value.length > 2048 || !/^[A-Za-z0-9_-]*$/.test(value)) throw badKey(`jwk member ${name} is not base64url of at most 2048 characters`);
    return Buffer.from(value, 'base64url');
  };
  const spki = (algorithm: Buffer, key: Buffer) => sequence(algorithm, bitString(key));
  switch (jwk.kty) {
    case 'EC': {
      const curve = JWK_CURVES[String(jwk.crv)];
      if (!curve) throw badKey(`EC curve ${String(jwk.crv).slice(0, 32)} is not allowed; use P-256 or P-384`);
      const x = member('x');
      const y = member('y');
      if (x.length !== y.length) throw badKey('the EC coordinates x and y differ in length');
      return spki(sequence(oid(id_ecPublicKey), oid(curve)), Buffer.concat([Buffer.from([0x04]), x, y]));
    }
    case 'OKP':
      if (jwk.crv !== 'Ed25519') throw badKey(`OKP curve ${String(jwk.crv).slice(0, 32)} is not allowed; use Ed25519`);
      return spki(sequence(oid(ID_ED25519)), member('x'));
    case 'RSA':
      return spki(sequence(oid(id_rsaEncryption), NULL), sequence(unsignedInteger(member('n')), unsignedInteger(member('e'))));
    default:
      throw badKey('jwk kty must be EC, OKP or RSA');
  }
}

/** Bits of a big-endian unsigned INTEGER's contents (a leading 0x00 for the sign is skipped). */
function bitLength(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i += 1;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i]!));
}

function nodeKey(spkiDer: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch {
    throw badKey('the public key is not a valid key (an EC point must be on its curve)');
  }
}
