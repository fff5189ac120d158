import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';

/** golang.org/x/mod/sumdb/note: the signature type of Ed25519 keys. */
export const ED25519_TYPE = 0x01;
/** C2SP tlog-cosignature: the key type of Ed25519 cosignatures (cosignature/v1, timestamped). */
export const COSIGNATURE_TYPE = 0x04;

/** A C2SP tlog-checkpoint body: origin, tree size, root hash. */
export interface CheckpointBody {
  origin: string;
  size: number;
  root: Buffer;
}

/** signed-note: a key name is non-empty, has no white space and no `+`. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name);
}

/** signed-note: the first 4 bytes of SHA-256(name || 0x0A || type || public key). */
export function keyHash(name: string, rawPublicKey: Buffer, type = ED25519_TYPE): Buffer {
  return createHash('sha256').update(name, 'utf8').update(Buffer.of(0x0a, type)).update(rawPublicKey).digest().subarray(0, 4);
}

/** The verifier key (`<name>+<hex key hash>+<base64(type || public key)>`) that Go's note.NewVerifier reads. */
export function verifierKey(name: string, rawPublicKey: Buffer, type = ED25519_TYPE): string {
  return `${name}+${keyHash(name, rawPublicKey, type).toString('hex')}+${Buffer.concat([Buffer.of(type), rawPublicKey]).toString('base64')}`;
}

/** An Ed25519 verifier key read back: a log's (type 0x01) or a witness's (type 0x04). */
export interface ParsedVerifierKey {
  name: string;
  type: number;
  rawPublicKey: Buffer;
  publicKey: KeyObject;
  /** The 4-byte key hash its signature lines start with. */
  hash: Buffer;
}

/** Ed25519 public key from its 32 raw bytes (SPKI prefix of RFC 8410). */
export function ed25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
}

/**
 * Reads `<name>+<hex key hash>+<base64(type || key)>`; undefined unless the
 * name is valid, the type is one of `types`, the key is 32 bytes, the base64
 * canonical and the hash the key's own.
 */
export function parseVerifierKey(text: string, types: readonly number[]): ParsedVerifierKey | undefined {
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
  if (!match || !isValidKeyName(match[1]!)) return undefined;
  const blob = Buffer.from(match[3]!, 'base64');
  if (blob.toString('base64') !== match[3] || blob.length !== 33 || !types.includes(blob[0]!)) return undefined;
  const [name, type, rawPublicKey] = [match[1]!, blob[0]!, blob.subarray(1)];
  const hash = keyHash(name, rawPublicKey, type);
  if (hash.toString('hex') !== match[2]) return undefined;
  return { name, type, rawPublicKey, publicKey: ed25519PublicKey(rawPublicKey), hash };
}

/** A note split as signed-note defines it: the text (ending in a newline) and its signature lines. */
export function splitNote(note: string): { text: string; signatures: string[] } | undefined {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) return undefined;
  return { text: note.slice(0, split + 1), signatures: note.slice(split + 2, -1).split('\n') };
}

/** tlog-checkpoint: the origin line, the decimal size, the base64 root hash, each ending in a newline. */
export function checkpointText(body: CheckpointBody): string {
  return `${body.origin}\n${body.size}\n${body.root.toString('base64')}\n`;
}

/** signed-note: the text, a blank line, and one line per signature: `— <name> <base64(key hash || signature)>`. */
export function signedNote(text: string, name: string, rawPublicKey: Buffer, signature: Buffer): string {
  return `${text}\n\u2014 ${name} ${Buffer.concat([keyHash(name, rawPublicKey), signature]).toString('base64')}\n`;
}

/**
 * Opens a checkpoint note signed by the given key (other signatures are
 * ignored, as signed-note allows); undefined when it is malformed or the
 * key's signature is missing or wrong.
 */
export function openCheckpoint(note: string, name: string, publicKey: KeyObject, rawPublicKey: Buffer): CheckpointBody | undefined {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) return undefined;
  const text = note.slice(0, split + 1);
  const hash = keyHash(name, rawPublicKey);
  const signed = note.slice(split + 2, -1).split('\n').some((line) => {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (!match || match[1] !== name) return false;
    const blob = Buffer.from(match[2]!, 'base64');
    return blob.length === 68 && blob.subarray(0, 4).equals(hash) && verifySignature(null, Buffer.from(text, 'utf8'), publicKey, blob.subarray(4));
  });
  if (!signed) return undefined;
  const lines = text.split('\n');
  const [origin, size, root] = lines;
  if (lines.length < 4 || !origin || !/^(0|[1-9]\d{0,15})$/.test(size ?? '') || !root) return undefined;
  const rootHash = Buffer.from(root, 'base64');
  if (rootHash.length !== 32 || rootHash.toString('base64') !== root) return undefined;
  return { origin, size: Number(size), root: rootHash };
}
