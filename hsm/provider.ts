import type { KeyObject } from 'node:crypto';
import type { Curve } from './curves.ts';

/**
 * A key pair in the token. The recorded CKA_ID (`id`) is what finds it; the
 * label only names it for people. The private half never leaves the token.
 */
export interface KeyHandle {
  readonly label: string;
  readonly id: Buffer;
  readonly curve: Curve;
  readonly publicKey: KeyObject;
}

/**
 * What the CA needs of a key store (after smallstep's KeyManager): create a
 * key, find it again, sign with it. Implementations know nothing of X.509.
 */
export interface KeyProvider {
  createKey(label: string, curve: Curve): Promise<KeyHandle>;
  /** The key with this label, undefined when there is none; two is an error that names the label. */
  findKey(label: string): Promise<KeyHandle | undefined>;
  /** The key with this CKA_ID, undefined when there is none; two is an error. */
  findKeyById(id: Buffer): Promise<KeyHandle | undefined>;
  /** Signs data (hashing it with the curve's hash); returns raw r|s as WebCrypto does. */
  sign(key: KeyHandle, data: Uint8Array): Promise<Buffer>;
  /** Destroys both halves of a key (by CKA_ID); used only to undo a ceremony that did not commit. */
  destroyKey(key: KeyHandle): Promise<void>;
  /** Throws when the token does not answer (readiness checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
