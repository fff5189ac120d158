import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';

export type ClaimSource = 'manifest' | 'claim' | 'statement';

/** The operator's claim on a device born elsewhere: it may enroll with exactly this birth certificate. */
export interface ClaimRecord {
  deviceSerial: string;
  manufacturer: string;
  birthCertificateSha256: string;
  source: ClaimSource;
  manifestSha256: string | null;
  claimedBy: string;
  claimedAt: Date;
}

/** An outside birth certificate as first attested: what its manufacturer's CRL and withdrawals are matched against. */
export interface OutsideBirthRecord {
  sha256: string;
  deviceSerial: string;
  manufacturer: string;
  der: Buffer;
  serialHex: string;
  issuerSha256: string;
  path: string[];
  notBefore: Date;
  notAfter: Date;
  firstAttestedAt: Date;
  revokedAt: Date | null;
  revocationReason: number | null;
}

export interface OwnershipStatementRecord {
  deviceSerial: string;
  statement: string;
  sha256: string;
  direction: 'exported' | 'imported';
  at: Date;
}

/** Claims, the outside birth certificates devices attested with, and ownership statements. */
export class ClaimStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Inserts claims; a device or birth certificate claimed before raises StoreConflictError. */
  async insert(records: readonly ClaimRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += 500) {
      await conflictsAsStoreErrors(this.db('device_claims').insert(records.slice(i, i + 500).map((r) => ({
        device_serial: r.deviceSerial, manufacturer_id: r.manufacturer, birth_certificate_sha256: r.birthCertificateSha256, source: r.source,
        manifest_sha256: r.manifestSha256, claimed_by: r.claimedBy, claimed_at: r.claimedAt,
      }))), 'a device or birth certificate of the request is claimed already');
    }
  }

  async find(deviceSerial: string): Promise<ClaimRecord | undefined> {
    const row = await this.db('device_claims').where({ device_serial: deviceSerial }).first();
    return row ? claimFromRow(row) : undefined;
  }

  /** Claims among a list of birth certificate hashes (a manifest checks for duplicates before it writes). */
  async existingHashes(hashes: readonly string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    return (await this.db('device_claims').select('birth_certificate_sha256').whereIn('birth_certificate_sha256', [...hashes])).map((r: { birth_certificate_sha256: string }) => r.birth_certificate_sha256);
  }

  async countByManufacturer(): Promise<Map<string, number>> {
    const rows = await this.db('device_claims').select('manufacturer_id').count({ n: '*' }).groupBy('manufacturer_id');
    return new Map((rows as Array<Record<string, unknown>>).map((r) => [String(r.manufacturer_id), Number(r.n)]));
  }

  /** Records the birth certificate a device first attested with (once). */
  async recordBirth(record: Omit<OutsideBirthRecord, 'revokedAt' | 'revocationReason'>): Promise<void> {
    await this.db('outside_births').insert({
      sha256: record.sha256, device_serial: record.deviceSerial, manufacturer_id: record.manufacturer, der: record.der, serial_hex: record.serialHex,
      issuer_sha256: record.issuerSha256, path: JSON.stringify(record.path), not_before: record.notBefore, not_after: record.notAfter, first_attested_at: record.firstAttestedAt,
    }).onConflict('sha256').ignore();
  }

  async birthOf(deviceSerial: string): Promise<OutsideBirthRecord | undefined> {
    const row = await this.db('outside_births').where({ device_serial: deviceSerial }).first();
    return row ? birthFromRow(row) : undefined;
  }

  /** The outside births of a page of devices (the auditor's export). */
  async birthsOfDevices(deviceSerials: readonly string[]): Promise<OutsideBirthRecord[]> {
    if (deviceSerials.length === 0) return [];
    return (await this.db('outside_births').whereIn('device_serial', [...deviceSerials]).orderBy('device_serial')).map(birthFromRow);
  }

  /** Births of a manufacturer with these certificate serials, issued by this CA certificate (a CRL's new entries). */
  async birthsBySerial(manufacturer: string, issuerSha256: string, serialHexes: readonly string[]): Promise<OutsideBirthRecord[]> {
    if (serialHexes.length === 0) return [];
    const rows = await this.db('outside_births').where({ manufacturer_id: manufacturer, issuer_sha256: issuerSha256 }).whereIn('serial_hex', [...serialHexes]);
    return rows.map(birthFromRow);
  }

  async markBirthRevoked(sha256: string, at: Date, reason: number | null): Promise<boolean> {
    return (await this.db('outside_births').where({ sha256 }).whereNull('revoked_at').update({ revoked_at: at, revocation_reason: reason })) === 1;
  }

  /** Device serials of a manufacturer whose attested path went through a CA certificate, after `afterSerial`, in order. */
  async serialsThrough(manufacturer: string, caSha256: string, afterSerial: string, limit: number): Promise<string[]> {
    const { rows } = await this.db.raw(
      `select device_serial from outside_births where manufacturer_id = ? and path @> ?::jsonb and device_serial > ? order by device_serial limit ?`,
      [manufacturer, JSON.stringify([caSha256]), afterSerial, limit],
    );
    return (rows as Array<{ device_serial: string }>).map((r) => r.device_serial);
  }

  async insertStatement(record: OwnershipStatementRecord): Promise<void> {
    await this.db('ownership_statements').insert({ device_serial: record.deviceSerial, statement: record.statement, sha256: record.sha256, direction: record.direction, at: record.at });
  }

  /** The device's ownership statements, oldest first. */
  async statements(deviceSerial: string): Promise<OwnershipStatementRecord[]> {
    const rows = await this.db('ownership_statements').where({ device_serial: deviceSerial }).orderBy('id');
    return rows.map((r: Record<string, unknown>) => ({
      deviceSerial: String(r.device_serial), statement: String(r.statement), sha256: String(r.sha256), direction: r.direction as 'exported' | 'imported', at: toDate(r.at),
    }));
  }
}

function claimFromRow(row: Record<string, unknown>): ClaimRecord {
  return {
    deviceSerial: String(row.device_serial), manufacturer: String(row.manufacturer_id), birthCertificateSha256: String(row.birth_certificate_sha256),
    source: row.source as ClaimSource, manifestSha256: toStringOrNull(row.manifest_sha256), claimedBy: String(row.claimed_by), claimedAt: toDate(row.claimed_at),
  };
}

function birthFromRow(row: Record<string, unknown>): OutsideBirthRecord {
  const path = typeof row.path === 'string' ? (JSON.parse(row.path) as string[]) : (row.path as string[]);
  return {
    sha256: String(row.sha256), deviceSerial: String(row.device_serial), manufacturer: String(row.manufacturer_id), der: toBuffer(row.der),
    serialHex: String(row.serial_hex), issuerSha256: String(row.issuer_sha256), path, notBefore: toDate(row.not_before), notAfter: toDate(row.not_after),
    firstAttestedAt: toDate(row.first_attested_at), revokedAt: toDateOrNull(row.revoked_at), revocationReason: row.revocation_reason === null ? null : Number(row.revocation_reason),
  };
}
