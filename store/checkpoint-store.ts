import type { Knex } from 'knex';
import { toBuffer } from './convert.ts';
import type { CheckpointRecord } from './types.ts';

const COLUMNS = ['seq', 'canonical', 'signature'];

/** Signed checkpoints of the audit chain head (docs/auditors/audit-log.md). */
export class CheckpointStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: CheckpointRecord): Promise<void> {
    await this.db('audit_checkpoints').insert({ seq: record.seq, canonical: record.canonical, signature: record.signature });
  }

  async all(): Promise<CheckpointRecord[]> {
    return (await this.db('audit_checkpoints').select(COLUMNS).orderBy('id')).map(fromRow);
  }

  async latest(): Promise<CheckpointRecord | undefined> {
    const row = await this.db('audit_checkpoints').select(COLUMNS).orderBy('id', 'desc').first();
    return row ? fromRow(row) : undefined;
  }
}

function fromRow(row: Record<string, unknown>): CheckpointRecord {
  return { seq: Number(row.seq), canonical: String(row.canonical), signature: toBuffer(row.signature) };
}
