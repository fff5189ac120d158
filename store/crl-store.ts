import type { Knex } from 'knex';
import { toBuffer, toDate } from './convert.ts';

export interface CrlRecord {
  issuerId: number;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  size: number;
  sha256: string;
}

/** One CRL entry as read for the writer: hex serial, seconds since the epoch, reason code. */
export type RevokedRow = [serial: string, revokedAtSeconds: number, reason: number];

/** Each CRL is stored in parts of this size: a million entries is ~40 MB, never one value. */
export const CRL_PART_BYTES = 1 << 20;
/** CRLs kept per issuer: the newest and the one before, for a process still serving it. */
const KEEP = 2;

/** CRLs, the marks revocations leave for them, and the revoked entries they list (docs/operators/revocation.md). */
export class CrlStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async newest(issuerId: number): Promise<CrlRecord | undefined> {
    const row = await this.db('crls').where({ issuer_id: issuerId }).orderBy('number', 'desc').first();
    return row ? fromRow(row) : undefined;
  }

  /** The DER of a stored CRL, from its parts. */
  async bytes(issuerId: number, number: bigint): Promise<Buffer> {
    const rows = await this.db('crl_parts').select('bytes').where({ issuer_id: issuerId, number: number.toString() }).orderBy('part');
    return Buffer.concat(rows.map((row: { bytes: unknown }) => toBuffer(row.bytes)));
  }

  /** Stores a CRL in parts and drops all but the newest KEEP of its issuer. */
  async insert(record: CrlRecord, der: Buffer): Promise<void> {
    const number = record.number.toString();
    await this.db('crls').insert({
      issuer_id: record.issuerId, number, this_update: record.thisUpdate, next_update: record.nextUpdate,
      entries: record.entries, size: record.size, sha256: record.sha256,
    });
    for (let part = 0, offset = 0; offset < der.length; part += 1, offset += CRL_PART_BYTES) {
      await this.db('crl_parts').insert({ issuer_id: record.issuerId, number, part, bytes: der.subarray(offset, offset + CRL_PART_BYTES) });
    }
    await this.db('crls').where({ issuer_id: record.issuerId }).whereNotIn(
      'number', this.db('crls').select('number').where({ issuer_id: record.issuerId }).orderBy('number', 'desc').limit(KEEP),
    ).delete();
  }

  /** A revocation leaves a mark for each issuer whose CRL it changes. */
  async mark(issuerIds: readonly number[]): Promise<void> {
    const unique = [...new Set(issuerIds)];
    if (unique.length > 0) await this.db('revocation_marks').insert(unique.map((id) => ({ issuer_id: id })));
  }

  async marked(issuerId: number): Promise<boolean> {
    return (await this.db('revocation_marks').select('id').where({ issuer_id: issuerId }).first()) !== undefined;
  }

  /**
   * Takes the marks of an issuer before its entries are read, in the CRL's
   * transaction: a revocation committed after this statement leaves its mark
   * for the next CRL, whatever its clock said.
   */
  async takeMarks(issuerId: number): Promise<void> {
    await this.db('revocation_marks').where({ issuer_id: issuerId }).delete();
  }

  /**
   * A page of an issuer's revoked certificates in serial order, after
   * `afterSerial`, leaving out those expired before `expiredBefore`; rows as
   * arrays, the times as whole seconds, to keep a million of them cheap.
   */
  async revokedPage(issuerId: number, afterSerial: string, expiredBefore: Date, limit: number): Promise<RevokedRow[]> {
    const { rows } = await this.db.raw(
      `select serial as s, extract(epoch from date_trunc('second', revoked_at))::float8 as t, revocation_reason as r
       from certificates
       where issuer_id = ? and revoked_at is not null and serial > ? and not_after >= ?
       order by serial limit ?`,
      [issuerId, afterSerial, expiredBefore, limit],
    );
    return (rows as Array<{ s: string; t: number; r: number }>).map(({ s, t, r }) => [s, t, r]);
  }
}

function fromRow(row: Record<string, unknown>): CrlRecord {
  return {
    issuerId: Number(row.issuer_id),
    number: BigInt(String(row.number)),
    thisUpdate: toDate(row.this_update),
    nextUpdate: toDate(row.next_update),
    entries: Number(row.entries),
    size: Number(row.size),
    sha256: String(row.sha256),
  };
}
