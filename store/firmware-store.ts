import type { Knex } from 'knex';
import { toDate, toStringOrNull } from './convert.ts';
import type { FirmwareRecord } from './types.ts';

/** The firmware lineage (SPEC section 7): every version and digest a device attested, append-only. */
export class FirmwareStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: FirmwareRecord): Promise<void> {
    await this.db('device_firmware').insert({
      device_serial: record.deviceSerial, version: record.version, digest: record.digest,
      certificate_serial: record.certificateSerial, attested_at: record.attestedAt,
    });
  }

  async byDevice(serial: string): Promise<FirmwareRecord[]> {
    const rows = await this.db('device_firmware').select('device_serial', 'version', 'digest', 'certificate_serial', 'attested_at').where({ device_serial: serial }).orderBy('id');
    return rows.map((row: Record<string, unknown>) => ({
      deviceSerial: String(row.device_serial), version: String(row.version), digest: String(row.digest),
      certificateSerial: toStringOrNull(row.certificate_serial), attestedAt: toDate(row.attested_at),
    }));
  }
}
