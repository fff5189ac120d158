import type { Knex } from 'knex';
import { toDate, toDateOrNull, toStringOrNull } from './convert.ts';

/** Where a manufacturer's revocation comes from: its CRL at a URL (polled), a CRL the operator uploads, or nothing. */
export type CrlSource = { url: string } | { pem: string } | null;

/** A manufacturer's trust configuration (docs/operators/manufacturers.md). */
export interface ManufacturerConfig {
  /** Its root (self-signed) and intermediates, base64 DER. */
  certificates: string[];
  /** The models it may vouch for. */
  models: string[];
  crl: CrlSource;
}

export type ManufacturerStatus = 'pending' | 'active' | 'withdrawn';

/** The manufacturer's current CRL, as last verified. */
export interface ManufacturerCrlState {
  issuerSha256: string | null;
  number: string | null;
  sha256: string | null;
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  checkedAt: Date | null;
  error: string | null;
}

export interface ManufacturerRecord {
  id: string;
  /** pending: never approved; active: `active` is in force (a `proposed` change may wait beside it); withdrawn: trusted no more. */
  status: ManufacturerStatus;
  active: ManufacturerConfig | null;
  proposed: ManufacturerConfig | null;
  /** Certificates once active, since withdrawn or left out by a change (base64 DER): the export keeps old births checkable. */
  retired: string[];
  proposedBy: string | null;
  proposedAt: Date | null;
  approvedBy: string | null;
  approvedAt: Date | null;
  withdrawnBy: string | null;
  withdrawnAt: Date | null;
  withdrawReason: string | null;
  crl: ManufacturerCrlState;
  createdAt: Date;
  updatedAt: Date;
}

export interface CrlEntry {
  serialHex: string;
  revokedAt: Date;
  reason: number | null;
}

const json = <T>(value: unknown): T | null => (value === null || value === undefined ? null : typeof value === 'string' ? (JSON.parse(value) as T) : (value as T));

