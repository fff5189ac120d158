import type { Knex } from 'knex';
import { toBuffer, toDate, toDateOrNull } from './convert.ts';

/** The pre-signed OCSP responses of one certificate; `sha1`/`sha256` are null while the row waits for the signer. */
export interface OcspResponseRecord {
  serial: string;
  issuerId: number;
  sha1: Buffer | null;
  sha256: Buffer | null;
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  updatedAt: Date;
}

/** What the signer needs to know of a certificate to answer for it. */
export interface OcspSubject {
  serial: string;
  issuerId: number;
  revokedAt: Date | null;
  revocationReason: number | null;
}

const COLUMNS = ['serial', 'issuer_id', 'sha1', 'sha256', 'this_update', 'next_update', 'updated_at'];

/** Pre-signed OCSP responses (SPEC section 6), one row per certificate. */
export class OcspStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async put(record: OcspResponseRecord): Promise<void> {
    await this.putMany([record]);
  }

  /** Stores signed responses, one statement for all of them (a chunk of a batch revocation is a thousand). */
  async putMany(records: readonly OcspResponseRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.db('ocsp_responses')
      .insert(records.map((record) => ({
        serial: record.serial, issuer_id: record.issuerId, sha1: record.sha1, sha256: record.sha256,
        this_update: record.thisUpdate, next_update: record.nextUpdate, updated_at: record.updatedAt,
      })))
      .onConflict('serial').merge(['sha1', 'sha256', 'this_update', 'next_update', 'updated_at']);
  }

  /**
   * Drops the responses of certificates whose status changed, in the
   * transaction that changes it: until the signer has made new ones the
   * responder answers tryLater, never the old `good`.
   */
  async markStale(serials: readonly string[], now: Date): Promise<void> {
    if (serials.length === 0) return;
    await this.db.raw(
      `insert into ocsp_responses (serial, issuer_id, updated_at)
       select serial, issuer_id, ? from certificates where serial = any(?)
       on conflict (serial) do update set sha1 = null, sha256 = null, this_update = null, next_update = null, updated_at = excluded.updated_at`,
      [now, [...serials]],
    );
  }

  async find(serial: string): Promise<OcspResponseRecord | undefined> {
    const row = await this.db('ocsp_responses').select(COLUMNS).where({ serial }).first();
    return row ? fromRow(row) : undefined;
  }

  /** Rows changed since a time: how each process keeps its cache in step with the others. */
  async changedSince(since: Date, limit: number): Promise<OcspResponseRecord[]> {
    const rows = await this.db('ocsp_responses').select(COLUMNS).where('updated_at', '>', since).orderBy('updated_at').limit(limit);
    return rows.map(fromRow);
  }

  /**
   * Certificates whose responses must be signed: stale ones first, then
   * those produced before `refreshBefore`, unexpired only. Rows are locked
   * (skipping rows another process is signing) until the transaction ends.
   */
  async due(now: Date, refreshBefore: Date, limit: number): Promise<OcspSubject[]> {
    const { rows } = await this.db.raw(
      `select c.serial, c.issuer_id, c.revoked_at, c.revocation_reason
       from ocsp_responses o join certificates c on c.serial = o.serial
       where o.serial in (
         (select serial from ocsp_responses where sha1 is null limit ?)
         union all
         (select serial from ocsp_responses where this_update < ? order by this_update limit ?)
       ) and c.not_after > ?
       limit ?
       for update of o skip locked`,
      [limit, refreshBefore, limit, now, limit],
    );
    return (rows as Array<Record<string, unknown>>).map((row) => ({
      serial: String(row.serial),
      issuerId: Number(row.issuer_id),
      revokedAt: toDateOrNull(row.revoked_at),
      revocationReason: row.revocation_reason === null ? null : Number(row.revocation_reason),
    }));
  }

  /** Stale rows of expired certificates are not signed again: they leave the refresh queue. */
  async dropExpiredStale(now: Date): Promise<number> {
    return this.db('ocsp_responses')
      .whereNull('sha1')
      .whereIn('serial', this.db('certificates').select('serial').where('not_after', '<=', now))
      .delete();
  }
}

function fromRow(row: Record<string, unknown>): OcspResponseRecord {
  return {
    serial: String(row.serial),
    issuerId: Number(row.issuer_id),
    sha1: row.sha1 === null ? null : toBuffer(row.sha1),
    sha256: row.sha256 === null ? null : toBuffer(row.sha256),
    thisUpdate: toDateOrNull(row.this_update),
    nextUpdate: toDateOrNull(row.next_update),
    updatedAt: toDate(row.updated_at),
  };
}
