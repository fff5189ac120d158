import { randomBytes, sign as nodeSign } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectPublicKeyInfo, TBSCertificate } from '@peculiar/asn1-x509';
import { bitString, explicit, extension, name, oid, sequence, time, tlv, TRUE, unsignedInteger } from '../../ca/der.ts';

/** Values wrong for a free-text field (a reason, a manufacturer): types, blanks, sizes, control characters, lone surrogates. */
export const BAD_TEXT: unknown[] = [
  null, 0, -1, 1e308, true, [], {}, ['x'], { value: 'x' }, '', ' ', '\t', 'a'.repeat(10_000), '\u0000', 'RMA\u0000X', '\u0007bell', '\ud800', 'x\udfffy', '\u001b[31mred',
];

/** A small seeded PRNG (mulberry32), so a failing case can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values that are wrong for any string field: types, sizes, encodings, control characters, lone surrogates. */
export const BAD_VALUES: unknown[] = [
  null, 0, -1, 1e308, true, [], {}, ['SN-1'], { value: 'x' }, '', ' ', '\t', 'SN_1', 'a'.repeat(10_000), '\u0000', 'SN\u0000X',
  '\ud800', 'x\udfffy', '\u202egnp.exe', '../../etc/passwd', '%00', 'SN 1', 'SN-1\n', '🙂', '<script>', "' or 1=1 --", '__proto__',
];

const P256 = '1.2.840.10045.3.1.7';
const EC = '1.2.840.10045.2.1';
const RSA = '1.2.840.113549.1.1.1';
const NULL = Buffer.from([0x05, 0x00]);

function spki(algorithm: string, parameters: Buffer | undefined, key: Buffer, unusedBits = 0): Buffer {
  const algId = parameters ? sequence(oid(algorithm), parameters) : sequence(oid(algorithm));
  return sequence(algId, unusedBits ? tlv(0x03, Buffer.from([unusedBits]), key) : bitString(key));
}

const rsaKey = (modulus: Buffer, exponent: Buffer) => sequence(tlv(0x02, modulus), tlv(0x02, exponent));
const modulusOf = (bits: number, fill = 0xc5) => Buffer.concat([Buffer.from([0x00]), Buffer.alloc(bits / 8, fill)]);

