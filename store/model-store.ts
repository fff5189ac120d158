import type { Knex } from 'knex';
import { countRows, toDate } from './convert.ts';
import type { ModelRecord } from './types.ts';

export const MODEL_COLUMNS = ['name', 'hw_type', 'manufacturer', 'default_class', 'created_at', 'updated_at'];
const COLUMNS = MODEL_COLUMNS;

/** Device models declared by operators (docs/operators/factory.md). */
export class ModelStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async byName(name: string): Promise<ModelRecord | undefined> {
    const row = await this.db('models').select(COLUMNS).where({ name }).first();
    return row ? modelFromRow(row) : undefined;
  }

  /** Locks the model row for the transaction (or nothing, when it does not exist yet). */
  async byNameForUpdate(name: string): Promise<ModelRecord | undefined> {
    const row = await this.db('models').select(COLUMNS).where({ name }).forUpdate().first();
    return row ? modelFromRow(row) : undefined;
  }

  /** Inserts the model, or does nothing when a concurrent request did first; true when inserted. */
  async insert(record: ModelRecord): Promise<boolean> {
    const rows = await this.db('models')
      .insert({ name: record.name, hw_type: record.hwType, manufacturer: record.manufacturer, default_class: record.defaultClass, created_at: record.createdAt, updated_at: record.updatedAt })
      .onConflict('name')
      .ignore()
      .returning('name');
    return rows.length > 0;
  }

  async update(record: ModelRecord): Promise<void> {
    await this.db('models').where({ name: record.name }).update({ hw_type: record.hwType, manufacturer: record.manufacturer, default_class: record.defaultClass, updated_at: record.updatedAt });
  }

  async setDefaultClass(name: string, className: string | null, now: Date): Promise<void> {
    await this.db('models').where({ name }).update({ default_class: className, updated_at: now });
  }

  /** The model's legacy cut-off (docs/operators/firmware.md#legacy-releases), null when none is set. */
  async legacyFirmwareUntil(name: string): Promise<Date | null> {
    const row = await this.db('models').select('legacy_firmware_until').where({ name }).first();
    return row?.legacy_firmware_until ? toDate(row.legacy_firmware_until) : null;
  }

  async setLegacyFirmwareUntil(name: string, until: Date, now: Date): Promise<void> {
    await this.db('models').where({ name }).update({ legacy_firmware_until: until, updated_at: now });
  }

  async count(): Promise<number> {
    return countRows(this.db, 'models');
  }
}

export function modelFromRow(row: Record<string, unknown>): ModelRecord {
  return {
    name: String(row.name),
    hwType: String(row.hw_type),
    manufacturer: String(row.manufacturer),
    defaultClass: row.default_class === null || row.default_class === undefined ? null : String(row.default_class),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
