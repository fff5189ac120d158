import { sequence, unsignedInteger } from '../../../ca/der.ts';
import { HASH_ALGORITHMS, MAX_ECC_PARAMETER, MAX_RSA_KEY, TPM_ALG } from './constants.ts';
import { TpmReader } from './reader.ts';

/** A certify signature ready for node:crypto: ECDSA as DER Ecdsa-Sig-Value, RSASSA as is. */
export interface TpmSignature {
  scheme: 'ecdsa' | 'rsassa';
  /** node:crypto's name of the hash, or null for a DER signature (its hash is the one `alg` names). */
  hash: string | null;
  bytes: Buffer;
}

/**
 * attStmt.sig: a marshalled TPMT_SIGNATURE (TPM 2.0 Part 2, 11.3.4) of
 * scheme ECDSA (r, s) or RSASSA; or, as some clients send it, an ECDSA
 * signature already in DER, told apart by its first byte 0x30 (a
 * TPMT_SIGNATURE starts with its sigAlg, 0x00).
 */
export function parseTpmSignature(bytes: Buffer): TpmSignature {
  if (bytes[0] === 0x30) return { scheme: 'ecdsa', hash: null, bytes };
  const reader = new TpmReader(bytes, 'attStmt.sig');
  const sigAlg = reader.u16('sigAlg');
  if (sigAlg !== TPM_ALG.ECDSA && sigAlg !== TPM_ALG.RSASSA) throw reader.fail(`sigAlg 0x${sigAlg.toString(16)} is not TPM_ALG_ECDSA or TPM_ALG_RSASSA`);
  const hashAlg = reader.u16('hash');
  const hash = HASH_ALGORITHMS[hashAlg];
  if (!hash) throw reader.fail(`hash 0x${hashAlg.toString(16)} is not SHA-256, SHA-384 or SHA-512`);
  if (sigAlg === TPM_ALG.RSASSA) {
    const sig = reader.sized('sig', MAX_RSA_KEY, 1);
    reader.end();
    return { scheme: 'rsassa', hash: hash.name, bytes: sig };
  }
  const r = reader.sized('signatureR', MAX_ECC_PARAMETER, 1);
  const s = reader.sized('signatureS', MAX_ECC_PARAMETER, 1);
  reader.end();
  return { scheme: 'ecdsa', hash: hash.name, bytes: sequence(unsignedInteger(r), unsignedInteger(s)) };
}