/** Public keys of every odd kind a hostile factory line could put in a CSR. */
export function oddPublicKeys(): Array<[string, Buffer]> {
  const curve = oid(P256);
  const p = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex');
  return [
    ['EC point at infinity (00)', spki(EC, curve, Buffer.from([0x00]))],
    ['EC point 04 alone', spki(EC, curve, Buffer.from([0x04]))],
    ['EC point (0,0), not on the curve', spki(EC, curve, Buffer.concat([Buffer.from([4]), Buffer.alloc(64)]))],
    ['EC point one byte short', spki(EC, curve, Buffer.concat([Buffer.from([4]), Buffer.alloc(63, 1)]))],
    ['EC point one byte long', spki(EC, curve, Buffer.concat([Buffer.from([4]), Buffer.alloc(65, 1)]))],
    ['EC compressed x = p', spki(EC, curve, Buffer.concat([Buffer.from([2]), p]))],
    ['EC compressed x all ones', spki(EC, curve, Buffer.concat([Buffer.from([3]), Buffer.alloc(32, 0xff)]))],
    ['EC compressed one byte short', spki(EC, curve, Buffer.concat([Buffer.from([2]), Buffer.alloc(31, 1)]))],
    ['EC hybrid prefix 06', spki(EC, curve, Buffer.concat([Buffer.from([6]), Buffer.alloc(64, 1)]))],
    ['EC prefix 05', spki(EC, curve, Buffer.concat([Buffer.from([5]), Buffer.alloc(64, 1)]))],
    ['EC empty point', spki(EC, curve, Buffer.alloc(0))],
    ['EC x = p, y = p', spki(EC, curve, Buffer.concat([Buffer.from([4]), p, p]))],
    ['EC unused bits in the BIT STRING', spki(EC, curve, Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]), 3)],
    ['EC parameters NULL', spki(EC, NULL, Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['EC parameters absent', spki(EC, undefined, Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['EC explicit parameters', spki(EC, sequence(unsignedInteger(Buffer.from([1])), sequence(oid('1.2.840.10045.1.1'), unsignedInteger(p))), Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['EC parameters an INTEGER', spki(EC, unsignedInteger(Buffer.from([7])), Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['EC secp256k1', spki(EC, oid('1.3.132.0.10'), Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['EC P-521', spki(EC, oid('1.3.132.0.35'), Buffer.concat([Buffer.from([4]), Buffer.alloc(132, 1)]))],
    ['EC brainpoolP256r1', spki(EC, oid('1.3.36.3.3.2.8.1.1.7'), Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['EC SM2 curve', spki(EC, oid('1.2.156.10197.1.301'), Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))],
    ['RSA exponent 3', spki(RSA, NULL, rsaKey(modulusOf(2048), Buffer.from([3])))],
    ['RSA exponent 1', spki(RSA, NULL, rsaKey(modulusOf(2048), Buffer.from([1])))],
    ['RSA exponent 65536 (even)', spki(RSA, NULL, rsaKey(modulusOf(2048), Buffer.from([1, 0, 0])))],
    ['RSA exponent 0', spki(RSA, NULL, rsaKey(modulusOf(2048), Buffer.from([0])))],
    ['RSA exponent negative', spki(RSA, NULL, rsaKey(modulusOf(2048), Buffer.from([0x81, 0, 1])))],
    ['RSA exponent 2^300', spki(RSA, NULL, rsaKey(modulusOf(2048), Buffer.concat([Buffer.from([1]), Buffer.alloc(38)])))],
    ['RSA 1024-bit modulus', spki(RSA, NULL, rsaKey(modulusOf(1024), Buffer.from([1, 0, 1])))],
    ['RSA 16384-bit modulus', spki(RSA, NULL, rsaKey(modulusOf(16384), Buffer.from([1, 0, 1])))],
    ['RSA even modulus', spki(RSA, NULL, rsaKey(modulusOf(2048, 0xc4), Buffer.from([1, 0, 1])))],
    ['RSA negative modulus', spki(RSA, NULL, rsaKey(Buffer.alloc(256, 0xc5), Buffer.from([1, 0, 1])))],
    ['RSA modulus with needless leading zero', spki(RSA, NULL, rsaKey(Buffer.concat([Buffer.from([0, 0]), Buffer.alloc(256, 0x45)]), Buffer.from([1, 0, 1])))],
    ['RSA parameters absent', spki(RSA, undefined, rsaKey(modulusOf(2048), Buffer.from([1, 0, 1])))],
    ['RSA parameters an OID', spki(RSA, oid('1.2.3'), rsaKey(modulusOf(2048), Buffer.from([1, 0, 1])))],
    ['RSA key not a SEQUENCE', spki(RSA, NULL, randomBytes(270))],
    ['RSA key with trailing bytes', spki(RSA, NULL, Buffer.concat([rsaKey(modulusOf(2048), Buffer.from([1, 0, 1])), Buffer.from([0, 0])]))],
    ['Ed25519 31 bytes', spki('1.3.101.112', undefined, Buffer.alloc(31, 1))],
    ['Ed25519 33 bytes', spki('1.3.101.112', undefined, Buffer.alloc(33, 1))],
    ['Ed25519 empty', spki('1.3.101.112', undefined, Buffer.alloc(0))],
    ['Ed25519 with NULL parameters', spki('1.3.101.112', NULL, Buffer.alloc(32, 1))],
    ['X25519', spki('1.3.101.110', undefined, Buffer.alloc(32, 1))],
    ['Ed448', spki('1.3.101.113', undefined, Buffer.alloc(57, 1))],
    ['DSA', spki('1.2.840.10040.4.1', sequence(unsignedInteger(p), unsignedInteger(p), unsignedInteger(p)), unsignedInteger(p))],
    ['an unknown algorithm', spki('1.2.3.4.5.6', undefined, Buffer.alloc(32, 1))],
  ];
}

/** A PKCS#10 request around any SubjectPublicKeyInfo, with a signature that cannot verify. */
export function csrAround(publicKeyInfo: Buffer, signatureAlgorithm = '1.2.840.10045.4.3.2'): Buffer {
  const info = sequence(unsignedInteger(Buffer.from([0])), sequence(), publicKeyInfo, explicit(0));
  return sequence(info, sequence(oid(signatureAlgorithm)), bitString(sequence(unsignedInteger(randomBytes(32)), unsignedInteger(randomBytes(32)))));
}

/**
 * An X.509 certificate around any SubjectPublicKeyInfo (a CA, with
 * basicConstraints, when `ca`), with a signature that cannot verify: what an
 * endpoint that takes certificates must refuse before it verifies anything.
 */
export function certificateAround(publicKeyInfo: Buffer, ca = false): Buffer {
  const now = Date.now();
  const subject = name([['2.5.4.3', 'utf8', 'hostile']]);
  const extensions = ca ? [explicit(3, sequence(extension('2.5.29.19', true, sequence(TRUE))))] : [];
  const tbs = sequence(explicit(0, unsignedInteger(Buffer.from([2]))), unsignedInteger(randomBytes(16)), sequence(oid('1.2.840.10045.4.3.2')), subject,
    sequence(time(new Date(now - 3_600_000)), time(new Date(now + 86_400_000))), subject, publicKeyInfo, ...extensions);
  return sequence(tbs, sequence(oid('1.2.840.10045.4.3.2')), bitString(sequence(unsignedInteger(randomBytes(32)), unsignedInteger(randomBytes(32)))));
}

/** Subject public keys that OpenSSL parses (the point at infinity) or refuses, each one a certificate may carry. */
export function badCertificateKeys(): Array<[string, Buffer]> {
  const wanted = ['EC point at infinity (00)', 'EC point (0,0), not on the curve', 'EC point one byte short', 'EC compressed x all ones', 'EC x = p, y = p', 'RSA 1024-bit modulus', 'RSA even modulus', 'Ed25519 31 bytes', 'an unknown algorithm'];
  return oddPublicKeys().filter(([name]) => wanted.includes(name));
}

/**
 * `certificate` with its subject public key swapped for `publicKeyInfo` and
 * signed again with `issuerKeyPem` (ECDSA with SHA-256), as a careless CA
 * that certifies whatever key a request carries would: every other field,
 * the extensions included, stays as its issuer made it.
 */
export function withSubjectKey(certificate: Buffer, publicKeyInfo: Buffer, issuerKeyPem: string): Buffer {
  const parsed = AsnConvert.parse(certificate, Certificate);
  const tbsCertificate = new TBSCertificate({ ...parsed.tbsCertificate, subjectPublicKeyInfo: AsnConvert.parse(publicKeyInfo, SubjectPublicKeyInfo) });
  const signatureValue = Uint8Array.from(nodeSign('sha256', Buffer.from(AsnConvert.serialize(tbsCertificate)), issuerKeyPem)).buffer;
  return Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate, signatureAlgorithm: parsed.signatureAlgorithm, signatureValue })));
}

/**
 * CertID serialNumber INTEGER contents that are not DER (X.690 8.3.2: empty,
 * or a redundant leading 0x00 or 0xFF) or are negative: an OCSP request
 * carrying one is malformedRequest, whatever the serial would name.
 */
export const NON_DER_SERIALS: ReadonlyArray<[name: string, contents: Buffer]> = [
  ['an empty INTEGER', Buffer.alloc(0)],
  ['a redundant leading 0x00', Buffer.from('0005', 'hex')],
  ['a redundant leading 0x00 on 16 bytes', Buffer.from(`007f${'11'.repeat(15)}`, 'hex')],
  ['a redundant leading 0xFF', Buffer.from('ff85', 'hex')],
  ['a negative INTEGER', Buffer.from('80', 'hex')],
  ['a negative 16-byte INTEGER', Buffer.from(`f1${'22'.repeat(15)}`, 'hex')],
];

/**
 * An OCSP request written byte by byte, one CertID per serial (the INTEGER's
 * contents as given, SHA-1 as OpenSSL writes it), for the issuer with these
 * name and key hashes.
 */
export function ocspRequestWithSerial(nameHash: Buffer, keyHash: Buffer, ...serialContents: Buffer[]): Buffer {
  const sha1 = sequence(oid('1.3.14.3.2.26'), Buffer.from([0x05, 0x00]));
  const requests = serialContents.map((contents) => sequence(sequence(sha1, tlv(0x04, nameHash), tlv(0x04, keyHash), tlv(0x02, contents))));
  return sequence(sequence(sequence(...requests)));
}
