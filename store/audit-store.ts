import type { Knex } from 'knex';
import { countRows, toStringOrNull } from './convert.ts';
import { LOCKS } from './locks.ts';
import type { AuditEventRecord } from './types.ts';

const COLUMNS = ['seq', 'action', 'device_serial', 'canonical', 'hash'];

/** An event before the chain: its canonical JSON up to `prev` and `seq`, which the chain adds. */
export interface PendingEvent {
  canonicalPrefix: string;
  action: string;
  deviceSerial: string | null;
}

/** Rows of the append-only audit log; the chain rules live in registry/audit/audit-log.ts. */
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

  /** An action's events, waiting for the chain (registry/audit/audit-log.ts): inside the action's transaction, no lock. */
  async insertPending(events: ReadonlyArray<PendingEvent>): Promise<void> {
    await this.db('audit_pending').insert(events.map((e) => ({ canonical_prefix: e.canonicalPrefix, action: e.action, device_serial: e.deviceSerial })));
  }

  /**
   * Under the chain lock: moves up to `limit` committed pending events, oldest
   * first, into the chain, in one statement; returns how many. Each event's
   * canonical JSON is completed from the head with `prev` and `seq` (they
   * sort last under RFC 8785) and hashed by the database, event after event
   * (a recursive query). Under READ COMMITTED the statement reads the head as
   * committed when it starts, which lockChain ensures is after every earlier
   * append. The caller's transaction makes the move all or nothing.
   */
  async chainPending(limit: number): Promise<number> {
    return this.chainMoved('delete from audit_pending where id in (select id from audit_pending order by id limit ?)', [limit], []);
  }

  /**
   * For a database only this transaction can write (PGlite): chains every
   * pending event left over, then `events`, in one statement, without
   * writing them as pending first.
   */
  async appendChained(events: ReadonlyArray<PendingEvent>): Promise<number> {
    return this.chainMoved('delete from audit_pending', [], events);
  }

  /** The chaining statement: the events `deleteSql` moves out of audit_pending, oldest first, then `events`. */
  private async chainMoved(deleteSql: string, deleteBindings: unknown[], events: ReadonlyArray<PendingEvent>): Promise<number> {
    const { rows } = await this.db.raw(
      `with recursive moved as (
         ${deleteSql}
         returning id, canonical_prefix, action, device_serial
       ), batch as (
         select coalesce((select array_agg(canonical_prefix order by id) from moved), '{}'::text[]) || ?::text[] as prefixes,
                coalesce((select array_agg(action order by id) from moved), '{}'::text[]) || ?::text[] as actions,
                coalesce((select array_agg(device_serial order by id) from moved), '{}'::text[]) || ?::text[] as devices,
                (select count(*) from moved) + ? as n
       ), head as (
         select coalesce(max(seq), 0) as seq, coalesce((select hash from audit_events order by seq desc limit 1), repeat('0', 64)) as hash from audit_events
       ), chain (ord, seq, hash, canonical) as (
         select 0, seq, hash, null::text from head
         union all
         select c.ord + 1, c.seq + 1, encode(sha256(convert_to(e.canonical, 'UTF8')), 'hex'), e.canonical
         from chain c cross join batch b cross join lateral (
           select b.prefixes[c.ord + 1] || '"prev":"' || c.hash || '","seq":' || (c.seq + 1) || '}' as canonical
         ) e
         where c.ord < b.n
       )
       insert into audit_events (seq, action, device_serial, canonical, hash)
       select c.seq, b.actions[c.ord], b.devices[c.ord], c.canonical, c.hash from chain c cross join batch b where c.ord > 0 order by c.ord
       returning seq`,
      [
        ...deleteBindings, events.map((e) => e.canonicalPrefix), events.map((e) => e.action), events.map((e) => e.deviceSerial ?? null), events.length,
      ] as Knex.RawBinding[],
    );
    return (rows as unknown[]).length;
  }

  async anyPending(): Promise<boolean> {
    return (await this.db('audit_pending').select('id').first()) !== undefined;
  }

  /** Events in chain order, a page at a time, starting after `afterSeq`. */
  async page(afterSeq: number, limit: number): Promise<AuditEventRecord[]> {
    const rows = await this.db('audit_events').select(COLUMNS).where('seq', '>', afterSeq).orderBy('seq').limit(limit);
    return rows.map(fromRow);
  }

  /** The first event of a device, or of any device of a batch: where an export's chain must start. */
  async firstSeqOf(scope: { batch?: string; serial?: string }): Promise<number | undefined> {
    const query = this.db('audit_events').min({ seq: 'seq' });
    if (scope.serial !== undefined) query.where({ device_serial: scope.serial });
    if (scope.batch !== undefined) query.whereIn('device_serial', this.db('devices').select('serial').where({ batch: scope.batch }));
    const row = await query.first();
    return row?.seq === null || row?.seq === undefined ? undefined : Number(row.seq);
  }

  async byDevice(deviceSerial: string): Promise<AuditEventRecord[]> {
    const rows = await this.db('audit_events').select(COLUMNS).where({ device_serial: deviceSerial }).orderBy('seq');
    return rows.map(fromRow);
  }

  /** The newest events of the given actions, newest first (an index on action and seq). */
  async recentByActions(actions: readonly string[], limit: number): Promise<AuditEventRecord[]> {
    const rows = await this.db('audit_events').select(COLUMNS).whereIn('action', actions).orderBy('seq', 'desc').limit(limit);
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
