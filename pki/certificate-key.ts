import { X509Certificate } from 'node:crypto';
import { DomainError, malformed } from '../errors/domain-error.ts';
import { checkPublicKey, type CheckedKey } from './public-key.ts';

/** A certificate from outside, parsed by node:crypto only after its subject public key passed checkPublicKey. */
export interface CheckedCertificate {
  der: Buffer;
  cert: X509Certificate;
  /** Verify with `key.key`, never with `cert.publicKey`. */
  key: CheckedKey;
}

/**
 * Parses a certificate that came from outside (a manufacturer's CA, a
 * manifest signer, a birth chain, an export), checking its subject public
 * key first: OpenSSL takes an EC point at infinity for a key, and Node
 * aborts the whole process when it reads that key's details or exports it.
 * Every node:crypto call on an outside certificate goes through here.
 * Throws DomainError: badPublicKey for a refused key, malformed otherwise.
 */
export function checkCertificate(der: Uint8Array): CheckedCertificate {
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const key = checkPublicKey(subjectPublicKeyInfoOf(bytes));
  try {
    return { der: bytes, cert: new X509Certificate(bytes), key };
  } catch {
    throw notACertificate();
  }
}

/** Whether an error of checkCertificate is about the key (the rest is a broken certificate). */
export const isKeyRefusal = (err: unknown): err is DomainError => err instanceof DomainError && err.kind === 'badPublicKey';

const notACertificate = () => malformed('not an X.509 certificate');

/**
 * The SubjectPublicKeyInfo of a Certificate (RFC 5280 4.1), its bytes as
 * signed, found by a bounds-checked walk over definite lengths only.
 */
function subjectPublicKeyInfoOf(der: Buffer): Buffer {
  const certificate = read(der, 0, der.length);
  if (certificate.tag !== SEQUENCE || certificate.end !== der.length) throw notACertificate();
  const tbs = read(der, certificate.contents, certificate.end);
  if (tbs.tag !== SEQUENCE) throw notACertificate();
  let at = tbs.contents;
  // [0] version (optional), serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
  if (read(der, at, tbs.end).tag === VERSION) at = read(der, at, tbs.end).end;
  for (const tag of [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE]) {
    const field = read(der, at, tbs.end);
    if (field.tag !== tag) throw notACertificate();
    at = field.end;
  }
  const spki = read(der, at, tbs.end);
  if (spki.tag !== SEQUENCE) throw notACertificate();
  return der.subarray(at, spki.end);
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const VERSION = 0xa0;

/** One element's tag, where its contents start and where it ends; every length checked against `limit`. */
function read(der: Buffer, offset: number, limit: number): { tag: number; contents: number; end: number } {
  if (offset + 2 > limit) throw notACertificate();
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let contents = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || contents + count > limit) throw notACertificate();
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[contents + i]!;
    contents += count;
  }
  const end = contents + length;
  if (end > limit) throw notACertificate();
  return { tag, contents, end };
}
