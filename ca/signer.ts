import { createHash, createPublicKey } from 'node:crypto';
import { curveInfo, type Curve } from '../hsm/curves.ts';
import type { KeyHandle, KeyProvider } from '../hsm/provider.ts';
import { oid, sequence, unsignedInteger } from './der.ts';

const ECDSA_WITH = { 'SHA-256': '1.2.840.10045.4.3.2', 'SHA-384': '1.2.840.10045.4.3.3' } as const;

/** What every signed structure (certificate, CRL, OCSP response, checkpoint) gets back from the HSM. */
export interface TbsSignature {
  /** DER AlgorithmIdentifier, ecdsa-with-SHA256/384 with absent parameters (RFC 5758 3.2). */
  algorithm: Buffer;
  /** DER Ecdsa-Sig-Value. */
  signature: Buffer;
}

/**
 * Signs with one HSM key and returns DER: the one place where the token's raw
 * r|s becomes an Ecdsa-Sig-Value (RFC 3279 2.2.3).
 */
export class Signer {
  readonly algorithm: Buffer;

  constructor(
    private readonly provider: KeyProvider,
    readonly key: KeyHandle,
  ) {
    this.algorithm = algorithmIdentifier(key.curve);
  }

  async sign(data: Uint8Array): Promise<TbsSignature> {
    const raw = await this.provider.sign(this.key, data);
    return { algorithm: this.algorithm, signature: ecdsaSigValue(raw) };
  }
}

export function algorithmIdentifier(curve: Curve): Buffer {
  return sequence(oid(ECDSA_WITH[curveInfo(curve).hash]));
}

const NODE_CURVES: Record<string, Curve> = { prime256v1: 'P-256', secp384r1: 'P-384' };

/** The signature algorithm of a CA whose public key (SPKI DER) is given: known even while its key is offline. */
export function signatureAlgorithmFor(spki: Buffer): Buffer {
  const curve = NODE_CURVES[createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyDetails?.namedCurve ?? ''];
  if (!curve) throw new Error('a CA key must be on P-256 or P-384');
  return algorithmIdentifier(curve);
}

/** SEQUENCE { r INTEGER, s INTEGER } from raw r|s. */
export function ecdsaSigValue(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  return sequence(unsignedInteger(raw.subarray(0, half)), unsignedInteger(raw.subarray(half)));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes, as @peculiar/x509 computes it. */
export function keyIdentifier(subjectPublicKey: Uint8Array): Buffer {
  return createHash('sha1').update(subjectPublicKey).digest();
}
