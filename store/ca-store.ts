import type { Knex } from 'knex';
import { conflictsAsStoreErrors, countRows, toBuffer, toDate } from './convert.ts';
import type { CaCertificateRecord, CaRole, NewCaCertificate } from './types.ts';

const COLUMNS = ['id', 'role', 'generation', 'serial', 'der', 'ski', 'public_key', 'key_label', 'key_id', 'not_before', 'not_after', 'active', 'created_at'];

/** The CA certificates (and the audit key's certificate), each with the HSM key behind it. */
export class CaStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Every CA certificate ever recorded, oldest first: retired intermediates still sign their CRL and OCSP. */
  async all(): Promise<CaCertificateRecord[]> {
    return (await this.db('ca_certificates').select(COLUMNS).orderBy('id')).map(fromRow);
  }

  async count(): Promise<number> {
    return countRows(this.db, 'ca_certificates');
  }

  /** Records a certificate; a second active certificate of one role, or a reused generation, is a conflict. */
  async insert(record: NewCaCertificate): Promise<CaCertificateRecord> {
    const [row] = await conflictsAsStoreErrors(
      this.db('ca_certificates')
        .insert({
          role: record.role,
          generation: record.generation,
          serial: record.serial,
          der: record.der,
          ski: record.ski,
          public_key: record.publicKey,
          key_label: record.keyLabel,
          key_id: record.keyId,
          not_before: record.notBefore,
          not_after: record.notAfter,
          active: record.active,
          created_at: record.createdAt,
        })
        .returning(COLUMNS),
      `a ${record.role} CA certificate of generation ${record.generation}, or a second active one, is already recorded`,
    );
    return fromRow(row);
  }

  /** Compare-and-set: retires the given active certificate; false when it is no longer the active one. */
  async retire(id: number): Promise<boolean> {
    const rows = await this.db('ca_certificates').where({ id, active: true }).update({ active: false }).returning('id');
    return rows.length === 1;
  }
}

function fromRow(row: Record<string, unknown>): CaCertificateRecord {
  return {
    id: Number(row.id),
    role: row.role as CaRole,
    generation: Number(row.generation),
    serial: String(row.serial),
    der: toBuffer(row.der),
    ski: toBuffer(row.ski),
    publicKey: toBuffer(row.public_key),
    keyLabel: String(row.key_label),
    keyId: toBuffer(row.key_id),
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    active: row.active === true,
    createdAt: toDate(row.created_at),
  };
}
