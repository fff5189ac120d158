import { AsnConvert } from '@peculiar/asn1-schema';

/**
 * Parses untrusted DER with @peculiar/asn1-schema and accepts it only when it
 * encodes back to the same bytes. The schema parser is lenient (BER lengths,
 * a SET where a SEQUENCE belongs, unused bits in a BIT STRING): the round
 * trip refuses everything but the one DER encoding of the value.
 */
export function parseStrictDer<T>(der: Uint8Array, schema: new () => T, error: () => Error): T {
  let parsed: T;
  let again: Buffer;
  try {
    parsed = AsnConvert.parse(der, schema);
    again = Buffer.from(AsnConvert.serialize(parsed));
  } catch {
    throw error();
  }
  if (!again.equals(Buffer.from(der.buffer, der.byteOffset, der.byteLength))) throw error();
  return parsed;
}
