import { createHash } from 'node:crypto';

/** The EC curves a CA key may use (docs/reference/certificates.md: P-256 and P-384 required). */
export type Curve = 'P-256' | 'P-384';

export interface CurveInfo {
  curve: Curve;
  /** DER of the namedCurve OID, the value of CKA_EC_PARAMS. */
  ecParams: Buffer;
  hash: 'SHA-256' | 'SHA-384';
  /** node:crypto's name of the hash. */
  nodeHash: 'sha256' | 'sha384';
  /** Bytes of one coordinate, so r|s is twice this long. */
  size: number;
}

const CURVES: Record<Curve, CurveInfo> = {
  'P-256': { curve: 'P-256', ecParams: Buffer.from('06082a8648ce3d030107', 'hex'), hash: 'SHA-256', nodeHash: 'sha256', size: 32 },
  'P-384': { curve: 'P-384', ecParams: Buffer.from('06052b81040022', 'hex'), hash: 'SHA-384', nodeHash: 'sha384', size: 48 },
};

export function curveInfo(curve: Curve): CurveInfo {
  return CURVES[curve];
}

export function curveFromParams(ecParams: Buffer): CurveInfo | undefined {
  return Object.values(CURVES).find((c) => c.ecParams.equals(ecParams));
}

/** CKM_ECDSA signs a digest: hash here with the curve's hash. */
export function digestFor(info: CurveInfo, data: Uint8Array): Buffer {
  return createHash(info.nodeHash).update(data).digest();
}
