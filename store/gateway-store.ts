import type { Knex } from 'knex';
import { toDate } from './convert.ts';

/** How an operational certificate was reached (docs/operators/gateways.md): mediated by a gateway, or attested (directly or relayed). */
export type Assurance = 'attested' | 'mediated';

/** A gateway's part in one certificate: who relayed or mediated it, through which of its certificates. */
export interface CertificatePath {
  certificateSerial: string;
  deviceSerial: string;
  gatewaySerial: string;
  gatewayCertificateSha256: string;
  assurance: Assurance;
  createdAt: Date;
}

const PATH_COLUMNS = ['certificate_serial', 'device_serial', 'gateway_serial', 'gateway_certificate_sha256', 'assurance', 'created_at'];

/**
 * Gateways (RFC 7030 3.7): which gateways may mediate a declared device,
 * the path of each certificate a gateway took part in (append-only), and
 * the single-use nonces of relayed attestations.
 */
export class GatewayStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Records the gateways allowed to mediate a device (an operator's declaration); those already recorded stay. */
  async allow(deviceSerial: string, gatewaySerials: readonly string[], now: Date): Promise<void> {
    if (gatewaySerials.length === 0) return;
    await this.db('device_gateways').insert(gatewaySerials.map((g) => ({ device_serial: deviceSerial, gateway_serial: g, created_at: now }))).onConflict(['device_serial', 'gateway_serial']).ignore();
  }

  /** The gateways a device's declaration names, in order. */
  async gatewaysOf(deviceSerial: string): Promise<string[]> {
    const rows = await this.db('device_gateways').select('gateway_serial').where({ device_serial: deviceSerial }).orderBy('gateway_serial');
    return rows.map((r: { gateway_serial: string }) => r.gateway_serial);
  }

  async insertPath(path: CertificatePath): Promise<void> {
    await this.db('certificate_paths').insert({
      certificate_serial: path.certificateSerial, device_serial: path.deviceSerial, gateway_serial: path.gatewaySerial,
      gateway_certificate_sha256: path.gatewayCertificateSha256, assurance: path.assurance, created_at: path.createdAt,
    });
  }

  /** The path of one certificate, if a gateway took part in it. */
  async pathOf(certificateSerial: string): Promise<CertificatePath | undefined> {
    const row = await this.db('certificate_paths').select(PATH_COLUMNS).where({ certificate_serial: certificateSerial }).first();
    return row ? pathFromRow(row) : undefined;
  }

  /** Whether the device's newest operational certificate is a mediated one (the next attested one raises it). */
  async newestIsMediated(deviceSerial: string): Promise<boolean> {
    const row = await this.db('certificates as c').leftJoin('certificate_paths as p', 'p.certificate_serial', 'c.serial')
      .select('p.assurance').where({ 'c.device_serial': deviceSerial, 'c.kind': 'operational' }).orderBy('c.created_at', 'desc').first();
    return row?.assurance === 'mediated';
  }

  /**
   * The fleet view's assurance figures (docs/operators/gateways.md), read
   * from the devices a gateway ever mediated only (no scan of the fleet):
   * those whose newest live operational certificate is still mediated, and
   * those raised to attested since.
   */
  async assuranceCounts(): Promise<{ mediated: number; raised: number }> {
    const { rows } = await this.db.raw(
      `select count(*) filter (where newest.assurance = 'mediated') as mediated,
              count(*) filter (where newest.assurance is distinct from 'mediated') as raised
       from (select distinct device_serial from certificate_paths where assurance = 'mediated') m
       cross join lateral (
         select (select p.assurance from certificate_paths p where p.certificate_serial = c.serial) as assurance
         from certificates c
         where c.device_serial = m.device_serial and c.kind = 'operational' and c.revoked_at is null
         order by c.created_at desc, c.serial desc limit 1
       ) newest`,
    ) as { rows: Array<{ mediated: unknown; raised: unknown }> };
    return { mediated: Number(rows[0]?.mediated ?? 0), raised: Number(rows[0]?.raised ?? 0) };
  }

  /** The paths of a device's certificates, by certificate serial. */
  async pathsOfDevice(deviceSerial: string): Promise<Map<string, CertificatePath>> {
    const rows = await this.db('certificate_paths').select(PATH_COLUMNS).where({ device_serial: deviceSerial });
    return new Map(rows.map((r: Record<string, unknown>) => [String(r.certificate_serial), pathFromRow(r)]));
  }

  /**
   * The serials of the live certificates a gateway mediated: through any of
   * its certificates (`gatewaySerials`), or through one certificate
   * (`gatewayCertificates`, by SHA-256).
   */
  async liveMediatedBy(scope: { gatewaySerials?: readonly string[]; gatewayCertificates?: readonly string[] }): Promise<string[]> {
    const gateways = scope.gatewaySerials ?? [];
    const certificates = scope.gatewayCertificates ?? [];
    if (gateways.length === 0 && certificates.length === 0) return [];
    const query = this.db('certificate_paths as p').join('certificates as c', 'c.serial', 'p.certificate_serial')
      .select('c.serial').where('p.assurance', 'mediated').whereNull('c.revoked_at')
      .andWhere((q) => {
        if (gateways.length > 0) q.orWhereIn('p.gateway_serial', gateways);
        if (certificates.length > 0) q.orWhereIn('p.gateway_certificate_sha256', certificates);
      });
    return (await query.orderBy('c.serial')).map((r: { serial: string }) => r.serial);
  }
}

