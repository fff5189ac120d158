import { createHash } from 'node:crypto';
import { DomainError } from '../../../errors/domain-error.ts';
import { checkPublicKey, spkiOfJwk, type CheckedKey } from '../../public-key.ts';
import { AttestationError } from '../attestation-object.ts';
import { ECC_CURVES, HASH_ALGORITHMS, MAX_DIGEST, MAX_ECC_PARAMETER, MAX_RSA_KEY, TPM_ALG } from './constants.ts';
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
  if (!hash) throw reader.fail(`nameAlg 0x${nameAlg.toString(16)} is not SHA-1, SHA-256, SHA-384 or SHA-512`);
  const objectAttributes = reader.u32('objectAttributes');
  const authPolicy = reader.sized('authPolicy', MAX_DIGEST);
  readSymmetric(reader);
  let jwk: Record<string, string>;
  if (type === TPM_ALG.RSA) {
    readScheme(reader, 'parameters.scheme', (scheme) => scheme === TPM_ALG.RSAES ? 0 : 1);
    reader.u16('parameters.keyBits');
    const exponent = reader.u32('parameters.exponent');
    const modulus = reader.sized('unique', MAX_RSA_KEY, 1);
    jwk = { kty: 'RSA', n: modulus.toString('base64url'), e: exponentBytes(exponent).toString('base64url') };
  } else {
    readScheme(reader, 'parameters.scheme', (scheme) => scheme === TPM_ALG.ECDAA ? 2 : 1);
    const curveId = reader.u16('parameters.curveID');
    readScheme(reader, 'parameters.kdf', () => 1);
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

/** TPMT_SYM_DEF_OBJECT: TPM_ALG_NULL, or an algorithm with keyBits and mode. */
function readSymmetric(reader: TpmReader): void {
  if (reader.u16('parameters.symmetric.algorithm') === TPM_ALG.NULL) return;
  reader.u16('parameters.symmetric.keyBits');
  reader.u16('parameters.symmetric.mode');
}

/** A scheme (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KDF_SCHEME): TPM_ALG_NULL, or the scheme and its details (hashAlg, and ECDAA's count). */
function readScheme(reader: TpmReader, field: string, detailWords: (scheme: number) => number): void {
  const scheme = reader.u16(field);
  if (scheme === TPM_ALG.NULL) return;
  for (let word = detailWords(scheme); word > 0; word -= 1) reader.u16(`${field} details`);
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
