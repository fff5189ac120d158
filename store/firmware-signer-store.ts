import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toBuffer, toDate } from './convert.ts';

/** A model's firmware signer: its key in the token (found by CKA_ID) and its certificate from the firmware intermediate. */
export interface FirmwareSignerRecord {
  model: string;
  certificateSerial: string;
  issuerId: number;
  certificateDer: Buffer;
  keyLabel: string;
  keyId: Buffer;
  createdAt: Date;
}

const COLUMNS = ['model', 'certificate_serial', 'issuer_id', 'certificate_der', 'key_label', 'key_id', 'created_at'];

/** The firmware signers (docs/operators/firmware.md), one per model. */
export class FirmwareSignerStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: FirmwareSignerRecord): Promise<void> {
    await conflictsAsStoreErrors(this.db('firmware_signers').insert({
      model: record.model, certificate_serial: record.certificateSerial, issuer_id: record.issuerId, certificate_der: record.certificateDer,
      key_label: record.keyLabel, key_id: record.keyId, created_at: record.createdAt,
    }), `model ${record.model} has a firmware signer already`);
  }

  /** The model's signer in service (not retired). */
  async ofModel(model: string): Promise<FirmwareSignerRecord | undefined> {
    const row = await this.db('firmware_signers').select(COLUMNS).where({ model }).whereNull('retired_at').first();
    return row ? fromRow(row) : undefined;
  }

  /** How many signers the model ever had: the next one's key label counts on from it. */
  async countOfModel(model: string): Promise<number> {
    const row = await this.db('firmware_signers').count({ n: '*' }).where({ model }).first();
    return Number(row?.n ?? 0);
  }

  /** Takes the model's signer out of service (its certificate was revoked); its key stays, recorded. */
  async retire(model: string, now: Date): Promise<void> {
    await this.db('firmware_signers').where({ model }).whereNull('retired_at').update({ retired_at: now });
  }

  /** CKA_IDs of every signer key: a ceremony's undo must spare them. */
  async keyIds(): Promise<Set<string>> {
    const rows = await this.db('firmware_signers').select('key_id');
    return new Set(rows.map((row: { key_id: unknown }) => toBuffer(row.key_id).toString('hex')));
  }
}

function fromRow(row: Record<string, unknown>): FirmwareSignerRecord {
  return {
    model: String(row.model), certificateSerial: String(row.certificate_serial), issuerId: Number(row.issuer_id), certificateDer: toBuffer(row.certificate_der),
    keyLabel: String(row.key_label), keyId: toBuffer(row.key_id), createdAt: toDate(row.created_at),
  };
}
