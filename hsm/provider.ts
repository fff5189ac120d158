import type { KeyObject } from 'node:crypto';
import type { Curve } from './curves.ts';

/** A key pair in the token, found by label and id; the private half never leaves it. */
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
  /** The key with this label, undefined when there is none; two is an error. */
  findKey(label: string): Promise<KeyHandle | undefined>;
  /** Signs data (hashing it with the curve's hash); returns raw r|s as WebCrypto does. */
  sign(key: KeyHandle, data: Uint8Array): Promise<Buffer>;
  /** Destroys both halves of a key; used only to undo a failed init. */
  destroyKey(key: KeyHandle): Promise<void>;
  close(): Promise<void>;
}
