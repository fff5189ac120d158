import type { Knex } from 'knex';
import { toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';

/** A credential-activation challenge for one device's attestation key (enroll/tpm-activation.ts). */
export interface TpmActivationRecord {
  id: string;
  deviceSerial: string;
  model: string;
  line: string;
  manufacturer: string;
  ekCertificate: Buffer;
  ekSha256: string;
  akName: Buffer;
  akSpki: Buffer;
  /** SHA-256 (hex) of the credential only the TPM can recover: the credential itself is never stored. */
  credentialSha256: string;
  expiresAt: Date;
  createdAt: Date;
  redeemedAt: Date | null;
  certificateSerial: string | null;
}

const COLUMNS = [
  'id', 'device_serial', 'model', 'line', 'manufacturer', 'ek_certificate', 'ek_sha256', 'ak_name', 'ak_spki', 'credential_sha256',
  'expires_at', 'created_at', 'redeemed_at', 'certificate_serial',
];

/** TPM credential-activation challenges: made by a factory line, redeemed once by a birth. */
export class TpmActivationStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: TpmActivationRecord): Promise<void> {
    await this.db('tpm_activations').insert({
      id: record.id, device_serial: record.deviceSerial, model: record.model, line: record.line, manufacturer: record.manufacturer,
      ek_certificate: record.ekCertificate, ek_sha256: record.ekSha256, ak_name: record.akName, ak_spki: record.akSpki,
      credential_sha256: record.credentialSha256, expires_at: record.expiresAt, created_at: record.createdAt,
    });
  }

  /** The challenge, locked until the transaction ends: two births cannot redeem it both. */
  async findForUpdate(id: string): Promise<TpmActivationRecord | undefined> {
    const row = await this.db('tpm_activations').select(COLUMNS).where({ id }).forUpdate().first();
    return row ? fromRow(row) : undefined;
  }

  /** Marks it redeemed by a birth certificate (compare-and-set: once). */
  async redeem(id: string, certificateSerial: string, now: Date): Promise<boolean> {
    const updated = await this.db('tpm_activations').where({ id }).whereNull('redeemed_at').update({ redeemed_at: now, certificate_serial: certificateSerial });
    return updated === 1;
  }

  /** Unredeemed challenges of a line (a bound on what a line may leave open). */
  async openOfLine(line: string, now: Date): Promise<number> {
    const [row] = await this.db('tpm_activations').count<{ n: string }[]>({ n: '*' }).where({ line }).whereNull('redeemed_at').andWhere('expires_at', '>', now);
    return Number(row?.n ?? 0);
  }

  /** Challenges that expired unredeemed before `before`. */
  async purgeExpired(before: Date): Promise<number> {
    return this.db('tpm_activations').whereNull('redeemed_at').andWhere('expires_at', '<', before).delete();
  }
}

function fromRow(row: Record<string, unknown>): TpmActivationRecord {
  return {
    id: String(row.id), deviceSerial: String(row.device_serial), model: String(row.model), line: String(row.line), manufacturer: String(row.manufacturer),
    ekCertificate: toBuffer(row.ek_certificate), ekSha256: String(row.ek_sha256), akName: toBuffer(row.ak_name), akSpki: toBuffer(row.ak_spki),
    credentialSha256: String(row.credential_sha256), expiresAt: toDate(row.expires_at), createdAt: toDate(row.created_at),
    redeemedAt: toDateOrNull(row.redeemed_at), certificateSerial: toStringOrNull(row.certificate_serial),
  };
}
