import { createHash } from 'node:crypto';

/** RFC 4122 appendix C: the name space of DNS names. */
export const NAMESPACE_DNS = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');

/** RFC 4122 4.3: a name-based UUID, version 5 (SHA-1), as its 16 bytes. */
export function uuidV5(namespace: Buffer, name: string): Buffer {
  const hash = createHash('sha1').update(namespace).update(name, 'utf8').digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return Buffer.from(hash);
}

export function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
