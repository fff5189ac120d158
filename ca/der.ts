import * as asn1js from 'asn1js';

/**
 * A minimal DER writer for the hot paths (certificates, and later CRLs and
 * OCSP responses). The constant parts of every structure are built once
 * with @peculiar/x509; this writes only the variable fields around them and
 * the lengths. Tests check the output byte for byte against @peculiar/x509
 * and with OpenSSL. Parsing untrusted input never happens here.
 */

export const TAG = {
  boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, oid: 0x06, utf8String: 0x0c,
  printableString: 0x13, utcTime: 0x17, generalizedTime: 0x18, sequence: 0x30, set: 0x31,
} as const;

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** tag | length | contents. */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const length = contents.reduce((sum, c) => sum + c.length, 0);
  return Buffer.concat([tlvHeader(tag, length), ...contents]);
}

/** tag | length, for contents written separately (a CRL's entries, streamed). */
export function tlvHeader(tag: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(length)]);
}

export const sequence = (...parts: Uint8Array[]): Buffer => tlv(TAG.sequence, ...parts);
export const set = (...parts: Uint8Array[]): Buffer => tlv(TAG.set, ...parts);
export const octetString = (bytes: Uint8Array): Buffer => tlv(TAG.octetString, bytes);
/** A BIT STRING of whole bytes (no unused bits). */
export const bitString = (bytes: Uint8Array): Buffer => tlv(TAG.bitString, Buffer.from([0]), bytes);
export const utf8String = (value: string): Buffer => tlv(TAG.utf8String, Buffer.from(value, 'utf8'));
export const printableString = (value: string): Buffer => tlv(TAG.printableString, Buffer.from(value, 'latin1'));
/** [n] EXPLICIT, constructed context-specific. */
export const explicit = (tagNumber: number, ...contents: Uint8Array[]): Buffer => tlv(0xa0 | tagNumber, ...contents);
export const TRUE = Buffer.from([TAG.boolean, 1, 0xff]);

/** A non-negative INTEGER from its big-endian magnitude: minimal, with a 0x00 when the top bit is set. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start += 1;
  const bytes = Buffer.from(magnitude.subarray(start));
  return bytes[0]! & 0x80 ? tlv(TAG.integer, Buffer.from([0]), bytes) : tlv(TAG.integer, bytes);
}

const oids = new Map<string, Buffer>();

/** An OBJECT IDENTIFIER, encoded once by asn1js and cached. */
export function oid(dotted: string): Buffer {
  let encoded = oids.get(dotted);
  if (!encoded) {
    encoded = Buffer.from(new asn1js.ObjectIdentifier({ value: dotted }).toBER());
    oids.set(dotted, encoded);
  }
  return encoded;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(TAG.utcTime, Buffer.from(`${pad(year % 100)}${rest}`, 'latin1'));
  return tlv(TAG.generalizedTime, Buffer.from(`${pad(year, 4)}${rest}`, 'latin1'));
}

/** Drops milliseconds: DER times carry whole seconds, and records must equal what the certificate says. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

export type NameAttribute = readonly [oid: string, type: 'printable' | 'utf8', value: string];

/** A distinguished name, one attribute per RDN, in the order given. */
export function name(attributes: readonly NameAttribute[]): Buffer {
  return sequence(...attributes.map(([type, kind, value]) =>
    set(sequence(oid(type), kind === 'printable' ? printableString(value) : utf8String(value)))));
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
export function extension(type: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(oid(type), TRUE, octetString(value)) : sequence(oid(type), octetString(value));
}

/** The contents and total size of the DER element at `offset` (definite lengths only: we parse only what we wrote). */
export function element(der: Uint8Array, offset = 0): { tag: number; contents: Buffer; end: number } {
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[start + i]!;
    start += count;
  }
  return { tag, contents: Buffer.from(der.buffer, der.byteOffset + start, length), end: start + length };
}
