import { createPublicKey, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { DomainError } from '../errors/domain-error.ts';

/** PKCS#10 is small; anything larger is not a device CSR. */
export const MAX_CSR_LENGTH = 16 * 1024;

export interface VerifiedCsr {
  csr: x509.Pkcs10CertificateRequest;
  publicKey: x509.PublicKey;
  /** e.g. "EC P-256", "Ed25519", "RSA 2048". */
  keyType: string;
}

const EC_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };

const PEM_HEADERS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

/** PEM or base64url DER. Parsed with indexOf, not a backtracking pattern: the input is untrusted. */
function decode(text: string): Uint8Array<ArrayBuffer> {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN ')) {
    const label = PEM_HEADERS.find((name) => trimmed.startsWith(`-----BEGIN ${name}-----`) && trimmed.endsWith(`-----END ${name}-----`));
    if (!label) throw new DomainError('badCSR', 'csr is not a PEM "CERTIFICATE REQUEST"');
    const body = trimmed.slice(`-----BEGIN ${label}-----`.length, trimmed.length - `-----END ${label}-----`.length);
    if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) throw new DomainError('badCSR', 'csr PEM body is not base64');
    return new Uint8Array(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
  }
  if (!/^[A-Za-z0-9_-]+$/.test(trimmed)) throw new DomainError('badCSR', 'csr must be PEM or base64url DER (RFC 4648 section 5, no padding)');
  return new Uint8Array(Buffer.from(trimmed, 'base64url'));
}

/**
 * The key types SPEC section 4 allows for factory keys (anything else is
 * refused by name), with the key re-encoded canonically: one key must have one
 * SubjectPublicKeyInfo, or a compressed EC point would slip past clone
 * detection with a second hash.
 */
export function canonicalAllowedKey(spki: Uint8Array): { spki: Uint8Array<ArrayBuffer>; keyType: string } {
  let key;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw new DomainError('badPublicKey', 'the public key cannot be parsed');
  }
  const keyType = allowedKeyType(key);
  // OpenSSL keeps a parsed EC key's point form; a round trip through JWK yields the uncompressed one.
  const canonical = key.asymmetricKeyType === 'ec' ? createPublicKey({ key: key.export({ format: 'jwk' }), format: 'jwk' }) : key;
  return { spki: new Uint8Array(canonical.export({ format: 'der', type: 'spki' })), keyType };
}

function allowedKeyType(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = EC_CURVES[details.namedCurve ?? ''];
      if (!curve) throw new DomainError('badPublicKey', `EC curve ${details.namedCurve} is not allowed; use P-256 or P-384`);
      return `EC ${curve}`;
    }
    case 'ed25519':
      return 'Ed25519';
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < 2048 || bits > 8192) throw new DomainError('badPublicKey', `RSA ${bits}-bit keys are not allowed; use 2048 to 8192 bits`);
      return `RSA ${bits}`;
    }
    default:
      throw new DomainError('badPublicKey', `${key.asymmetricKeyType} keys are not allowed; use EC P-256/P-384, Ed25519 or RSA >= 2048`);
  }
}

/** Parses a PEM or base64url-DER PKCS#10 request, checks its key type and verifies its signature. */
export async function verifyCsr(text: string): Promise<VerifiedCsr> {
  if (text.length > MAX_CSR_LENGTH) throw new DomainError('badCSR', `csr is longer than ${MAX_CSR_LENGTH} characters`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(decode(text));
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw new DomainError('badCSR', 'csr is not a DER PKCS#10 certification request');
  }
  const { spki, keyType } = canonicalAllowedKey(new Uint8Array(csr.publicKey.rawData));
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new DomainError('badCSR', 'the csr signature does not verify with its public key');
  return { csr, publicKey: new x509.PublicKey(spki), keyType };
}
