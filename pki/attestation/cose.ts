import { DomainError } from '../../errors/domain-error.ts';
import { checkPublicKey, spkiOfJwk, type CheckedKey } from '../public-key.ts';
import { AttestationError } from './attestation-object.ts';

/** COSE algorithms (RFC 9053) a device may attest with, and the key each needs. */
export const COSE_ALGORITHMS: Record<number, { kind: CheckedKey['kind']; curve?: 'P-256' | 'P-384'; hash: string | null }> = {
  [-7]: { kind: 'ec', curve: 'P-256', hash: 'sha256' },
  [-35]: { kind: 'ec', curve: 'P-384', hash: 'sha384' },
  [-8]: { kind: 'ed25519', hash: null },
  [-257]: { kind: 'rsa', hash: 'sha256' },
};

const EC_CURVES: Record<number, { name: 'P-256' | 'P-384'; size: number }> = { 1: { name: 'P-256', size: 32 }, 2: { name: 'P-384', size: 48 } };

const bytes = (value: unknown, length?: number): value is Buffer => value instanceof Uint8Array && (length === undefined || value.length === length);

/**
 * The new operational key from its COSE_Key (RFC 9053: EC2, OKP Ed25519, RSA),
 * as a checked, canonical SPKI: EC points uncompressed, RSA with NULL
 * parameters (docs/device-makers/protocol.md, credId). The key's own `alg`, when present,
 * must fit it.
 */
export function publicKeyFromCose(cose: Map<number, unknown>): CheckedKey {
  const fail = (detail: string) => new AttestationError('credentialPublicKey', detail);
  const kty = cose.get(1);
  let jwk: Record<string, string>;
  if (kty === 2) {
    const curve = EC_CURVES[cose.get(-1) as number];
    const x = cose.get(-2);
    const y = cose.get(-3);
    if (!curve || !bytes(x, curve.size) || !bytes(y, curve.size)) throw fail('an EC2 key needs crv 1 (P-256) or 2 (P-384) and x, y of the curve\'s size');
    jwk = { kty: 'EC', crv: curve.name, x: Buffer.from(x).toString('base64url'), y: Buffer.from(y).toString('base64url') };
  } else if (kty === 1) {
    const x = cose.get(-2);
    if (cose.get(-1) !== 6 || !bytes(x, 32)) throw fail('an OKP key must be Ed25519 (crv 6) with a 32-byte x');
    jwk = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(x).toString('base64url') };
  } else if (kty === 3) {
    const n = cose.get(-1);
    const e = cose.get(-2);
    if (!bytes(n) || !bytes(e) || n.length > 1024 || e.length > 32) throw fail('an RSA key needs n and e byte strings');
    jwk = { kty: 'RSA', n: Buffer.from(n).toString('base64url'), e: Buffer.from(e).toString('base64url') };
  } else {
    throw fail('kty must be 2 (EC2), 1 (OKP) or 3 (RSA)');
  }
  let key: CheckedKey;
  try {
    key = checkPublicKey(spkiOfJwk(jwk));
  } catch (err) {
    if (err instanceof DomainError) throw fail(err.detail);
    throw err;
  }
  const alg = cose.get(3);
  if (alg !== undefined) {
    const expected = COSE_ALGORITHMS[alg as number];
    if (!expected || expected.kind !== key.kind || (expected.curve && expected.curve !== key.curve)) throw fail(`its alg ${String(alg)} does not fit a ${key.keyType} key`);
  }
  return key;
}