/** What became of a nonce presented with a relayed attestation: only `ok` lets it count; any nonce found is used up. */
export type NonceRedemption = 'ok' | 'unknown' | 'expired' | 'other-gateway' | 'other-device';

/** Nonces a gateway may hold at once: more are refused until some expire or are used. */
export const MAX_OPEN_NONCES = 1000;

export class NonceStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Records a nonce (by its SHA-256); false when the gateway holds too many open ones. Expired ones go first. */
  async insert(nonce: { sha256: string; gatewaySerial: string; deviceSerial: string; expiresAt: Date; createdAt: Date }): Promise<boolean> {
    await this.db('est_nonces').where('expires_at', '<=', nonce.createdAt).delete();
    const open = await this.db('est_nonces').where({ gateway_serial: nonce.gatewaySerial }).count({ n: '*' }).first();
    if (Number((open as { n: unknown } | undefined)?.n ?? 0) >= MAX_OPEN_NONCES) return false;
    await this.db('est_nonces').insert({ nonce_sha256: nonce.sha256, gateway_serial: nonce.gatewaySerial, device_serial: nonce.deviceSerial, expires_at: nonce.expiresAt, created_at: nonce.createdAt });
    return true;
  }

  /** Uses a nonce up (single use: deleted whatever the verdict), and says whether it was this gateway's, for this device, in time. */
  async redeem(sha256: string, gatewaySerial: string, deviceSerial: string, now: Date): Promise<NonceRedemption> {
    const [row] = await this.db('est_nonces').where({ nonce_sha256: sha256 }).delete().returning(['gateway_serial', 'device_serial', 'expires_at']);
    if (!row) return 'unknown';
    if (row.gateway_serial !== gatewaySerial) return 'other-gateway';
    if (row.device_serial !== deviceSerial) return 'other-device';
    return toDate(row.expires_at) <= now ? 'expired' : 'ok';
  }
}

function pathFromRow(row: Record<string, unknown>): CertificatePath {
  return {
    certificateSerial: String(row.certificate_serial), deviceSerial: String(row.device_serial), gatewaySerial: String(row.gateway_serial),
    gatewayCertificateSha256: String(row.gateway_certificate_sha256), assurance: row.assurance as Assurance, createdAt: toDate(row.created_at),
  };
}
