import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';

export type ClaimSource = 'manifest' | 'claim' | 'statement';

/** The operator's claim on a device born elsewhere: it may enroll with exactly this birth certificate. */
export interface ClaimRecord {
  deviceSerial: string;
  manufacturer: string;
  /** null: claimed by (manufacturer, serial) alone (apple, android-key: a fresh leaf certificate for each key). */
  birthCertificateSha256: string | null;
  source: ClaimSource;
  manifestSha256: string | null;
  claimedBy: string;
  claimedAt: Date;
  /** Set when the device was reprovisioned with a birth certificate of ours: the claimed one attests no more. */
  supersededAt: Date | null;
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
  /** The path's CA certificates, DER, issuer first. */
  pathDer: Buffer[];
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

  /** Reprovisioning: the claimed birth certificate attests no more (a no-op for a device of our own). */
  async supersede(deviceSerial: string, at: Date): Promise<boolean> {
    return (await this.db('device_claims').where({ device_serial: deviceSerial }).whereNull('superseded_at').update({ superseded_at: at })) === 1;
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

  /** Claims per manufacturer, from the counters the triggers keep (migration 027): no scan of the claims. */
  async countByManufacturer(): Promise<Map<string, number>> {
    const rows = await this.db('fleet_counts').select('value').sum({ n: 'n' }).where({ dimension: 'claims' }).groupBy('value');
    return new Map((rows as Array<Record<string, unknown>>).map((r) => [String(r.value), Number(r.n)]));
  }

  /** Records the birth certificate a device first attested with (once). */
  async recordBirth(record: Omit<OutsideBirthRecord, 'revokedAt' | 'revocationReason'>): Promise<void> {
    await this.db('outside_births').insert({
      sha256: record.sha256, device_serial: record.deviceSerial, manufacturer_id: record.manufacturer, der: record.der, serial_hex: record.serialHex,
      issuer_sha256: record.issuerSha256, path: JSON.stringify(record.path), path_certificates: JSON.stringify(record.pathDer.map((d) => d.toString('base64'))), not_before: record.notBefore, not_after: record.notAfter, first_attested_at: record.firstAttestedAt,
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
    const found: OutsideBirthRecord[] = [];
    // In slices: a first CRL lists every entry as new, and a statement takes at most 65,535 parameters.
    for (let i = 0; i < serialHexes.length; i += 10_000) {
      const rows = await this.db('outside_births').where({ manufacturer_id: manufacturer, issuer_sha256: issuerSha256 }).whereIn('serial_hex', serialHexes.slice(i, i + 10_000));
      found.push(...rows.map(birthFromRow));
    }
    return found;
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
    deviceSerial: String(row.device_serial), manufacturer: String(row.manufacturer_id), birthCertificateSha256: toStringOrNull(row.birth_certificate_sha256),
    source: row.source as ClaimSource, manifestSha256: toStringOrNull(row.manifest_sha256), claimedBy: String(row.claimed_by), claimedAt: toDate(row.claimed_at),
    supersededAt: toDateOrNull(row.superseded_at),
  };
}

function birthFromRow(row: Record<string, unknown>): OutsideBirthRecord {
  const path = typeof row.path === 'string' ? (JSON.parse(row.path) as string[]) : (row.path as string[]);
  const pathCertificates = typeof row.path_certificates === 'string' ? (JSON.parse(row.path_certificates) as string[]) : (row.path_certificates as string[]);
  return {
    sha256: String(row.sha256), deviceSerial: String(row.device_serial), manufacturer: String(row.manufacturer_id), der: toBuffer(row.der),
    serialHex: String(row.serial_hex), issuerSha256: String(row.issuer_sha256), path, pathDer: pathCertificates.map((b64) => Buffer.from(b64, 'base64')), notBefore: toDate(row.not_before), notAfter: toDate(row.not_after),
    firstAttestedAt: toDate(row.first_attested_at), revokedAt: toDateOrNull(row.revoked_at), revocationReason: row.revocation_reason === null ? null : Number(row.revocation_reason),
  };
}
