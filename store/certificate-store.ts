import type { Knex } from 'knex';
import { conflictsAsStoreErrors, countRows, toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';
import type { OcspResponseRecord } from './ocsp-store.ts';
import type { CertificateKind, CertificateRecord } from './types.ts';

const COLUMNS = [
  'serial', 'kind', 'issuer_id', 'device_serial', 'subject', 'der', 'sha256', 'key_sha256',
  'predecessor_sha256', 'not_before', 'not_after', 'revoked_at', 'revocation_reason', 'created_at', 'crl_shard',
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
        crl_shard: record.crlShard ?? null,
      }),
      'certificate serial, hash or predecessor already recorded',
    );
  }

  /**
   * A newly issued certificate and its first OCSP row (store/ocsp-store.ts)
   * in one statement; conflicts as `insert`.
   */
  async insertIssued(record: CertificateRecord, ocsp: OcspResponseRecord): Promise<void> {
    await conflictsAsStoreErrors(
      this.db.raw(
        `with inserted as (insert into certificates (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')}) returning serial)
         insert into ocsp_responses (serial, issuer_id, not_after, sha1, sha256, this_update, next_update, updated_at)
         select serial, ?, ?, ?, ?, ?, ?, clock_timestamp() from inserted`,
        [
          record.serial, record.kind, record.issuerId, record.deviceSerial, record.subject, record.der, record.sha256, record.keySha256,
          record.predecessorSha256, record.notBefore, record.notAfter, record.revokedAt, record.revocationReason, record.createdAt, record.crlShard ?? null,
          ocsp.issuerId, ocsp.notAfter, ocsp.sha1, ocsp.sha256, ocsp.thisUpdate, ocsp.nextUpdate,
        ] as Knex.RawBinding[],
      ),
      'certificate serial, hash or predecessor already recorded',
    );
  }

  async find(serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ serial }).first();
    return row ? fromRow(row) : undefined;
  }

  async bySha256(sha256: string): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ sha256 }).first();
    return row ? fromRow(row) : undefined;
  }

  /** The certificate an ARI certID names: its issuer row and its serial (RFC 9773 4.1). */
  async byIssuerAndSerial(issuerId: number, serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ issuer_id: issuerId, serial }).first();
    return row ? fromRow(row) : undefined;
  }

  /** The newest certificate of a kind for a device: its current birth certificate, or its newest operational one. */
  async newestOfDevice(deviceSerial: string, kind: CertificateKind): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ device_serial: deviceSerial, kind }).orderBy('created_at', 'desc').orderBy('serial').first();
    return row ? fromRow(row) : undefined;
  }

  /** The device's newest certificate of the first of `kinds` it has one of (newest operational, else the birth certificate): one round trip. */
  async newestOfDeviceByKinds(deviceSerial: string, kinds: readonly CertificateKind[]): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ device_serial: deviceSerial }).whereIn('kind', kinds)
      .orderByRaw(`array_position(?::text[], kind), created_at desc, serial`, [[...kinds]]).first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Whether `sha256` is no longer where the device's lineage ends: the
   * device's newest operational certificate is another, or it has an
   * operational successor. One round trip for both.
   */
  async superseded(deviceSerial: string, serial: string, sha256: string): Promise<boolean> {
    const { rows } = await this.db.raw(
      `select (select c.serial from certificates c where c.device_serial = ? and c.kind = 'operational' order by c.created_at desc, c.serial limit 1) as newest,
              exists (select 1 from certificates s where s.predecessor_sha256 = ? and s.kind = 'operational') as has_successor`,
      [deviceSerial, sha256],
    );
    const row = (rows as Array<{ newest: string | null; has_successor: boolean }>)[0]!;
    return row.newest !== serial || row.has_successor === true;
  }

  /** Revokes one certificate unless it already is (the first reason and time stand); the record after, and whether this call revoked it. */
  async revoke(serial: string, reason: number, at: Date): Promise<{ record: CertificateRecord; revokedNow: boolean } | undefined> {
    const [row] = await this.db('certificates').where({ serial }).whereNull('revoked_at').update({ revoked_at: at, revocation_reason: reason }).returning(COLUMNS);
    if (row) return { record: fromRow(row), revokedNow: true };
    const existing = await this.find(serial);
    return existing ? { record: existing, revokedNow: false } : undefined;
  }

  async byDevice(deviceSerial: string, kind?: CertificateKind): Promise<CertificateRecord[]> {
    const query = this.db('certificates').select(COLUMNS).where({ device_serial: deviceSerial });
    if (kind) query.andWhere({ kind });
    return (await query.orderBy('created_at')).map(fromRow);
  }

  /** Revokes every unrevoked certificate of these devices (one device, or a chunk of a batch); returns what it revoked. */
  async revokeLiveOfDevices(deviceSerials: readonly string[], reason: number, at: Date): Promise<CertificateRecord[]> {
    if (deviceSerials.length === 0) return [];
    const rows = await this.db('certificates')
      .whereIn('device_serial', deviceSerials)
      .whereNull('revoked_at')
      .update({ revoked_at: at, revocation_reason: reason })
      .returning(COLUMNS);
    return rows.map(fromRow);
  }

  /** Every certificate of these devices, oldest first per device. */
  async byDevices(deviceSerials: readonly string[]): Promise<CertificateRecord[]> {
    if (deviceSerials.length === 0) return [];
    return (await this.db('certificates').select(COLUMNS).whereIn('device_serial', deviceSerials).orderBy(['device_serial', 'created_at', 'serial'])).map(fromRow);
  }

  /** Devices that have had any certificate for this key (birth or operational). */
  /**
   * bySha256 and devicesWithKey in one round trip: the certificate that
   * attested, and the devices that already hold a certificate for the key
   * it attested.
   */
  async bySha256AndKeyHolders(sha256: string, keySha256: string): Promise<{ certificate: CertificateRecord | undefined; keyHolders: string[] }> {
    const { rows } = await this.db.raw(
      `select ${COLUMNS.map((c) => `c.${c}`).join(', ')},
              array(select distinct k.device_serial from certificates k where k.key_sha256 = ? and k.device_serial is not null) as key_holders
       from (select 1) as one left join certificates c on c.sha256 = ?`,
      [keySha256, sha256],
    ) as { rows: Array<Record<string, unknown>> };
    const row = rows[0]!;
    return { certificate: row.serial === null || row.serial === undefined ? undefined : fromRow(row), keyHolders: (row.key_holders as string[]).map(String) };
  }

  async devicesWithKey(keySha256: string): Promise<string[]> {
    const rows = await this.db('certificates').distinct('device_serial').where({ key_sha256: keySha256 }).whereNotNull('device_serial');
    return rows.map((row: { device_serial: string }) => row.device_serial);
  }

  /** The operational certificate of this key, if any (one key, one operational certificate: a unique index). */
  async operationalWithKey(keySha256: string): Promise<CertificateRecord | undefined> {
    const row = await this.db('certificates').select(COLUMNS).where({ key_sha256: keySha256, kind: 'operational' }).first();
    return row ? fromRow(row) : undefined;
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
    crlShard: row.crl_shard === null || row.crl_shard === undefined ? null : Number(row.crl_shard),
  };
}
