import type { Knex } from 'knex';
import { toBuffer, toDate } from './convert.ts';

/** The shard of an issuer's whole CRL (the one every certificate without a shard is on). */
export const WHOLE_CRL = -1;

export interface CrlRecord {
  issuerId: number;
  /** WHOLE_CRL, or the shard this CRL covers. */
  shard: number;
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

  async newest(issuerId: number, shard = WHOLE_CRL): Promise<CrlRecord | undefined> {
    const row = await this.db('crls').where({ issuer_id: issuerId, shard }).orderBy('number', 'desc').first();
    return row ? fromRow(row) : undefined;
  }

  /** The DER of a stored CRL, from its parts. */
  async bytes(issuerId: number, number: bigint, shard = WHOLE_CRL): Promise<Buffer> {
    const rows = await this.db('crl_parts').select('bytes').where({ issuer_id: issuerId, shard, number: number.toString() }).orderBy('part');
    return Buffer.concat(rows.map((row: { bytes: unknown }) => toBuffer(row.bytes)));
  }

  /** Stores a CRL in parts and drops all but the newest KEEP of its issuer and shard. */
  async insert(record: CrlRecord, der: Buffer): Promise<void> {
    const number = record.number.toString();
    const key = { issuer_id: record.issuerId, shard: record.shard };
    await this.db('crls').insert({
      ...key, number, this_update: record.thisUpdate, next_update: record.nextUpdate,
      entries: record.entries, size: record.size, sha256: record.sha256,
    });
    for (let part = 0, offset = 0; offset < der.length; part += 1, offset += CRL_PART_BYTES) {
      await this.db('crl_parts').insert({ ...key, number, part, bytes: der.subarray(offset, offset + CRL_PART_BYTES) });
    }
    await this.db('crls').where(key).whereNotIn(
      'number', this.db('crls').select('number').where(key).orderBy('number', 'desc').limit(KEEP),
    ).delete();
  }

  /** A revocation leaves a mark for each CRL it changes: the issuer's, and the shard's of each certificate that has one. */
  async mark(serials: readonly string[]): Promise<void> {
    if (serials.length === 0) return;
    await this.db.raw(
      `insert into revocation_marks (issuer_id, shard) select distinct issuer_id, coalesce(crl_shard, ?) from certificates where serial = any(?)`,
      [WHOLE_CRL, [...serials]],
    );
  }

  async marked(issuerId: number, shard = WHOLE_CRL): Promise<boolean> {
    return (await this.db('revocation_marks').select('id').where({ issuer_id: issuerId, shard }).first()) !== undefined;
  }

  /**
   * Takes the marks of an issuer's CRL before its entries are read, in the CRL's
   * transaction: a revocation committed after this statement leaves its mark
   * for the next CRL, whatever its clock said.
   */
  async takeMarks(issuerId: number, shard = WHOLE_CRL): Promise<void> {
    await this.db('revocation_marks').where({ issuer_id: issuerId, shard }).delete();
  }

  /** The newest CRL of each of an issuer's shards (and of its whole CRL), and the shards revocations marked: two statements for all of them. */
  async overview(issuerId: number): Promise<{ newest: Map<number, CrlRecord>; marked: Set<number> }> {
    const rows = await this.db('crls').distinctOn('shard').where({ issuer_id: issuerId }).orderBy([{ column: 'shard' }, { column: 'number', order: 'desc' }]);
    const marks = await this.db('revocation_marks').distinct('shard').where({ issuer_id: issuerId });
    return {
      newest: new Map(rows.map((row: Record<string, unknown>) => [Number(row.shard), fromRow(row)])),
      marked: new Set(marks.map((row: { shard: unknown }) => Number(row.shard))),
    };
  }

  /** How many shards an issuer's certificates were issued into (the highest shard + 1; 0: none). */
  async shardsUsed(issuerId: number): Promise<number> {
    const [row] = await this.db('certificates').max<{ m: number | null }[]>({ m: 'crl_shard' }).where({ issuer_id: issuerId }).whereNotNull('crl_shard');
    return row?.m === null || row?.m === undefined ? 0 : Number(row.m) + 1;
  }

  /**
   * A page of an issuer's revoked certificates in serial order, after
   * `afterSerial`, leaving out those expired before `expiredBefore`; rows as
   * arrays, the times as whole seconds, to keep a million of them cheap.
   */
  async revokedPage(issuerId: number, shard: number, afterSerial: string, expiredBefore: Date, limit: number): Promise<RevokedRow[]> {
    const { rows } = await this.db.raw(
      `select serial as s, extract(epoch from date_trunc('second', revoked_at))::float8 as t, revocation_reason as r
       from certificates
       where issuer_id = ? and revoked_at is not null and ${shard === WHOLE_CRL ? 'crl_shard is null' : 'crl_shard = ?'} and serial > ? and not_after >= ?
       order by serial limit ?`,
      shard === WHOLE_CRL ? [issuerId, afterSerial, expiredBefore, limit] : [issuerId, shard, afterSerial, expiredBefore, limit],
    );
    return (rows as Array<{ s: string; t: number; r: number }>).map(({ s, t, r }) => [s, t, r]);
  }
}

function fromRow(row: Record<string, unknown>): CrlRecord {
  return {
    issuerId: Number(row.issuer_id),
    shard: Number(row.shard ?? WHOLE_CRL),
    number: BigInt(String(row.number)),
    thisUpdate: toDate(row.this_update),
    nextUpdate: toDate(row.next_update),
    entries: Number(row.entries),
    size: Number(row.size),
    sha256: String(row.sha256),
  };
}
