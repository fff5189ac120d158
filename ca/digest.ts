import { createHash } from 'node:crypto';

/** SHA-256 of bytes, or of a string's UTF-8: the one helper every component uses. */
export function sha256(data: string | Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function sha256Hex(data: string | Uint8Array): string {
  return sha256(data).toString('hex');
}
