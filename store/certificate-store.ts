import type { Knex } from 'knex';
import { countRows, isUniqueViolation, toBuffer, toDate, toDateOrNull } from './convert.ts';
import { StoreConflictError, type CaName, type CertificateKind, type CertificateRecord } from './types.ts';

const COLUMNS = [
  'serial', 'kind', 'issuer', 'device_serial', 'subject', 'der', 'sha256', 'key_sha256',
  'predecessor_sha256', 'not_before', 'not_after', 'revoked_at', 'revocation_reason', 'created_at',
];

/** Every certificate devid-ca issued, with its lineage and revocation. */
export class CertificateStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Inserts a certificate; a serial that is already taken raises StoreConflictError. */
  async insert(record: CertificateRecord): Promise<void> {
    try {
      await this.db('certificates').insert({
        serial: record.serial,
        kind: record.kind,
        issuer: record.issuer,
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
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreConflictError('certificate serial or hash already recorded', err.constraint);
      throw err;
    }
  }

  async bySerial(serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ serial }).first();
    return row ? fromRow(row) : undefined;
  }

  async serialExists(serial: string): Promise<boolean> {
    return (await this.db('certificates').select('serial').where({ serial }).first()) !== undefined;
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
    issuer: row.issuer as CaName,
    deviceSerial: (row.device_serial as string | null) ?? null,
    subject: String(row.subject),
    der: toBuffer(row.der),
    sha256: String(row.sha256),
    keySha256: String(row.key_sha256),
    predecessorSha256: (row.predecessor_sha256 as string | null) ?? null,
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    revokedAt: toDateOrNull(row.revoked_at),
    revocationReason: row.revocation_reason === null ? null : Number(row.revocation_reason),
    createdAt: toDate(row.created_at),
  };
}
