import type { Knex } from 'knex';
import { toDate, toStringOrNull } from './convert.ts';
import type { FirmwareRecord, FirmwareReport } from './types.ts';

/**
 * The firmware lineage (docs/auditors/audit-log.md): every version and digest a device
 * attested, append-only.
 */
export class FirmwareStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: FirmwareRecord): Promise<void> {
    await this.db('device_firmware').insert({
      device_serial: record.deviceSerial, version: record.version, digest: record.digest,
      certificate_serial: record.certificateSerial, attested_at: record.attestedAt,
      release_sequence: record.release?.sequence ?? null, manifest_sha256: record.release?.manifestSha256 ?? null,
    });
  }

  async byDevice(serial: string): Promise<FirmwareRecord[]> {
    return this.byDevices([serial]);
  }

  /** The lineage of several devices (the export's page), each device's steps in order. */
  async byDevices(serials: readonly string[]): Promise<FirmwareRecord[]> {
    if (serials.length === 0) return [];
    const rows = await this.db('device_firmware').select('device_serial', 'version', 'digest', 'certificate_serial', 'attested_at', 'release_sequence', 'manifest_sha256')
      .whereIn('device_serial', serials).orderBy('id');
    return rows.map((row: Record<string, unknown>) => ({
      deviceSerial: String(row.device_serial), version: String(row.version), digest: String(row.digest),
      certificateSerial: toStringOrNull(row.certificate_serial), attestedAt: toDate(row.attested_at),
      ...(row.release_sequence === null || row.release_sequence === undefined
        ? {} : { release: { sequence: Number(row.release_sequence), manifestSha256: toStringOrNull(row.manifest_sha256) } }),
    }));
  }

  /**
   * Whether this firmware was withdrawn: every approved release with its
   * digest (legacy releases, the former allowlist entries, included) was.
   */
  async isWithdrawn(model: string, firmware: FirmwareReport): Promise<boolean> {
    const releases = await this.db('firmware_releases').select('withdrawn_at').where({ model, digest: firmware.digest }).whereNotNull('approved_at');
    return releases.length > 0 && releases.every((row: { withdrawn_at: unknown }) => row.withdrawn_at !== null);
  }

  /** The firmware a certificate was issued on (its attestation's report), if any. */
  async ofCertificate(certificateSerial: string): Promise<FirmwareReport | undefined> {
    const row = await this.db('device_firmware').select('version', 'digest').where({ certificate_serial: certificateSerial }).orderBy('id', 'desc').first();
    return row ? { version: String(row.version), digest: String(row.digest) } : undefined;
  }
}
