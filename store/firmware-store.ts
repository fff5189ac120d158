import type { Knex } from 'knex';
import { toDate, toStringOrNull } from './convert.ts';
import type { FirmwareRecord, FirmwareReport } from './types.ts';

/**
 * The firmware lineage (docs/auditors/audit-log.md): every version and digest a device
 * attested, append-only; and the models' allowlists (docs/operators/lifecycle.md), whose
 * withdrawn entries keep their rows.
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
    const rows = await this.db('device_firmware').select('device_serial', 'version', 'digest', 'certificate_serial', 'attested_at', 'release_sequence', 'manifest_sha256')
      .where({ device_serial: serial }).orderBy('id');
    return rows.map((row: Record<string, unknown>) => ({
      deviceSerial: String(row.device_serial), version: String(row.version), digest: String(row.digest),
      certificateSerial: toStringOrNull(row.certificate_serial), attestedAt: toDate(row.attested_at),
      ...(row.release_sequence === null || row.release_sequence === undefined
        ? {} : { release: { sequence: Number(row.release_sequence), manifestSha256: toStringOrNull(row.manifest_sha256) } }),
    }));
  }

  /** The firmware a model's devices may attest now; empty: the model has no firmware policy. */
  async allowed(model: string): Promise<FirmwareReport[]> {
    const rows = await this.db('model_firmware').select('version', 'digest').where({ model }).whereNull('withdrawn_at').orderBy('id');
    return rows.map((row: { version: string; digest: string }) => ({ version: row.version, digest: row.digest }));
  }

  /** Replaces a model's allowlist: entries not in the new list are withdrawn, new ones added; returns what changed. */
  async replaceAllowed(model: string, allowed: readonly FirmwareReport[], now: Date): Promise<{ added: FirmwareReport[]; withdrawn: FirmwareReport[] }> {
    const current = await this.allowed(model);
    const key = (f: FirmwareReport) => `${f.version}\u0000${f.digest}`;
    const wanted = new Set(allowed.map(key));
    const present = new Set(current.map(key));
    const withdrawn = current.filter((f) => !wanted.has(key(f)));
    const added = allowed.filter((f) => !present.has(key(f)));
    for (const f of withdrawn) {
      await this.db('model_firmware').where({ model, version: f.version, digest: f.digest }).whereNull('withdrawn_at').update({ withdrawn_at: now });
    }
    if (added.length > 0) await this.db('model_firmware').insert(added.map((f) => ({ model, version: f.version, digest: f.digest, allowed_at: now })));
    return { added, withdrawn };
  }

  /**
   * Whether this firmware was withdrawn: the model's allowlist once had it and
   * withdrew it (and does not list it again), or every approved release with
   * its digest was withdrawn.
   */
  async isWithdrawn(model: string, firmware: FirmwareReport): Promise<boolean> {
    const rows = await this.db('model_firmware').select('withdrawn_at').where({ model, version: firmware.version, digest: firmware.digest });
    if (rows.length > 0 && rows.every((row: { withdrawn_at: unknown }) => row.withdrawn_at !== null)) return true;
    const releases = await this.db('firmware_releases').select('withdrawn_at').where({ model, digest: firmware.digest }).whereNotNull('approved_at');
    return releases.length > 0 && releases.every((row: { withdrawn_at: unknown }) => row.withdrawn_at !== null);
  }

  /** The firmware a certificate was issued on (its attestation's report), if any. */
  async ofCertificate(certificateSerial: string): Promise<FirmwareReport | undefined> {
    const row = await this.db('device_firmware').select('version', 'digest').where({ certificate_serial: certificateSerial }).orderBy('id', 'desc').first();
    return row ? { version: String(row.version), digest: String(row.digest) } : undefined;
  }
}
