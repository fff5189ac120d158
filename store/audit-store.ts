import type { Knex } from 'knex';
import { countRows, toStringOrNull } from './convert.ts';
import { LOCKS } from './locks.ts';
import type { AuditEventRecord } from './types.ts';

const COLUMNS = ['seq', 'action', 'device_serial', 'canonical', 'hash'];

/** Rows of the append-only audit log; the chain rules live in registry/audit-log.ts. */
export class AuditStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /**
   * Takes the chain's advisory lock until the transaction ends, so appends
   * from every process form one chain. The append reads the chain head after
   * taking the lock, which relies on READ COMMITTED: each statement sees what
   * the previous holder committed, where REPEATABLE READ would read its old
   * snapshot and fork the chain. Refuses any other isolation level. As the
   * lock is held until commit, the append must be the last statement of its
   * transaction (AuditLog.record arranges that), or every other audited action
   * waits for whatever follows it.
   */
  async lockChain(): Promise<void> {
    if (!this.db.isTransaction) throw new Error('audit events are appended inside the transaction of their action');
    const { rows } = await this.db.raw('select pg_advisory_xact_lock(hashtext(?)), current_setting(?) as isolation', [LOCKS.auditChain, 'transaction_isolation']);
    const isolation = (rows as Array<{ isolation: string }>)[0]?.isolation;
    if (isolation !== 'read committed') throw new Error(`audit appends need READ COMMITTED, not ${isolation}`);
  }

  async head(): Promise<AuditEventRecord | undefined> {
    const row = await this.db('audit_events').select(COLUMNS).orderBy('seq', 'desc').first();
    return row ? fromRow(row) : undefined;
  }

  async bySeq(seq: number): Promise<AuditEventRecord | undefined> {
    const row = await this.db('audit_events').select(COLUMNS).where({ seq }).first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Appends one event after the current head in one statement: the caller
   * gives the event's RFC 8785 canonical JSON without its last two members
   * (`prev` and `seq` sort after every other key), and the database adds
   * them from the head and computes the SHA-256. Under READ COMMITTED the
   * statement reads the head as committed when it starts, which lockChain
   * ensures is after every earlier append.
   */
  async appendAfterHead(canonicalPrefix: string, action: string, deviceSerial: string | null): Promise<{ seq: number; hash: string }> {
    const { rows } = await this.db.raw(
      `with head as (
         select coalesce(max(seq), 0) as seq, coalesce((select hash from audit_events order by seq desc limit 1), repeat('0', 64)) as hash from audit_events
       ), event as (
         select seq + 1 as seq, ? || '"prev":"' || hash || '","seq":' || (seq + 1) || '}' as canonical from head
       )
       insert into audit_events (seq, action, device_serial, canonical, hash)
       select seq, ?, ?, canonical, encode(sha256(convert_to(canonical, 'UTF8')), 'hex') from event
       returning seq, hash`,
      [canonicalPrefix, action, deviceSerial],
    );
    const row = (rows as Array<{ seq: unknown; hash: string }>)[0]!;
    return { seq: Number(row.seq), hash: row.hash };
  }

  /** Events in chain order, a page at a time, starting after `afterSeq`. */
  async page(afterSeq: number, limit: number): Promise<AuditEventRecord[]> {
    const rows = await this.db('audit_events').select(COLUMNS).where('seq', '>', afterSeq).orderBy('seq').limit(limit);
    return rows.map(fromRow);
  }

  async byDevice(deviceSerial: string): Promise<AuditEventRecord[]> {
    const rows = await this.db('audit_events').select(COLUMNS).where({ device_serial: deviceSerial }).orderBy('seq');
    return rows.map(fromRow);
  }

  async count(): Promise<number> {
    return countRows(this.db, 'audit_events');
  }
}

function fromRow(row: Record<string, unknown>): AuditEventRecord {
  return {
    seq: Number(row.seq),
    action: String(row.action),
    deviceSerial: toStringOrNull(row.device_serial),
    canonical: String(row.canonical),
    hash: String(row.hash),
  };
}
