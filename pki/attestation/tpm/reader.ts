import { AttestationError } from '../attestation-object.ts';

/**
 * A bounds-checked reader of TPM 2.0 marshalled structures (TPM 2.0 Part 2:
 * big-endian integers, TPM2B = 16-bit size then bytes). Every read checks
 * the length first; what does not fit is an AttestationError naming the
 * structure, never a RangeError.
 */
export class TpmReader {
  private offset = 0;

  constructor(
    private readonly bytes: Buffer,
    /** The structure read, for the error (e.g. "attStmt.certInfo"). */
    readonly what: string,
  ) {}

  fail(detail: string): AttestationError {
    return new AttestationError(this.what, detail);
  }

  private take(length: number, field: string): Buffer {
    if (this.offset + length > this.bytes.length) throw this.fail(`ends inside ${field} (at byte ${this.offset}, ${length} needed, ${this.bytes.length - this.offset} left)`);
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  u8(field: string): number {
    return this.take(1, field)[0]!;
  }

  u16(field: string): number {
    return this.take(2, field).readUInt16BE(0);
  }

  u32(field: string): number {
    return this.take(4, field).readUInt32BE(0);
  }

  u64(field: string): bigint {
    return this.take(8, field).readBigUInt64BE(0);
  }

  /** A TPM2B: its size, at most `max` bytes (the structure's own bound), then the bytes. */
  sized(field: string, max: number, min = 0): Buffer {
    const size = this.u16(`${field} size`);
    if (size < min || size > max) throw this.fail(`${field} is ${size} bytes, must be ${min} to ${max}`);
    return Buffer.from(this.take(size, field));
  }

  /** The whole input was read: trailing bytes are refused, so one structure has one encoding. */
  end(): void {
    if (this.offset !== this.bytes.length) throw this.fail(`has ${this.bytes.length - this.offset} bytes after its last field`);
  }
}
