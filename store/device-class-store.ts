import type { Knex } from 'knex';
import type { CloneSignalPolicy, DeviceClassRecord, WithdrawnFirmwarePolicy } from './types.ts';

export const CLASS_COLUMNS = ['name', 'ttl_seconds', 'staged_renewal', 'factory_reattest_every_seconds', 'server_auth', 'counter_required', 'on_clone_signal', 'attestation_formats', 'est', 'on_withdrawn_firmware', 'gateway_models'];

/** Device classes (docs/operators/lifecycle.md); `default` is built in, operators declare others. */
export class DeviceClassStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async find(name: string): Promise<DeviceClassRecord | undefined> {
    const row = await this.db('device_classes').select(CLASS_COLUMNS).where({ name }).first();
    return row ? classFromRow(row) : undefined;
  }

  /** Creates or replaces a class. */
  async put(record: DeviceClassRecord, now: Date): Promise<void> {
    const values = {
      ttl_seconds: record.ttlSeconds, staged_renewal: record.stagedRenewal, factory_reattest_every_seconds: record.factoryReattestEverySeconds,
      server_auth: record.serverAuth, counter_required: record.counterRequired, on_clone_signal: record.onCloneSignal,
      attestation_formats: JSON.stringify(record.attestationFormats), est: record.est, on_withdrawn_firmware: record.onWithdrawnFirmware,
      gateway_models: record.gateway ? JSON.stringify(record.gateway.models) : null, updated_at: now,
    };
    await this.db('device_classes').insert({ name: record.name, created_at: now, ...values }).onConflict('name').merge(values);
  }
}

export function classFromRow(row: Record<string, unknown>): DeviceClassRecord {
  return {
    name: String(row.name),
    ttlSeconds: Number(row.ttl_seconds),
    stagedRenewal: row.staged_renewal === true,
    factoryReattestEverySeconds: Number(row.factory_reattest_every_seconds),
    serverAuth: row.server_auth === true,
    counterRequired: row.counter_required === true,
    onCloneSignal: row.on_clone_signal as CloneSignalPolicy,
    attestationFormats: formatsOf(row.attestation_formats),
    est: row.est === true,
    onWithdrawnFirmware: row.on_withdrawn_firmware === 'suspend' ? 'suspend' : 'refuse' as WithdrawnFirmwarePolicy,
    gateway: row.gateway_models === null || row.gateway_models === undefined ? null : { models: listOf(row.gateway_models) },
  };
}

/** jsonb comes back parsed from pg and PGlite; text (a driver without jsonb parsing) is parsed here. */
function formatsOf(value: unknown): string[] {
  const list = typeof value === 'string' ? JSON.parse(value) as unknown : value;
  return Array.isArray(list) ? list.map(String) : ['devid'];
}

function listOf(value: unknown): string[] {
  const list = typeof value === 'string' ? JSON.parse(value) as unknown : value;
  return Array.isArray(list) ? list.map(String) : [];
}
