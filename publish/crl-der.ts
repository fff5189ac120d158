import { bitString, explicit, extension, sequence, time, tlvHeader, unsignedInteger } from '../ca/der.ts';
import type { TbsSignature } from '../ca/signer.ts';

/**
 * A CRL (RFC 5280 5.1) written as DER, entry by entry, into large buffers:
 * a million entries cost about 40 MB of bytes and no object each, where
 * @peculiar/asn1-x509 needed 20 s and 1.25 GB for a tenth of that
 * (PERFORMANCE.md). Byte-identical to @peculiar/asn1-x509 for the same
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
  private lastSecond = -1;
  private lastTime: Buffer = Buffer.alloc(0);
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
    if (revokedAtSeconds !== this.lastSecond) {
      this.lastSecond = revokedAtSeconds;
      this.lastTime = time(new Date(revokedAtSeconds * 1000));
    }
    const contentLength = 2 + serialLength + this.lastTime.length + (reason === 0 ? 0 : REASON_PREFIX.length + 1);
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
    at += this.lastTime.copy(buf, at);
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

export interface CrlFields {
  signatureAlgorithm: Buffer;
  issuerName: Buffer;
  /** The issuer's AKI extension (type, critical, value). */
  authorityKeyIdentifier: { type: string; critical: boolean; value: Buffer };
  thisUpdate: Date;
  nextUpdate: Date;
  number: bigint;
}

function integerBytes(value: bigint): Buffer {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

/** TBSCertList, v2, with AKI and CRL number; revokedCertificates absent when there is none (RFC 5280 5.1.2.6). */
export function encodeTbsCertList(fields: CrlFields, entries: readonly Buffer[], entriesLength: number): Buffer {
  const aki = fields.authorityKeyIdentifier;
  const extensions = explicit(0, sequence(
    extension(aki.type, aki.critical, aki.value),
    extension(CRL_NUMBER, false, unsignedInteger(integerBytes(fields.number))),
  ));
  const head = Buffer.concat([VERSION_2, fields.signatureAlgorithm, fields.issuerName, time(fields.thisUpdate), time(fields.nextUpdate)]);
  const revoked = entriesLength > 0 ? [tlvHeader(0x30, entriesLength), ...entries] : [];
  const contentLength = head.length + (entriesLength > 0 ? revoked[0]!.length + entriesLength : 0) + extensions.length;
  return Buffer.concat([tlvHeader(0x30, contentLength), head, ...revoked, extensions]);
}

/** CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue } */
export function encodeCrl(tbs: Buffer, signed: TbsSignature): Buffer {
  return sequence(tbs, signed.algorithm, bitString(signed.signature));
}
