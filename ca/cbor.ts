import { Encoder, Tag } from 'cbor-x';

/**
 * CBOR as SUIT and COSE want it: integer map keys (Maps, not objects), byte
 * strings as plain bstr (no typed-array tags), no cbor-x records, and
 * integers in their shortest form (RFC 8949 4.2.1).
 */
const encoder = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false, variableMapSize: true });

export function cbor(value: unknown): Buffer {
  return Buffer.from(encoder.encode(value));
}

/** An unsigned integer in its shortest encoding: cbor-x writes numbers above 2^32 as floats, and every BigInt in 8 bytes. */
export function uint(value: number): number | bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${value} is not an unsigned integer`);
  return value <= 0xffffffff ? value : BigInt(value);
}

export function tagged(tag: number, value: unknown): Tag {
  return new Tag(value, tag);
}
