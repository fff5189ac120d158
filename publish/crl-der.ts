import { bitString, explicit, extension, sequence, time, tlv, tlvHeader, unsignedInteger } from '../ca/der.ts';
import type { TbsSignature } from '../ca/signer.ts';

/**
 * A CRL (RFC 5280 5.1) written as DER, entry by entry, into large buffers:
 * a million entries cost about 40 MB of bytes and no object each, where
 * @peculiar/asn1-x509 needed 20 s and 1.25 GB for a tenth of that
 * (docs/developers/benchmarks.md). Byte-identical to @peculiar/asn1-x509 for the same
 * values (test/crl.test.ts).
 */

const CHUNK = 1 << 20;
const VERSION_2 = Buffer.from([0x02, 0x01, 0x01]);
/** Extensions { reasonCode (2.5.29.21) ENUMERATED }, up to the reason byte. */
const REASON_PREFIX = Buffer.from([0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01]);
const CRL_NUMBER = '2.5.29.20';

/** Appends revokedCertificates entries; a fixed handful of buffers whatever the count. */
export class CrlEntryWriter {
  private readonly chunks: Buffer[] = [];
  private current = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  count = 0;
  length = 0;

  /**
   * One entry: the serial as the hex the certificate store keeps, the
   * revocation time in seconds since the epoch, the RFC 5280 reason code
   * (unspecified is left out, RFC 5280 5.3.1).
   */
  add(serialHex: string, revokedAtSeconds: number, reason: number): void {
    let hex = serialHex;
    while (hex.length > 2 && hex.startsWith('00')) hex = hex.slice(2);
    const padded = Number.parseInt(hex.slice(0, 2), 16) >= 0x80 ? 1 : 0;
    const serialLength = hex.length / 2 + padded;
    const [year, month, day] = civilDate(Math.floor(revokedAtSeconds / 86_400));
    const utc = year >= 1950 && year < 2050;
    const contentLength = 2 + serialLength + (utc ? 15 : 17) + (reason === 0 ? 0 : REASON_PREFIX.length + 1);
    const size = 2 + contentLength;
    if (this.used + size > this.current.length) this.flush();
    const buf = this.current;
    let at = this.used;
    buf[at++] = 0x30;
    buf[at++] = contentLength;
    buf[at++] = 0x02;
    buf[at++] = serialLength;
    if (padded) buf[at++] = 0;
    at += buf.write(hex, at, 'hex');
    at = writeTime(buf, at, revokedAtSeconds, year, month, day, utc);
    if (reason !== 0) {
      at += REASON_PREFIX.copy(buf, at);
      buf[at++] = reason;
    }
    this.used = at;
    this.count += 1;
    this.length += size;
  }

  /** The entries written, in order. */
  finish(): Buffer[] {
    this.flush();
    return this.chunks;
  }

  private flush(): void {
    if (this.used > 0) this.chunks.push(this.current.subarray(0, this.used));
    this.current = Buffer.allocUnsafe(CHUNK);
    this.used = 0;
  }
}

