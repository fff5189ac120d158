import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';

/** What a release is, as proposed: the proposal hash is taken over exactly these fields (docs/operators/firmware.md). */
export interface FirmwareReleaseContent {
  model: string;
  version: string;
  /** SHA-256 of the image, lowercase hex. */
  digest: string;
  size: number;
  sequence: number;
  minSequence: number | null;
}

export interface FirmwareReleaseRecord extends FirmwareReleaseContent {
  proposal: string;
  proposedBy: string;
  proposedAt: Date;
  approvedBy: string | null;
  approvedAt: Date | null;
  signerCertificateSerial: string | null;
  /** The signed SUIT envelope, from approval on. */
  envelope: Buffer | null;
  manifestSha256: string | null;
  /** Set when an operator withdrew it: check 5 refuses it, renewalInfo asks its devices to renew now. */
  withdrawnAt: Date | null;
  withdrawnBy: string | null;
  withdrawReason: string | null;
  /** A former allowlist entry (docs/operators/firmware.md): unsigned, sequence 0, accepted until the model's legacy cut-off. */
  legacy: boolean;
}

/** A legacy release as the allowlist names it. */
export interface LegacyEntry {
  version: string;
  digest: string;
}

const COLUMNS = [
  'model', 'version', 'digest', 'size', 'sequence', 'min_sequence', 'proposal', 'proposed_by', 'proposed_at', 'approved_by', 'approved_at', 'signer_certificate_serial',
  'envelope', 'manifest_sha256', 'withdrawn_at', 'withdrawn_by', 'withdraw_reason', 'legacy',
];

