import type { Knex } from 'knex';
import { ClaimStore } from './claim-store.ts';
import { toDate, toDateOrNull, toStringOrNull } from './convert.ts';
import { DeviceStore } from './device-store.ts';

/**
 * What a compromise covers, by its key in compromised_batches: a factory
 * batch (its name), or a withdrawn manufacturer (`manufacturer:<id>`) or one
 * of its CA certificates (`manufacturer:<id>:<sha256>`). Batch names cannot
 * hold a colon, so the keys never meet.
 */
export type CompromiseScope = { batch: string } | { manufacturer: string; certificate?: string };

export function compromiseScope(key: string): CompromiseScope {
  const [kind, manufacturer, certificate] = key.split(':');
  if (kind !== 'manufacturer' || manufacturer === undefined) return { batch: key };
  return certificate ? { manufacturer, certificate } : { manufacturer };
}

export function manufacturerScopeKey(manufacturer: string, certificate?: string): string {
  return certificate ? `manufacturer:${manufacturer}:${certificate}` : `manufacturer:${manufacturer}`;
}

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

/** Compromised factory batches (docs/operators/revocation.md): the record that refuses their births and enrollments, and the job's progress. */
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

  /** Device serials of a compromise scope (a batch, a manufacturer, or the devices under one of its CA certificates) after `afterSerial`, in serial order. */
  async devicePage(key: string, afterSerial: string, limit: number): Promise<string[]> {
    const scope = compromiseScope(key);
    if ('manufacturer' in scope) {
      return scope.certificate
        ? new ClaimStore(this.db).serialsThrough(scope.manufacturer, scope.certificate, afterSerial, limit)
        : new DeviceStore(this.db).serialsOfManufacturer(scope.manufacturer, afterSerial, limit);
    }
    const { batch } = scope;
    // A factory batch is ours: a manufacturer's lot of the same name is not in it.
    const rows = await this.db('devices').select('serial').where({ batch, manufacturer: 'self' }).andWhere('serial', '>', afterSerial).orderBy('serial').limit(limit);
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
