import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toBuffer, toDate } from './convert.ts';

/** A delegated OCSP responder: its certificate from an issuing CA, and the key behind it. */
export interface OcspResponderRecord {
  id: number;
  issuerId: number;
  /** 1, 2, ... per issuer, in the order they were made. */
  number: number;
  serial: string;
  der: Buffer;
  /** SubjectPublicKeyInfo DER of the key in the token. */
  publicKey: Buffer;
  keyLabel: string;
  /** CKA_ID: what finds the key in the token. */
  keyId: Buffer;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

export type NewOcspResponder = Omit<OcspResponderRecord, 'id'>;

const COLUMNS = ['id', 'issuer_id', 'number', 'serial', 'der', 'public_key', 'key_label', 'key_id', 'not_before', 'not_after', 'created_at'];

/** The responders of every issuing CA (append-only: a rotation adds one). */
export class OcspResponderStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** The newest responder of each issuer. */
  async current(): Promise<OcspResponderRecord[]> {
    const { rows } = await this.db.raw(`select distinct on (issuer_id) ${COLUMNS.join(', ')} from ocsp_responders order by issuer_id, number desc`);
    return (rows as Array<Record<string, unknown>>).map(fromRow);
  }

  /** The newest responder of one issuer, undefined before its first. */
  async newest(issuerId: number): Promise<OcspResponderRecord | undefined> {
    const row = await this.db('ocsp_responders').select(COLUMNS).where({ issuer_id: issuerId }).orderBy('number', 'desc').first();
    return row ? fromRow(row) : undefined;
  }

  /** CKA_IDs (hex) of every responder key ever recorded: a failed rotation must not destroy one of these. */
  async keyIds(): Promise<Set<string>> {
    return new Set((await this.db('ocsp_responders').select('key_id')).map((row: Record<string, unknown>) => toBuffer(row.key_id).toString('hex')));
  }

  async insert(record: NewOcspResponder): Promise<OcspResponderRecord> {
    const [row] = await conflictsAsStoreErrors(
      this.db('ocsp_responders')
        .insert({
          issuer_id: record.issuerId, number: record.number, serial: record.serial, der: record.der, public_key: record.publicKey,
          key_label: record.keyLabel, key_id: record.keyId, not_before: record.notBefore, not_after: record.notAfter, created_at: record.createdAt,
        })
        .returning(COLUMNS),
      `OCSP responder ${record.number} of CA ${record.issuerId} is already recorded`,
    );
    return fromRow(row);
  }
}

function fromRow(row: Record<string, unknown>): OcspResponderRecord {
  return {
    id: Number(row.id),
    issuerId: Number(row.issuer_id),
    number: Number(row.number),
    serial: String(row.serial),
    der: toBuffer(row.der),
    publicKey: toBuffer(row.public_key),
    keyLabel: String(row.key_label),
    keyId: toBuffer(row.key_id),
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    createdAt: toDate(row.created_at),
  };
}
