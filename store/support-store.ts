import type { Knex } from 'knex';
import { toDate, toDateOrNull, toStringOrNull } from './convert.ts';

/** A vendor support grant (docs/operators/lifecycle.md): pending, then approved for a window, perhaps revoked early. */
export interface SupportGrantRecord {
  id: string;
  deviceSerial: string;
  vendor: string;
  reason: string;
  hours: number;
  requestedBy: string;
  requestedAt: Date;
  approvedBy: string | null;
  approvedAt: Date | null;
  windowEnd: Date | null;
  revokedBy: string | null;
  revokedAt: Date | null;
}

/** Support grants and the certificates issued under them. */
export class SupportStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: SupportGrantRecord): Promise<void> {
    await this.db('support_grants').insert({
      id: record.id, device_serial: record.deviceSerial, vendor: record.vendor, reason: record.reason, hours: record.hours,
      requested_by: record.requestedBy, requested_at: record.requestedAt,
    });
  }

  async find(id: string): Promise<SupportGrantRecord | undefined> {
    const row = await this.db('support_grants').where({ id }).first();
    return row ? fromRow(row) : undefined;
  }

  /** A device's grants, oldest first. */
  async byDevice(deviceSerial: string): Promise<SupportGrantRecord[]> {
    return (await this.db('support_grants').where({ device_serial: deviceSerial }).orderBy('requested_at')).map(fromRow);
  }

  /** The grant, its row locked until the transaction ends: issuing under it and revoking it do not interleave. */
  async findForUpdate(id: string): Promise<SupportGrantRecord | undefined> {
    const row = await this.db('support_grants').where({ id }).forUpdate().first();
    return row ? fromRow(row) : undefined;
  }

  /** Approves a pending grant (compare-and-set): its window starts now. */
  async approve(id: string, principal: string, at: Date, windowEnd: Date): Promise<SupportGrantRecord | undefined> {
    const [row] = await this.db('support_grants').where({ id }).whereNull('approved_at').whereNull('revoked_at')
      .update({ approved_by: principal, approved_at: at, window_end: windowEnd }).returning('*');
    return row ? fromRow(row) : undefined;
  }

  /** Revokes a grant that is not revoked yet (compare-and-set). */
  async revoke(id: string, principal: string, at: Date): Promise<SupportGrantRecord | undefined> {
    const [row] = await this.db('support_grants').where({ id }).whereNull('revoked_at').update({ revoked_by: principal, revoked_at: at }).returning('*');
    return row ? fromRow(row) : undefined;
  }

  async linkCertificate(certificateSerial: string, grantId: string): Promise<void> {
    await this.db('certificates').where({ serial: certificateSerial }).update({ support_grant_id: grantId });
  }

  /** Serials of the grant's certificates. */
  async certificates(grantId: string): Promise<string[]> {
    return (await this.db('certificates').select('serial').where({ support_grant_id: grantId }).orderBy('created_at')).map((r: { serial: string }) => r.serial);
  }
}

function fromRow(row: Record<string, unknown>): SupportGrantRecord {
  return {
    id: String(row.id), deviceSerial: String(row.device_serial), vendor: String(row.vendor), reason: String(row.reason), hours: Number(row.hours),
    requestedBy: String(row.requested_by), requestedAt: toDate(row.requested_at),
    approvedBy: toStringOrNull(row.approved_by), approvedAt: toDateOrNull(row.approved_at), windowEnd: toDateOrNull(row.window_end),
    revokedBy: toStringOrNull(row.revoked_by), revokedAt: toDateOrNull(row.revoked_at),
  };
}
