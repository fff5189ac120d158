import type { Knex } from 'knex';
import { toBuffer, toDate, toDateOrNull } from './convert.ts';

/** The pre-signed OCSP responses of one certificate; `sha1`/`sha256` are null while the row waits for the signer. */
export interface OcspResponseRecord {
  serial: string;
  issuerId: number;
  /** The certificate's notAfter: the row leaves when it has passed. */
  notAfter: Date;
  sha1: Buffer | null;
  sha256: Buffer | null;
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  /** The database's clock when the row was written (clock_timestamp()); set by the store. */
  updatedAt?: Date;
}

/** What the signer needs to know of a certificate to answer for it. */
export interface OcspSubject {
  serial: string;
  issuerId: number;
  notAfter: Date;
  revokedAt: Date | null;
  revocationReason: number | null;
}

const COLUMNS = ['serial', 'issuer_id', 'not_after', 'sha1', 'sha256', 'this_update', 'next_update', 'updated_at'];

/**
 * Pre-signed OCSP responses (docs/operators/revocation.md), one row per unexpired
 * certificate. `updated_at` is the database's clock at the write, never a
 * process's: it is what every process compares to find what others changed.
 */
export class OcspStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async put(record: OcspResponseRecord): Promise<void> {
    await this.putMany([record]);
  }

  /** Stores signed responses, one statement for all of them (a chunk of a batch revocation is a thousand). */
  async putMany(records: readonly OcspResponseRecord[]): Promise<void> {
    if (records.length === 0) return;
    const now = this.db.raw('clock_timestamp()');
    await this.db('ocsp_responses')
      .insert(records.map((record) => ({
        serial: record.serial, issuer_id: record.issuerId, not_after: record.notAfter, sha1: record.sha1, sha256: record.sha256,
        this_update: record.thisUpdate, next_update: record.nextUpdate, updated_at: now,
      })))
      .onConflict('serial').merge(['sha1', 'sha256', 'this_update', 'next_update', 'updated_at']);
  }

  /**
   * Drops the responses of certificates whose status changed, in the
   * transaction that changes it: until the signer has made new ones the
   * responder answers tryLater, never the old `good`.
   */
  async markStale(serials: readonly string[]): Promise<void> {
    if (serials.length === 0) return;
    await this.db.raw(
      `insert into ocsp_responses (serial, issuer_id, not_after, updated_at)
       select serial, issuer_id, not_after, clock_timestamp() from certificates where serial = any(?)
       on conflict (serial) do update set sha1 = null, sha256 = null, this_update = null, next_update = null, updated_at = excluded.updated_at`,
      [[...serials]],
    );
  }

  /** A certificate's row, when that issuer issued it: another issuer's row is never read, so both cases look alike. */
  async find(serial: string, issuerId: number): Promise<OcspResponseRecord | undefined> {
    const row = await this.db('ocsp_responses').select(COLUMNS).where({ serial, issuer_id: issuerId }).first();
    return row ? fromRow(row) : undefined;
  }

  /** Whether an issuer still has an unexpired certificate (a retired CA answers OCSP until its last one expires). */
  async hasLive(issuerId: number, now: Date): Promise<boolean> {
    return (await this.db('ocsp_responses').select('serial').where({ issuer_id: issuerId }).where('not_after', '>', now).first()) !== undefined;
  }

  /** The database's clock: where the next changedSince starts. */
  async clock(): Promise<Date> {
    const { rows } = await this.db.raw('select clock_timestamp() as now');
    return toDate((rows as Array<{ now: unknown }>)[0]!.now);
  }

  /**
   * Rows written after a position of the database's clock, oldest first: how
   * each process keeps its cache in step with the others. The position is
   * (updated_at as the database prints it, serial): microseconds, which a
   * JavaScript Date would cut to milliseconds, and a tie-breaker for rows
   * one statement wrote at the same instant. `clock` is the database's clock
   * as the statement began, read in the same round trip: where the next sync
   * starts.
   */
  async changedSince(after: { at: string; serial: string }, limit: number): Promise<{ rows: OcspResponseRecord[]; next: { at: string; serial: string } | undefined; clock: Date }> {
    const { rows } = await this.db.raw(
      `select clock.now, o.* from (select clock_timestamp() as now) as clock
       left join lateral (
         select ${COLUMNS.join(', ')}, updated_at::text as position from ocsp_responses
         where (updated_at, serial) > (?::timestamptz, ?) order by updated_at, serial limit ?
       ) as o on true`,
      [after.at, after.serial, limit],
    );
    const list = (rows as Array<Record<string, unknown>>).filter((row) => row.serial !== null && row.serial !== undefined);
    const last = list.at(-1);
    return { rows: list.map(fromRow), next: last ? { at: String(last.position), serial: String(last.serial) } : undefined, clock: toDate((rows as Array<{ now: unknown }>)[0]!.now) };
  }

  /**
   * Whether `due` would find anything: one statement without locks, so an
   * idle round costs a single read instead of a transaction.
   */
  async anyDue(now: Date, refreshBefore: ReadonlyMap<number, Date>): Promise<boolean> {
    const issuerIds = [...refreshBefore.keys()];
    if (issuerIds.length === 0) return false;
    const perIssuer = issuerIds.map(() => '(o.issuer_id = ? and o.this_update < ?)').join(' or ');
    const bounds = [...refreshBefore].flatMap(([issuerId, before]) => [issuerId, before]);
    const latest = new Date(Math.max(...[...refreshBefore.values()].map((d) => d.getTime())));
    const { rows } = await this.db.raw(
      `select exists (select 1 from ocsp_responses o where o.sha1 is null and o.not_after > ? and o.issuer_id = any(?))
           or exists (select 1 from ocsp_responses o where o.this_update < ? and (${perIssuer}) and o.not_after > ?) as due`,
      [now, [...issuerIds], latest, ...bounds, now] as Knex.RawBinding[],
    );
    return (rows as Array<{ due: unknown }>)[0]!.due === true;
  }

  /**
   * Certificates whose responses must be signed, for the issuers whose
   * responders are here: stale ones first, then those produced before their
   * issuer's `refreshBefore` (earlier after a responder rotation). Rows are
   * locked, skipping those another process is signing, until the
   * transaction ends.
   */
  async due(now: Date, refreshBefore: ReadonlyMap<number, Date>, limit: number): Promise<OcspSubject[]> {
    const issuerIds = [...refreshBefore.keys()];
    if (issuerIds.length === 0) return [];
    const pick = async (condition: string, order: string, bindings: unknown[], count: number) => {
      if (count <= 0) return [];
      const { rows } = await this.db.raw(
        `select c.serial, c.issuer_id, c.not_after, c.revoked_at, c.revocation_reason
         from ocsp_responses o join certificates c on c.serial = o.serial
         where ${condition} and o.not_after > ? and o.issuer_id = any(?)
         ${order} limit ? for update of o skip locked`,
        [...bindings, now, [...issuerIds], count] as Knex.RawBinding[],
      );
      return (rows as Array<Record<string, unknown>>).map((row) => ({
        serial: String(row.serial), issuerId: Number(row.issuer_id), notAfter: toDate(row.not_after),
        revokedAt: toDateOrNull(row.revoked_at), revocationReason: row.revocation_reason === null ? null : Number(row.revocation_reason),
      }));
    };
    const stale = await pick('o.sha1 is null', '', [], limit);
    // The latest bound first, so the this_update index bounds the scan; then each issuer's own.
    const latest = new Date(Math.max(...[...refreshBefore.values()].map((d) => d.getTime())));
    const perIssuer = issuerIds.map(() => '(o.issuer_id = ? and o.this_update < ?)').join(' or ');
    const bounds = [...refreshBefore].flatMap(([issuerId, before]) => [issuerId, before]);
    return [...stale, ...(await pick(`o.this_update < ? and (${perIssuer})`, 'order by o.this_update', [latest, ...bounds], limit - stale.length))];
  }

  /** Per issuer: unexpired certificates, how many wait for a signature, and the oldest response (the console's OCSP freshness). */
  async freshness(now: Date): Promise<Array<{ issuerId: number; certificates: number; waiting: number; oldestThisUpdate: Date | null; earliestNextUpdate: Date | null }>> {
    const { rows } = await this.db.raw(
      `select issuer_id, count(*) as certificates, count(*) filter (where sha1 is null) as waiting,
              min(this_update) as oldest, min(next_update) as earliest
       from ocsp_responses where not_after > ? group by issuer_id order by issuer_id`,
      [now],
    );
    return (rows as Array<Record<string, unknown>>).map((row) => ({
      issuerId: Number(row.issuer_id), certificates: Number(row.certificates), waiting: Number(row.waiting),
      oldestThisUpdate: toDateOrNull(row.oldest), earliestNextUpdate: toDateOrNull(row.earliest),
    }));
  }

  /** Responses of expired certificates leave: nothing asks a relying party to trust those any more. */
  async deleteExpired(now: Date): Promise<number> {
    return this.db('ocsp_responses').where('not_after', '<=', now).delete();
  }
}

function fromRow(row: Record<string, unknown>): OcspResponseRecord {
  return {
    serial: String(row.serial),
    issuerId: Number(row.issuer_id),
    notAfter: toDate(row.not_after),
    sha1: row.sha1 === null ? null : toBuffer(row.sha1),
    sha256: row.sha256 === null ? null : toBuffer(row.sha256),
    thisUpdate: toDateOrNull(row.this_update),
    nextUpdate: toDateOrNull(row.next_update),
    updatedAt: toDate(row.updated_at),
  };
}
