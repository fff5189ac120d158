import type { Knex } from 'knex';
import { conflictsAsStoreErrors, countRows, toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';
import type { CertificateKind, CertificateRecord } from './types.ts';

const COLUMNS = [
  'serial', 'kind', 'issuer_id', 'device_serial', 'subject', 'der', 'sha256', 'key_sha256',
  'predecessor_sha256', 'not_before', 'not_after', 'revoked_at', 'revocation_reason', 'created_at',
];

/** Every certificate devid-ca issued, with its issuer row, its lineage and its revocation. */
export class CertificateStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /**
   * Inserts a certificate. A taken serial or hash, or a second operational
   * certificate with one predecessor (a lineage fork), raises StoreConflictError.
   */
  async insert(record: CertificateRecord): Promise<void> {
    await conflictsAsStoreErrors(
      this.db('certificates').insert({
        serial: record.serial,
        kind: record.kind,
        issuer_id: record.issuerId,
        device_serial: record.deviceSerial,
        subject: record.subject,
        der: record.der,
        sha256: record.sha256,
        key_sha256: record.keySha256,
        predecessor_sha256: record.predecessorSha256,
        not_before: record.notBefore,
        not_after: record.notAfter,
        revoked_at: record.revokedAt,
        revocation_reason: record.revocationReason,
        created_at: record.createdAt,
      }),
      'certificate serial, hash or predecessor already recorded',
    );
  }

  async find(serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ serial }).first();
    return row ? fromRow(row) : undefined;
  }

  async byDevice(deviceSerial: string, kind?: CertificateKind): Promise<CertificateRecord[]> {
    const query = this.db('certificates').select(COLUMNS).where({ device_serial: deviceSerial });
    if (kind) query.andWhere({ kind });
    return (await query.orderBy('created_at')).map(fromRow);
  }

  /** Revokes every unrevoked certificate of the device; returns their serials. */
  async revokeLiveOfDevice(deviceSerial: string, reason: number, at: Date): Promise<string[]> {
    const rows = await this.db('certificates')
      .where({ device_serial: deviceSerial })
      .whereNull('revoked_at')
      .update({ revoked_at: at, revocation_reason: reason })
      .returning('serial');
    return rows.map((row: { serial: string }) => row.serial);
  }

  /** Devices that have had any certificate for this key (birth or operational). */
  async devicesWithKey(keySha256: string): Promise<string[]> {
    const rows = await this.db('certificates').distinct('device_serial').where({ key_sha256: keySha256 }).whereNotNull('device_serial');
    return rows.map((row: { device_serial: string }) => row.device_serial);
  }

  async count(): Promise<number> {
    return countRows(this.db, 'certificates');
  }
}

function fromRow(row: Record<string, unknown>): CertificateRecord {
  return {
    serial: String(row.serial),
    kind: row.kind as CertificateKind,
    issuerId: Number(row.issuer_id),
    deviceSerial: toStringOrNull(row.device_serial),
    subject: String(row.subject),
    der: toBuffer(row.der),
    sha256: String(row.sha256),
    keySha256: String(row.key_sha256),
    predecessorSha256: toStringOrNull(row.predecessor_sha256),
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    revokedAt: toDateOrNull(row.revoked_at),
    revocationReason: row.revocation_reason === null ? null : Number(row.revocation_reason),
    createdAt: toDate(row.created_at),
  };
}
