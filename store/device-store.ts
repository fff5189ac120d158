import type { Knex } from 'knex';
import { countRows, isUniqueViolation, toDate } from './convert.ts';
import { StoreConflictError, type DeviceRecord, type DeviceState } from './types.ts';

const COLUMNS = ['serial', 'model', 'batch', 'line', 'device_class', 'owner', 'state', 'factory_key_sha256', 'reprovision_allowed', 'created_at', 'updated_at'];

/** The device registry (SPEC section 7). */
export class DeviceStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async bySerial(serial: string): Promise<DeviceRecord | undefined> {
    const row = await this.db('devices').select(COLUMNS).where({ serial }).first();
    return row ? fromRow(row) : undefined;
  }

  async byFactoryKey(keySha256: string): Promise<DeviceRecord | undefined> {
    const row = await this.db('devices').select(COLUMNS).where({ factory_key_sha256: keySha256 }).first();
    return row ? fromRow(row) : undefined;
  }

  /** Inserts a device; a taken serial or factory key raises StoreConflictError. */
  async insert(record: DeviceRecord): Promise<void> {
    await conflictsAsStoreErrors(this.db('devices').insert({ serial: record.serial, created_at: record.createdAt, ...mutableColumns(record) }));
  }

  /** Writes every mutable field of the device (state, binding, class, owner). */
  async update(record: DeviceRecord): Promise<void> {
    await conflictsAsStoreErrors(this.db('devices').where({ serial: record.serial }).update(mutableColumns(record)));
  }

  async count(): Promise<number> {
    return countRows(this.db, 'devices');
  }
}

function mutableColumns(record: DeviceRecord): Record<string, unknown> {
  return {
    model: record.model,
    batch: record.batch,
    line: record.line,
    device_class: record.deviceClass,
    owner: record.owner,
    state: record.state,
    factory_key_sha256: record.factoryKeySha256,
    reprovision_allowed: record.reprovisionAllowed,
    updated_at: record.updatedAt,
  };
}

async function conflictsAsStoreErrors(query: Promise<unknown>): Promise<void> {
  try {
    await query;
  } catch (err) {
    if (isUniqueViolation(err)) throw new StoreConflictError('device serial or factory key already registered', err.constraint);
    throw err;
  }
}

function fromRow(row: Record<string, unknown>): DeviceRecord {
  return {
    serial: String(row.serial),
    model: String(row.model),
    batch: String(row.batch),
    line: String(row.line),
    deviceClass: (row.device_class as string | null) ?? null,
    owner: (row.owner as string | null) ?? null,
    state: row.state as DeviceState,
    factoryKeySha256: String(row.factory_key_sha256),
    reprovisionAllowed: row.reprovision_allowed === true,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
