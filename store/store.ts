import type { Knex } from 'knex';
import { AuditStore } from './audit-store.ts';
import { CaStore } from './ca-store.ts';
import { CertificateStore } from './certificate-store.ts';
import { CheckpointStore } from './checkpoint-store.ts';
import { DeviceStore } from './device-store.ts';
import { ModelStore } from './model-store.ts';
import { SettingsStore } from './settings-store.ts';
import { TokenStore } from './token-store.ts';

/** Names of the advisory locks that serialise work across server processes. */
export const LOCKS = {
  /** Appends from every process on one PostgreSQL form a single audit chain. */
  auditChain: 'devid-audit-chain',
  /** Nodes starting together create one hierarchy. */
  init: 'devid-init',
  /** Two nodes cannot create two audit keys with one label. */
  auditKey: 'devid-audit-key',
  /** Concurrent requests for one serial see each other's result. */
  device: (serial: string) => `device:${serial}`,
} as const;

/**
 * The only door to the database. Each area is its own small store over the
 * same connection; `transaction` hands out a Store bound to one transaction so
 * every multi-row write (an action and its audit event) commits or fails whole.
 */
export class Store {
  readonly settings: SettingsStore;
  readonly caCertificates: CaStore;
  readonly certificates: CertificateStore;
  readonly tokens: TokenStore;
  readonly audit: AuditStore;
  readonly checkpoints: CheckpointStore;
  readonly devices: DeviceStore;
  readonly models: ModelStore;

  constructor(readonly db: Knex | Knex.Transaction) {
    this.settings = new SettingsStore(db);
    this.caCertificates = new CaStore(db);
    this.certificates = new CertificateStore(db);
    this.tokens = new TokenStore(db);
    this.audit = new AuditStore(db);
    this.checkpoints = new CheckpointStore(db);
    this.devices = new DeviceStore(db);
    this.models = new ModelStore(db);
  }

  /** A named PostgreSQL advisory lock held until the surrounding transaction ends. */
  async lock(name: string): Promise<void> {
    if (!this.db.isTransaction) throw new Error('advisory locks are taken inside a transaction');
    await this.db.raw('select pg_advisory_xact_lock(hashtext(?))', [name]);
  }

  async transaction<T>(work: (tx: Store) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return work(this);
    return (this.db as Knex).transaction((trx) => work(new Store(trx)));
  }

  async close(): Promise<void> {
    if (!this.db.isTransaction) await (this.db as Knex).destroy();
  }
}
