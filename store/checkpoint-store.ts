import type { Knex } from 'knex';
import { toBuffer } from './convert.ts';
import type { CheckpointRecord } from './types.ts';

/** Signed checkpoints of the audit chain head (SPEC section 7). */
export class CheckpointStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: CheckpointRecord): Promise<void> {
    await this.db('audit_checkpoints').insert({ seq: record.seq, canonical: record.canonical, signature: record.signature });
  }

  async all(): Promise<CheckpointRecord[]> {
    const rows = await this.db('audit_checkpoints').select('seq', 'canonical', 'signature').orderBy('id');
    return rows.map((row: Record<string, unknown>) => ({ seq: Number(row.seq), canonical: String(row.canonical), signature: toBuffer(row.signature) }));
  }

  async latest(): Promise<CheckpointRecord | undefined> {
    const row = await this.db('audit_checkpoints').select('seq', 'canonical', 'signature').orderBy('id', 'desc').first();
    return row ? { seq: Number(row.seq), canonical: String(row.canonical), signature: toBuffer(row.signature) } : undefined;
  }
}
