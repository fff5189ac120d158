import { createPublicKey, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { HsmError } from './errors.ts';
import { signingKeyTemplates } from './key-templates.ts';

/**
 * PKCS#11 3.0 names that pkcs11js (2.x) does not export: Edwards-curve keys
 * and pure EdDSA. SoftHSM 2.6 implements them when built on OpenSSL 1.1.1+.
 */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
/** CKA_EC_PARAMS of Ed25519: the DER of OID 1.3.101.112 (RFC 8410). */
const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');

/** An Ed25519 key pair in the token; the private half never leaves it. */
export interface Ed25519Handle {
  readonly label: string;
  readonly id: Buffer;
  readonly publicKey: KeyObject;
  /** The 32 bytes of the public key (RFC 8032), as signed notes name it. */
  readonly rawPublicKey: Buffer;
}

/** What the transparency log needs of a token: Ed25519 keys (registry/tlog/log-key.ts). */
export interface Ed25519Keys {
  /** Why the token cannot make or use Ed25519 keys, or undefined when it can. */
  ed25519Unsupported(): Promise<string | undefined>;
  createEd25519Key(label: string): Promise<Ed25519Handle>;
  findEd25519Key(label: string): Promise<Ed25519Handle | undefined>;
  /** A pure Ed25519 signature (RFC 8032) over the message, 64 bytes. */
  signEd25519(key: Ed25519Handle, message: Uint8Array): Promise<Buffer>;
}

/** The templates of a signing-only Ed25519 pair (hsm/key-templates.ts, as for the EC keys). */
export function ed25519Templates(label: string): { id: Buffer; publicTemplate: pkcs11js.Template; privateTemplate: pkcs11js.Template } {
  return signingKeyTemplates(label, CKK_EC_EDWARDS, ED25519_PARAMS);
}

/** CKA_EC_POINT of an Edwards key: the 32 bytes, in a DER OCTET STRING or bare (tokens differ). */
export function ed25519PublicKey(label: string, value: Buffer): { publicKey: KeyObject; raw: Buffer } {
  const raw = value.length === 34 && value[0] === 0x04 && value[1] === 32 ? value.subarray(2) : value;
  if (raw.length !== 32) throw new HsmError('unsupported', `key "${label}" is not an Ed25519 key (its public point has ${raw.length} bytes)`);
  return { publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }), raw: Buffer.from(raw) };
}
