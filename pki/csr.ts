import { verify as nodeVerify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { DomainError } from '../errors/domain-error.ts';
import { checkPublicKey, isNullParameters, type CheckedKey } from './public-key.ts';
import { parseStrictDer } from './strict-der.ts';

/** PKCS#10 is small; anything larger is not a device CSR. */
export const MAX_CSR_LENGTH = 16 * 1024;

/** A PKCS#10 request whose signature verified with its own, checked key. */
export interface VerifiedCsr {
  request: CertificationRequest;
  publicKey: CheckedKey;
}

const PEM_HEADERS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

const badCsr = (detail: string) => new DomainError('badCSR', detail);

/** PEM or base64url DER. Parsed with indexOf, not a backtracking pattern: the input is untrusted. */
function decode(text: string): Uint8Array {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN ')) {
    const label = PEM_HEADERS.find((name) => trimmed.startsWith(`-----BEGIN ${name}-----`) && trimmed.endsWith(`-----END ${name}-----`));
    if (!label) throw badCsr('csr is not a PEM "CERTIFICATE REQUEST"');
    const body = trimmed.slice(`-----BEGIN ${label}-----`.length, trimmed.length - `-----END ${label}-----`.length);
    if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) throw badCsr('csr PEM body is not base64');
    return Buffer.from(body.replace(/\s+/g, ''), 'base64');
  }
  if (!/^[A-Za-z0-9_-]+$/.test(trimmed)) throw badCsr('csr must be PEM or base64url DER (RFC 4648 section 5, no padding)');
  return Buffer.from(trimmed, 'base64url');
}

/** The signature algorithms a CSR may use, by OID, with the key kind each belongs to and its hash. */
const SIGNATURE_ALGORITHMS: Record<string, { kind: CheckedKey['kind']; hash: string | null; nullParameters: boolean }> = {
  '1.2.840.10045.4.3.2': { kind: 'ec', hash: 'sha256', nullParameters: false },
  '1.2.840.10045.4.3.3': { kind: 'ec', hash: 'sha384', nullParameters: false },
  '1.2.840.10045.4.3.4': { kind: 'ec', hash: 'sha512', nullParameters: false },
  '1.3.101.112': { kind: 'ed25519', hash: null, nullParameters: false },
  '1.2.840.113549.1.1.11': { kind: 'rsa', hash: 'sha256', nullParameters: true },
  '1.2.840.113549.1.1.12': { kind: 'rsa', hash: 'sha384', nullParameters: true },
  '1.2.840.113549.1.1.13': { kind: 'rsa', hash: 'sha512', nullParameters: true },
};

/**
 * Parses a PEM or base64url-DER PKCS#10 request as strict DER, checks its key
 * (pki/public-key.ts) and verifies its signature with node:crypto.
 */
export function verifyCsr(text: string): VerifiedCsr {
  if (text.length > MAX_CSR_LENGTH) throw badCsr(`csr is longer than ${MAX_CSR_LENGTH} characters`);
  const request = parseStrictDer(decode(text), CertificationRequest, () => badCsr('csr is not a DER PKCS#10 certification request'));
  const info = request.certificationRequestInfo;
  if (info.version !== 0) throw badCsr('csr version must be 1 (0)');
  const publicKey = checkPublicKey(new Uint8Array(AsnConvert.serialize(info.subjectPKInfo)));
  const algorithm = SIGNATURE_ALGORITHMS[request.signatureAlgorithm.algorithm];
  if (!algorithm || algorithm.kind !== publicKey.kind) throw badCsr(`csr signature algorithm ${request.signatureAlgorithm.algorithm} does not fit its ${publicKey.keyType} key`);
  const parameters = request.signatureAlgorithm.parameters;
  if (algorithm.nullParameters ? !isNullParameters(parameters) : parameters !== undefined) throw badCsr('csr signature algorithm parameters are wrong');
  const tbs = Buffer.from(AsnConvert.serialize(info));
  let valid: boolean;
  try {
    valid = nodeVerify(algorithm.hash, tbs, publicKey.key, Buffer.from(request.signature));
  } catch {
    valid = false;
  }
  if (!valid) throw badCsr('the csr signature does not verify with its public key');
  return { request, publicKey };
}