/** Firmware releases (docs/operators/firmware.md): proposed, then approved and signed. */
export class FirmwareReleaseStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: FirmwareReleaseContent & { proposal: string; proposedBy: string; proposedAt: Date }): Promise<void> {
    await conflictsAsStoreErrors(this.db('firmware_releases').insert({
      model: record.model, version: record.version, digest: record.digest, size: record.size, sequence: record.sequence, min_sequence: record.minSequence,
      proposal: record.proposal, proposed_by: record.proposedBy, proposed_at: record.proposedAt,
    }), `model ${record.model} has a release ${record.version} or one with sequence ${record.sequence} already`);
  }

  async find(model: string, version: string): Promise<FirmwareReleaseRecord | undefined> {
    const row = await this.db('firmware_releases').select(COLUMNS).where({ model, version }).first();
    return row ? fromRow(row) : undefined;
  }

  async findForUpdate(model: string, version: string): Promise<FirmwareReleaseRecord | undefined> {
    const row = await this.db('firmware_releases').select(COLUMNS).where({ model, version }).forUpdate().first();
    return row ? fromRow(row) : undefined;
  }

  /** The model's highest sequence number, proposed or approved: a new release must go above it. Legacy releases (0) do not count. */
  async highestSequence(model: string): Promise<number | undefined> {
    const row = await this.db('firmware_releases').max({ n: 'sequence' }).where({ model, legacy: false }).first();
    return row?.n === null || row?.n === undefined ? undefined : Number(row.n);
  }

  async byModel(model: string): Promise<FirmwareReleaseRecord[]> {
    return (await this.db('firmware_releases').select(COLUMNS).where({ model }).orderBy([{ column: 'legacy', order: 'desc' }, 'sequence', 'proposed_at', 'version'])).map(fromRow);
  }

  /** Per model with releases: how many are proposed, approved (signed or legacy) and withdrawn. */
  async summaryByModel(): Promise<Array<{ model: string; proposed: number; approved: number; withdrawn: number; legacy: number }>> {
    const rows = await this.db('firmware_releases').select('model')
      .select(this.db.raw('count(*) filter (where approved_at is null) as proposed'))
      .select(this.db.raw('count(*) filter (where approved_at is not null and withdrawn_at is null) as approved'))
      .select(this.db.raw('count(*) filter (where withdrawn_at is not null) as withdrawn'))
      .select(this.db.raw('count(*) filter (where legacy) as legacy'))
      .groupBy('model').orderBy('model');
    return rows.map((row: Record<string, unknown>) => ({
      model: String(row.model), proposed: Number(row.proposed), approved: Number(row.approved), withdrawn: Number(row.withdrawn), legacy: Number(row.legacy),
    }));
  }

  /** The signed releases with these manifest hashes (the export carries the envelopes its firmware lineage names). */
  async byManifests(hashes: readonly string[]): Promise<FirmwareReleaseRecord[]> {
    if (hashes.length === 0) return [];
    return (await this.db('firmware_releases').select(COLUMNS).whereIn('manifest_sha256', hashes).whereNotNull('envelope').orderBy(['model', 'sequence'])).map(fromRow);
  }

  /** The model's legacy releases that are not withdrawn: its allowlist as PUT .../firmware last left it. */
  async liveLegacy(model: string): Promise<LegacyEntry[]> {
    const rows = await this.db('firmware_releases').select('version', 'digest').where({ model, legacy: true }).whereNull('withdrawn_at').orderBy(['proposed_at', 'version']);
    return rows.map((row: { version: string; digest: string }) => ({ version: row.version, digest: row.digest }));
  }

  /** A legacy release, accepted from now (approved by nobody: it is an allowlist entry). */
  async insertLegacy(model: string, entry: LegacyEntry, proposal: string, principal: string, now: Date): Promise<void> {
    await conflictsAsStoreErrors(this.db('firmware_releases').insert({
      model, version: entry.version, digest: entry.digest, size: 0, sequence: 0, min_sequence: null, proposal, legacy: true,
      proposed_by: principal, proposed_at: now, approved_by: principal, approved_at: now,
    }), `model ${model} has a release ${entry.version} already`);
  }

  /** A withdrawn legacy release listed again: accepted again (false when it is not a withdrawn legacy release). */
  async reinstateLegacy(model: string, version: string): Promise<boolean> {
    const updated = await this.db('firmware_releases').where({ model, version, legacy: true }).whereNotNull('withdrawn_at')
      .update({ withdrawn_at: null, withdrawn_by: null, withdraw_reason: null });
    return updated === 1;
  }

  /** Records the approval and the signed envelope; false when it was approved meanwhile. */
  async approve(model: string, version: string, approval: { approvedBy: string; approvedAt: Date; signerCertificateSerial: string; envelope: Buffer; manifestSha256: string }): Promise<boolean> {
    const updated = await this.db('firmware_releases').where({ model, version }).whereNull('approved_at').update({
      approved_by: approval.approvedBy, approved_at: approval.approvedAt, signer_certificate_serial: approval.signerCertificateSerial,
      envelope: approval.envelope, manifest_sha256: approval.manifestSha256,
    });
    return updated === 1;
  }

  /** Withdraws an approved release (compare-and-set: once). */
  async withdraw(model: string, version: string, withdrawal: { withdrawnBy: string; withdrawnAt: Date; reason: string }): Promise<boolean> {
    const updated = await this.db('firmware_releases').where({ model, version }).whereNotNull('approved_at').whereNull('withdrawn_at').update({
      withdrawn_at: withdrawal.withdrawnAt, withdrawn_by: withdrawal.withdrawnBy, withdraw_reason: withdrawal.reason,
    });
    return updated === 1;
  }
}

function fromRow(row: Record<string, unknown>): FirmwareReleaseRecord {
  return {
    model: String(row.model), version: String(row.version), digest: String(row.digest), size: Number(row.size), sequence: Number(row.sequence),
    minSequence: row.min_sequence === null || row.min_sequence === undefined ? null : Number(row.min_sequence),
    proposal: String(row.proposal), proposedBy: String(row.proposed_by), proposedAt: toDate(row.proposed_at),
    approvedBy: toStringOrNull(row.approved_by), approvedAt: toDateOrNull(row.approved_at), signerCertificateSerial: toStringOrNull(row.signer_certificate_serial),
    envelope: row.envelope === null || row.envelope === undefined ? null : toBuffer(row.envelope), manifestSha256: toStringOrNull(row.manifest_sha256),
    withdrawnAt: toDateOrNull(row.withdrawn_at), withdrawnBy: toStringOrNull(row.withdrawn_by), withdrawReason: toStringOrNull(row.withdraw_reason),
    legacy: row.legacy === true,
  };
}
