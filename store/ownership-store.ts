import type { Knex } from 'knex';
import { toDate, toStringOrNull } from './convert.ts';

/** One change of owner (docs/auditors/audit-log.md): from, to, when, recorded by which principal, on what evidence. */
export interface OwnershipTransferRecord {
  deviceSerial: string;
  from: string | null;
  to: string;
  evidence: string;
  principal: string;
  actor: string;
  at: Date;
}

/** The chain of owners of each device, append-only. */
export class OwnershipStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: OwnershipTransferRecord): Promise<void> {
    await this.db('ownership_transfers').insert({
      device_serial: record.deviceSerial, from_owner: record.from, to_owner: record.to, evidence: record.evidence,
      principal: record.principal, actor: record.actor, at: record.at,
    });
  }

  async byDevice(serial: string): Promise<OwnershipTransferRecord[]> {
    const rows = await this.db('ownership_transfers').where({ device_serial: serial }).orderBy('id');
    return rows.map((row: Record<string, unknown>) => ({
      deviceSerial: String(row.device_serial), from: toStringOrNull(row.from_owner), to: String(row.to_owner), evidence: String(row.evidence),
      principal: String(row.principal), actor: String(row.actor), at: toDate(row.at),
    }));
  }
}
