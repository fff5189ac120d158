import { createHash } from 'node:crypto';
import { DomainError } from '../../../errors/domain-error.ts';
import { checkPublicKey, spkiOfJwk, type CheckedKey } from '../../public-key.ts';
import { AttestationError } from '../attestation-object.ts';
import { ECC_CURVES, ECC_SCHEMES, HASH_ALGORITHMS, KDF_SCHEMES, MAX_DIGEST, MAX_ECC_PARAMETER, MAX_RSA_KEY, RSA_SCHEMES, SYMMETRIC_OBJECT_ALGORITHMS, TPM_ALG } from './constants.ts';
import { TpmReader } from './reader.ts';

/** TPMT_PUBLIC (TPM 2.0 Part 2, 12.2.4) of an RSA or ECC key, and the key as a checked SPKI. */
export interface PublicArea {
  type: 'rsa' | 'ecc';
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Buffer;
  /** The key, checked and canonical (pki/public-key.ts). */
  key: CheckedKey;
  /** The object's Name: nameAlg (2 bytes) || H_nameAlg(the TPMT_PUBLIC bytes). */
  name: Buffer;
}

/**
 * pubArea: the bare TPMT_PUBLIC (no TPM2B size before it), read to its last
 * byte. The parameters are read to find `unique`, not judged: a signing
 * key's scheme matters to the TPM, not to the certificate.
 */
export function parsePublicArea(bytes: Buffer): PublicArea {
  const reader = new TpmReader(bytes, 'attStmt.pubArea');
  const type = reader.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) throw reader.fail(`type is 0x${type.toString(16)}, must be TPM_ALG_RSA or TPM_ALG_ECC`);
  const nameAlg = reader.u16('nameAlg');
  const hash = HASH_ALGORITHMS[nameAlg];
  if (!hash) throw reader.fail(`nameAlg 0x${nameAlg.toString(16)} is not SHA-256, SHA-384 or SHA-512`);
  const objectAttributes = reader.u32('objectAttributes');
  const authPolicy = reader.sized('authPolicy', MAX_DIGEST);
  readSymmetric(reader);
  let jwk: Record<string, string>;
  if (type === TPM_ALG.RSA) {
    readScheme(reader, 'parameters.scheme', RSA_SCHEMES);
    reader.u16('parameters.keyBits');
    const exponent = reader.u32('parameters.exponent');
    const modulus = reader.sized('unique', MAX_RSA_KEY, 1);
    jwk = { kty: 'RSA', n: modulus.toString('base64url'), e: exponentBytes(exponent).toString('base64url') };
  } else {
    readScheme(reader, 'parameters.scheme', ECC_SCHEMES);
    const curveId = reader.u16('parameters.curveID');
    readScheme(reader, 'parameters.kdf', KDF_SCHEMES);
    const x = reader.sized('unique.x', MAX_ECC_PARAMETER, 1);
    const y = reader.sized('unique.y', MAX_ECC_PARAMETER, 1);
    const curve = ECC_CURVES[curveId];
    if (!curve) throw reader.fail(`curveID 0x${curveId.toString(16)} is not TPM_ECC_NIST_P256 or P384`);
    if (x.length > curve.size || y.length > curve.size) throw reader.fail(`unique.x and unique.y must be at most ${curve.size} bytes on ${curve.name}`);
    jwk = { kty: 'EC', crv: curve.name, x: leftPad(x, curve.size).toString('base64url'), y: leftPad(y, curve.size).toString('base64url') };
  }
  reader.end();
  return {
    type: type === TPM_ALG.RSA ? 'rsa' : 'ecc', nameAlg, objectAttributes, authPolicy,
    key: checkedKey(jwk), name: nameOf(nameAlg, bytes),
  };
}

/** The Name of an object (Part 1, 16): its nameAlg, then the digest of its TPMT_PUBLIC by that algorithm. */
export function nameOf(nameAlg: number, publicArea: Buffer): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(nameAlg);
  return Buffer.concat([prefix, createHash(HASH_ALGORITHMS[nameAlg]!.name).update(publicArea).digest()]);
}

/** TPMT_SYM_DEF_OBJECT: TPM_ALG_NULL, or AES, SM4 or Camellia with keyBits and mode. */
function readSymmetric(reader: TpmReader): void {
  const algorithm = reader.u16('parameters.symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return;
  if (!SYMMETRIC_OBJECT_ALGORITHMS.has(algorithm)) throw reader.fail(`parameters.symmetric.algorithm 0x${algorithm.toString(16)} is not a TPMI_ALG_SYM_OBJECT`);
  reader.u16('parameters.symmetric.keyBits');
  reader.u16('parameters.symmetric.mode');
}

/**
 * A scheme (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KDF_SCHEME): TPM_ALG_NULL,
 * or one the table knows with its details, as 16-bit words (a hashAlg, and
 * ECDAA's count). An unknown scheme is refused: its size is unknown.
 */
function readScheme(reader: TpmReader, field: string, schemes: Readonly<Record<number, number>>): void {
  const scheme = reader.u16(field);
  if (scheme === TPM_ALG.NULL) return;
  const words = schemes[scheme];
  if (words === undefined) throw reader.fail(`${field} 0x${scheme.toString(16)} is not a scheme of this key type`);
  for (let word = words; word > 0; word -= 1) reader.u16(`${field} details`);
}

/** exponent 0 means the default 2^16 + 1 (Part 2, 12.2.3.5). */
function exponentBytes(exponent: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(exponent === 0 ? 65537 : exponent);
  return bytes;
}

/** A TPM2B_ECC_PARAMETER may drop leading zero bytes; the JWK needs the curve's full size. */
function leftPad(value: Buffer, size: number): Buffer {
  return Buffer.concat([Buffer.alloc(size - value.length), value]);
}

function checkedKey(jwk: Record<string, string>): CheckedKey {
  try {
    return checkPublicKey(spkiOfJwk(jwk));
  } catch (err) {
    if (err instanceof DomainError) throw new AttestationError('attStmt.pubArea', `the key is not accepted: ${err.detail}`);
    // node:crypto's own refusal of a JWK (a point not on the curve): still the device's bad input.
    throw new AttestationError('attStmt.pubArea', `the key is not accepted: ${(err as Error).message}`);
  }
}
