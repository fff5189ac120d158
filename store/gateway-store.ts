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

function pathFromRow(row: Record<string, unknown>): CertificatePath {
  return {
    certificateSerial: String(row.certificate_serial), deviceSerial: String(row.device_serial), gatewaySerial: String(row.gateway_serial),
    gatewayCertificateSha256: String(row.gateway_certificate_sha256), assurance: row.assurance as Assurance, createdAt: toDate(row.created_at),
  };
}
