import type { Knex } from 'knex';
import { countRows, toBuffer, toDate } from './convert.ts';
import type { CaCertificateRecord, CaName } from './types.ts';

const COLUMNS = ['name', 'serial', 'der', 'key_label', 'key_id', 'not_after', 'created_at'];

/** The CA certificates of the hierarchy; one active certificate per CA name. */
export class CaStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async active(): Promise<CaCertificateRecord[]> {
    const rows = await this.db('ca_certificates').select(COLUMNS).where({ active: true }).orderBy('id');
    return rows.map(fromRow);
  }

  async count(): Promise<number> {
    return countRows(this.db, 'ca_certificates');
  }

  async insert(record: CaCertificateRecord): Promise<void> {
    await this.db('ca_certificates').insert({
      name: record.name,
      serial: record.serial,
      der: record.der,
      key_label: record.keyLabel,
      key_id: record.keyId,
      not_after: record.notAfter,
      created_at: record.createdAt,
      active: true,
    });
  }
}

function fromRow(row: Record<string, unknown>): CaCertificateRecord {
  return {
    name: row.name as CaName,
    serial: String(row.serial),
    der: toBuffer(row.der),
    keyLabel: String(row.key_label),
    keyId: toBuffer(row.key_id),
    notAfter: toDate(row.not_after),
    createdAt: toDate(row.created_at),
  };
}
