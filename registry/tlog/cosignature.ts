import { sign, verify, type KeyObject } from 'node:crypto';
import { COSIGNATURE_TYPE, keyHash, type ParsedVerifierKey } from './signed-note.ts';

/** The largest timestamp tlog-cosignature allows (2^63 - 1), far beyond any safe integer: a timestamp is a safe integer here. */
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

/**
 * C2SP tlog-cosignature, Ed25519 (type 0x04): the signed message is the
 * header line `cosignature/v1`, the line `time <POSIX seconds>`, then the
 * whole note text of the checkpoint (its final newline, no signature lines).
 */
export function cosignedMessage(noteText: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${noteText}`, 'utf8');
}

/** A cosignature line: `— <name> base64(key ID || u64 timestamp || Ed25519 signature)`. */
export function cosign(noteText: string, name: string, privateKey: KeyObject, rawPublicKey: Buffer, timestamp: number): string {
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(timestamp));
  const signature = sign(null, cosignedMessage(noteText, timestamp), privateKey);
  return `\u2014 ${name} ${Buffer.concat([keyHash(name, rawPublicKey, COSIGNATURE_TYPE), time, signature]).toString('base64')}`;
}

/**
 * Checks one signature line as a cosignature of `noteText` by `key` (a
 * type-0x04 verifier key): its name and key ID, its canonical base64, its
 * Ed25519 signature over the cosigned message. The timestamp when it holds.
 */
export function openCosignature(line: string, noteText: string, key: ParsedVerifierKey): { timestamp: number } | undefined {
  const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
  if (!match || match[1] !== key.name || key.type !== COSIGNATURE_TYPE) return undefined;
  const blob = Buffer.from(match[2]!, 'base64');
  if (blob.length !== 4 + 8 + 64 || blob.toString('base64') !== match[2] || !blob.subarray(0, 4).equals(key.hash)) return undefined;
  const timestamp = blob.readBigUInt64BE(4);
  if (timestamp > BigInt(MAX_TIMESTAMP)) return undefined;
  if (!verify(null, cosignedMessage(noteText, Number(timestamp)), key.publicKey, blob.subarray(12))) return undefined;
  return { timestamp: Number(timestamp) };
}

/** The note with cosignature lines appended after its own signatures, as signed-note allows: clients ignore keys they do not know. */
export function withCosignatures(note: string, lines: readonly string[]): string {
  return lines.length === 0 ? note : `${note}${lines.map((line) => `${line}\n`).join('')}`;
}
