import type { Knex } from 'knex';
import { toDate, toDateOrNull, toStringOrNull } from './convert.ts';

/** A factory batch declared compromised, and how far its revocation has come. */
export interface CompromisedBatchRecord {
  batch: string;
  reason: number;
  actor: string;
  requestedAt: Date;
  /** The last device serial done, in serial order; null before the first chunk. */
  cursor: string | null;
  devices: number;
  certificates: number;
  finishedAt: Date | null;
}

/** Compromised factory batches (SPEC section 6): the record that refuses their births and enrollments, and the job's progress. */
export class BatchStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Declares a batch compromised, or returns the existing declaration (the first reason stands). */
  async declare(record: Pick<CompromisedBatchRecord, 'batch' | 'reason' | 'actor' | 'requestedAt'>): Promise<{ record: CompromisedBatchRecord; created: boolean }> {
    const inserted = await this.db('compromised_batches')
      .insert({ batch: record.batch, reason: record.reason, actor: record.actor, requested_at: record.requestedAt })
      .onConflict('batch').ignore()
      .returning('*');
    if (inserted.length > 0) return { record: fromRow(inserted[0]), created: true };
    return { record: (await this.find(record.batch))!, created: false };
  }

  async find(batch: string): Promise<CompromisedBatchRecord | undefined> {
    const row = await this.db('compromised_batches').where({ batch }).first();
    return row ? fromRow(row) : undefined;
  }

  async isCompromised(batch: string): Promise<boolean> {
    return (await this.db('compromised_batches').select('batch').where({ batch }).first()) !== undefined;
  }

  /** Records one chunk done: moves the cursor and adds its counts. */
  async advance(batch: string, cursor: string, devices: number, certificates: number): Promise<void> {
    await this.db('compromised_batches').where({ batch }).update({
      cursor,
      devices: this.db.raw('devices + ?', [devices]),
      certificates: this.db.raw('certificates + ?', [certificates]),
    });
  }

  async finish(batch: string, at: Date): Promise<void> {
    await this.db('compromised_batches').where({ batch }).update({ finished_at: at });
  }

  /** Revocations a stopped process left half done: resumed when the server starts. */
  async unfinished(): Promise<CompromisedBatchRecord[]> {
    return (await this.db('compromised_batches').whereNull('finished_at').orderBy('requested_at')).map(fromRow);
  }

  /** Device serials of a batch after `afterSerial`, in serial order. */
  async devicePage(batch: string, afterSerial: string, limit: number): Promise<string[]> {
    const rows = await this.db('devices').select('serial').where({ batch }).andWhere('serial', '>', afterSerial).orderBy('serial').limit(limit);
    return rows.map((row: { serial: string }) => row.serial);
  }
}

function fromRow(row: Record<string, unknown>): CompromisedBatchRecord {
  return {
    batch: String(row.batch),
    reason: Number(row.reason),
    actor: String(row.actor),
    requestedAt: toDate(row.requested_at),
    cursor: toStringOrNull(row.cursor),
    devices: Number(row.devices),
    certificates: Number(row.certificates),
    finishedAt: toDateOrNull(row.finished_at),
  };
}
