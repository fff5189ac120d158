import type { Knex } from 'knex';
import { countRows } from './convert.ts';
import type { AuditEventRecord } from './types.ts';

const COLUMNS = ['seq', 'action', 'device_serial', 'canonical', 'hash'];

/** Rows of the append-only audit log; the chain rules live in registry/audit-log.ts. */
export class AuditStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async head(): Promise<AuditEventRecord | undefined> {
    const row = await this.db('audit_events').select(COLUMNS).orderBy('seq', 'desc').first();
    return row ? fromRow(row) : undefined;
  }

  async bySeq(seq: number): Promise<AuditEventRecord | undefined> {
    const row = await this.db('audit_events').select(COLUMNS).where({ seq }).first();
    return row ? fromRow(row) : undefined;
  }

  async insert(record: AuditEventRecord): Promise<void> {
    await this.db('audit_events').insert({
      seq: record.seq,
      action: record.action,
      device_serial: record.deviceSerial,
      canonical: record.canonical,
      hash: record.hash,
    });
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
    deviceSerial: (row.device_serial as string | null) ?? null,
    canonical: String(row.canonical),
    hash: String(row.hash),
  };
}