/** Registered manufacturers: their anchors (active and proposed), withdrawal, and their CRLs' entries. */
export class ManufacturerStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async find(id: string): Promise<ManufacturerRecord | undefined> {
    const row = await this.db('manufacturers').where({ id }).first();
    return row ? fromRow(row) : undefined;
  }

  /** The row locked until the transaction ends: approvals, withdrawals and CRL updates of one manufacturer take turns. */
  async findForUpdate(id: string): Promise<ManufacturerRecord | undefined> {
    const row = await this.db('manufacturers').where({ id }).forUpdate().first();
    return row ? fromRow(row) : undefined;
  }

  async all(): Promise<ManufacturerRecord[]> {
    return (await this.db('manufacturers').orderBy('id')).map(fromRow);
  }

  /** Whether any manufacturer but ourselves may vouch for devices: only then may an order name an unknown serial. */
  async anyActive(): Promise<boolean> {
    return (await this.db('manufacturers').select('id').where({ status: 'active' }).first()) !== undefined;
  }

  /** A new manufacturer (pending), or a proposed change beside the active configuration; false when it was withdrawn. */
  async propose(id: string, config: ManufacturerConfig, principal: string, now: Date): Promise<{ record: ManufacturerRecord; created: boolean } | undefined> {
    const proposal = { proposed: JSON.stringify(config), proposed_by: principal, proposed_at: now, updated_at: now };
    const inserted = await this.db('manufacturers').insert({ id, status: 'pending', ...proposal, created_at: now }).onConflict('id').ignore().returning('*');
    if (inserted.length > 0) return { record: fromRow(inserted[0]), created: true };
    const [row] = await this.db('manufacturers').where({ id }).whereNot({ status: 'withdrawn' }).update(proposal).returning('*');
    return row ? { record: fromRow(row), created: false } : undefined;
  }

  /** Puts the proposal in force (compare-and-set on who proposed it and when); `retired` replaces the retired list. */
  async approve(id: string, proposedAt: Date, principal: string, now: Date, retired: readonly string[]): Promise<ManufacturerRecord | undefined> {
    const [row] = await this.db('manufacturers').where({ id, proposed_at: proposedAt }).whereNot({ status: 'withdrawn' }).whereNotNull('proposed')
      .update({ status: 'active', active: this.db.raw('proposed'), proposed: null, retired: JSON.stringify(retired), approved_by: principal, approved_at: now, updated_at: now })
      .returning('*');
    return row ? fromRow(row) : undefined;
  }

  async withdraw(id: string, principal: string, reason: string, now: Date): Promise<ManufacturerRecord | undefined> {
    const [row] = await this.db('manufacturers').where({ id }).whereNot({ status: 'withdrawn' })
      .update({ status: 'withdrawn', proposed: null, withdrawn_by: principal, withdrawn_at: now, withdraw_reason: reason, updated_at: now })
      .returning('*');
    return row ? fromRow(row) : undefined;
  }

  /** Replaces the active configuration without a proposal: only to take trust away (an intermediate withdrawn, also from a pending proposal). */
  async narrow(id: string, config: ManufacturerConfig, proposed: ManufacturerConfig | null, retired: readonly string[], now: Date): Promise<void> {
    await this.db('manufacturers').where({ id }).update({
      active: JSON.stringify(config), proposed: proposed === null ? null : JSON.stringify(proposed), retired: JSON.stringify(retired), updated_at: now,
    });
  }

  /** A new CRL source: the old CRL's state and entries go; until the new one is read, attestations fail closed. */
  async resetCrl(id: string): Promise<void> {
    await this.db('manufacturer_crl_entries').where({ manufacturer_id: id }).delete();
    await this.db('manufacturers').where({ id }).update({
      crl_issuer_sha256: null, crl_number: null, crl_sha256: null, crl_this_update: null, crl_next_update: null, crl_checked_at: null, crl_error: null,
    });
  }

  /** Records a verified CRL, or the error of the last attempt (the previous CRL stays in force). */
  async setCrlState(id: string, state: Partial<ManufacturerCrlState>): Promise<void> {
    const columns: Record<string, unknown> = {};
    if (state.issuerSha256 !== undefined) columns.crl_issuer_sha256 = state.issuerSha256;
    if (state.number !== undefined) columns.crl_number = state.number;
    if (state.sha256 !== undefined) columns.crl_sha256 = state.sha256;
    if (state.thisUpdate !== undefined) columns.crl_this_update = state.thisUpdate;
    if (state.nextUpdate !== undefined) columns.crl_next_update = state.nextUpdate;
    if (state.checkedAt !== undefined) columns.crl_checked_at = state.checkedAt;
    if (state.error !== undefined) columns.crl_error = state.error;
    await this.db('manufacturers').where({ id }).update(columns);
  }

  /** Replaces the CRL's entries; returns the serials that are new since the previous CRL. */
  async replaceCrlEntries(id: string, entries: readonly CrlEntry[]): Promise<string[]> {
    const before = new Set((await this.db('manufacturer_crl_entries').select('serial_hex').where({ manufacturer_id: id })).map((r: { serial_hex: string }) => r.serial_hex));
    await this.db('manufacturer_crl_entries').where({ manufacturer_id: id }).delete();
    for (let i = 0; i < entries.length; i += 1000) {
      await this.db('manufacturer_crl_entries').insert(entries.slice(i, i + 1000).map((e) => ({ manufacturer_id: id, serial_hex: e.serialHex, revoked_at: e.revokedAt, reason: e.reason })));
    }
    return entries.map((e) => e.serialHex).filter((serial) => !before.has(serial));
  }

  async crlEntry(id: string, serialHex: string): Promise<CrlEntry | undefined> {
    const row = await this.db('manufacturer_crl_entries').where({ manufacturer_id: id, serial_hex: serialHex }).first();
    return row ? { serialHex: String(row.serial_hex), revokedAt: toDate(row.revoked_at), reason: row.reason === null ? null : Number(row.reason) } : undefined;
  }

  /** Manufacturers whose CRL is polled from a URL. */
  async polled(): Promise<ManufacturerRecord[]> {
    return (await this.all()).filter((m) => m.status === 'active' && m.active?.crl !== null && m.active?.crl !== undefined && 'url' in m.active.crl);
  }
}

function fromRow(row: Record<string, unknown>): ManufacturerRecord {
  return {
    id: String(row.id),
    status: row.status as ManufacturerStatus,
    active: json<ManufacturerConfig>(row.active),
    proposed: json<ManufacturerConfig>(row.proposed),
    retired: json<string[]>(row.retired) ?? [],
    proposedBy: toStringOrNull(row.proposed_by),
    proposedAt: toDateOrNull(row.proposed_at),
    approvedBy: toStringOrNull(row.approved_by),
    approvedAt: toDateOrNull(row.approved_at),
    withdrawnBy: toStringOrNull(row.withdrawn_by),
    withdrawnAt: toDateOrNull(row.withdrawn_at),
    withdrawReason: toStringOrNull(row.withdraw_reason),
    crl: {
      issuerSha256: toStringOrNull(row.crl_issuer_sha256), number: toStringOrNull(row.crl_number), sha256: toStringOrNull(row.crl_sha256),
      thisUpdate: toDateOrNull(row.crl_this_update), nextUpdate: toDateOrNull(row.crl_next_update), checkedAt: toDateOrNull(row.crl_checked_at),
      error: toStringOrNull(row.crl_error),
    },
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