/** Year, month, day of a day number since 1970-01-01 (H. Hinnant's civil_from_days): no Date object per entry. */
function civilDate(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** RFC 5280 4.1.2.5 time of an entry, written digit by digit: a million of them allocate nothing. */
function writeTime(buf: Buffer, start: number, seconds: number, year: number, month: number, day: number, utc: boolean): number {
  const secondOfDay = seconds - Math.floor(seconds / 86_400) * 86_400;
  let at = start;
  buf[at++] = utc ? 0x17 : 0x18;
  buf[at++] = utc ? 13 : 15;
  if (!utc) at = digits(buf, at, Math.floor(year / 100));
  at = digits(buf, at, year % 100);
  at = digits(buf, at, month);
  at = digits(buf, at, day);
  at = digits(buf, at, Math.floor(secondOfDay / 3600));
  at = digits(buf, at, Math.floor(secondOfDay / 60) % 60);
  at = digits(buf, at, secondOfDay % 60);
  buf[at++] = 0x5a; // Z
  return at;
}

function digits(buf: Buffer, at: number, value: number): number {
  buf[at] = 0x30 + Math.floor(value / 10);
  buf[at + 1] = 0x30 + (value % 10);
  return at + 2;
}

export interface CrlFields {
  signatureAlgorithm: Buffer;
  issuerName: Buffer;
  /** The issuer's AKI extension (type, critical, value). */
  authorityKeyIdentifier: { type: string; critical: boolean; value: Buffer };
  thisUpdate: Date;
  nextUpdate: Date;
  number: bigint;
  /** The URL this CRL is complete for (its issuingDistributionPoint, critical); absent: every certificate of the issuer. */
  distributionPoint?: string;
}

const ISSUING_DISTRIBUTION_POINT = '2.5.29.28';

/** IssuingDistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } } (RFC 5280 5.2.5). */
function issuingDistributionPoint(url: string): Buffer {
  return sequence(tlv(0xa0, tlv(0xa0, tlv(0x86, Buffer.from(url, 'ascii')))));
}

function integerBytes(value: bigint): Buffer {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

/** The parts of a TBSCertList, v2, with AKI and CRL number; revokedCertificates absent when there is none (RFC 5280 5.1.2.6). */
function tbsCertListParts(fields: CrlFields, entries: readonly Buffer[], entriesLength: number): { parts: Buffer[]; length: number } {
  const aki = fields.authorityKeyIdentifier;
  const extensions = explicit(0, sequence(
    extension(aki.type, aki.critical, aki.value),
    extension(CRL_NUMBER, false, unsignedInteger(integerBytes(fields.number))),
    ...(fields.distributionPoint === undefined ? [] : [extension(ISSUING_DISTRIBUTION_POINT, true, issuingDistributionPoint(fields.distributionPoint))]),
  ));
  const head = Buffer.concat([VERSION_2, fields.signatureAlgorithm, fields.issuerName, time(fields.thisUpdate), time(fields.nextUpdate)]);
  const revoked = entriesLength > 0 ? [tlvHeader(0x30, entriesLength), ...entries] : [];
  const contentLength = head.length + (entriesLength > 0 ? revoked[0]!.length + entriesLength : 0) + extensions.length;
  const parts = [tlvHeader(0x30, contentLength), head, ...revoked, extensions];
  return { parts, length: parts.reduce((sum, part) => sum + part.length, 0) };
}

export function encodeTbsCertList(fields: CrlFields, entries: readonly Buffer[], entriesLength: number): Buffer {
  return Buffer.concat(tbsCertListParts(fields, entries, entriesLength).parts);
}

/** Room before the TBSCertList for the CertificateList header, and after it for the signature. */
const HEADER_ROOM = 8;
const SIGNATURE_ROOM = 128;

/**
 * CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue },
 * written into one buffer: the entries are copied once, the TBSCertList is
 * signed where it lies and the header goes in front of it, so a million
 * entries need their 40 MB twice at most, never three times.
 */
export async function encodeSignedCrl(
  fields: CrlFields, entries: readonly Buffer[], entriesLength: number, sign: (tbs: Buffer) => Promise<TbsSignature>,
): Promise<Buffer> {
  const { parts, length } = tbsCertListParts(fields, entries, entriesLength);
  const buffer = Buffer.allocUnsafe(HEADER_ROOM + length + SIGNATURE_ROOM);
  let at = HEADER_ROOM;
  for (const part of parts) at += part.copy(buffer, at);
  const signed = await sign(buffer.subarray(HEADER_ROOM, at));
  const tail = Buffer.concat([signed.algorithm, bitString(signed.signature)]);
  at += tail.copy(buffer, at);
  const header = tlvHeader(0x30, at - HEADER_ROOM);
  header.copy(buffer, HEADER_ROOM - header.length);
  return buffer.subarray(HEADER_ROOM - header.length, at);
}

/** CertificateList from a TBSCertList already encoded. */
export function encodeCrl(tbs: Buffer, signed: TbsSignature): Buffer {
  return sequence(tbs, signed.algorithm, bitString(signed.signature));
}
