import type { Knex } from 'knex';
import { AccountCache, AcmeStore } from './acme-store.ts';
import { AuditStore } from './audit-store.ts';
import { BatchStore } from './batch-store.ts';
import { CaStore } from './ca-store.ts';
import { CertificateStore } from './certificate-store.ts';
import { ClaimStore } from './claim-store.ts';
import { CheckpointStore } from './checkpoint-store.ts';
import { CrlStore } from './crl-store.ts';
import { DeviceClassStore } from './device-class-store.ts';
import { DeviceStore } from './device-store.ts';
import { FirmwareStore } from './firmware-store.ts';
import { GatewayStore, NonceStore } from './gateway-store.ts';
import { FirmwareReleaseStore } from './firmware-release-store.ts';
import { FirmwareSignerStore } from './firmware-signer-store.ts';
import { ManufacturerStore } from './manufacturer-store.ts';
import { ModelStore } from './model-store.ts';
import { OcspStore } from './ocsp-store.ts';
import { OcspResponderStore } from './ocsp-responder-store.ts';
import { OwnershipStore } from './ownership-store.ts';
import { SessionStore } from './session-store.ts';
import { SettingsStore } from './settings-store.ts';
import { SupportStore } from './support-store.ts';
import { TlogStore } from './tlog-store.ts';
import { TokenStore } from './token-store.ts';
import { TpmActivationStore } from './tpm-activation-store.ts';

export { LOCKS } from './locks.ts';

/**
 * The only door to the database. Each area is its own small store over the
 * same connection; `transaction` hands out a Store bound to one transaction so
 * every multi-row write (an action and its audit event) commits or fails whole.
 * Consumers take the narrow subsets of store/subsets.ts, not the whole Store.
 */
export class Store {
  readonly settings: SettingsStore;
  readonly caCertificates: CaStore;
  readonly certificates: CertificateStore;
  readonly tokens: TokenStore;
  readonly audit: AuditStore;
  readonly checkpoints: CheckpointStore;
  readonly tlog: TlogStore;
  readonly devices: DeviceStore;
  readonly models: ModelStore;
  readonly acme: AcmeStore;
  readonly deviceClasses: DeviceClassStore;
  readonly firmware: FirmwareStore;
  readonly firmwareSigners: FirmwareSignerStore;
  readonly firmwareReleases: FirmwareReleaseStore;
  readonly ocsp: OcspStore;
  readonly ocspResponders: OcspResponderStore;
  readonly crls: CrlStore;
  readonly batches: BatchStore;
  readonly ownership: OwnershipStore;
  readonly support: SupportStore;
  readonly sessions: SessionStore;
  readonly manufacturers: ManufacturerStore;
  readonly claims: ClaimStore;
  readonly tpmActivations: TpmActivationStore;
  readonly gateways: GatewayStore;
  readonly estNonces: NonceStore;

  /** `accountCache`: shared by a Store and the ones its transactions hand out; made here for a single-connection database. */
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly accountCache?: AccountCache | null,
  ) {
    if (this.accountCache === undefined) this.accountCache = this.singleConnection ? new AccountCache() : null;
    this.settings = new SettingsStore(db);
    this.caCertificates = new CaStore(db);
    this.certificates = new CertificateStore(db);
    this.tokens = new TokenStore(db);
    this.audit = new AuditStore(db);
    this.checkpoints = new CheckpointStore(db);
    this.tlog = new TlogStore(db);
    this.devices = new DeviceStore(db);
    this.models = new ModelStore(db);
    this.acme = new AcmeStore(db, this.accountCache);
    this.deviceClasses = new DeviceClassStore(db);
    this.firmware = new FirmwareStore(db);
    this.firmwareSigners = new FirmwareSignerStore(db);
    this.firmwareReleases = new FirmwareReleaseStore(db);
    this.ocsp = new OcspStore(db);
    this.ocspResponders = new OcspResponderStore(db);
    this.crls = new CrlStore(db);
    this.batches = new BatchStore(db);
    this.ownership = new OwnershipStore(db);
    this.support = new SupportStore(db);
    this.sessions = new SessionStore(db);
    this.manufacturers = new ManufacturerStore(db);
    this.claims = new ClaimStore(db);
    this.tpmActivations = new TpmActivationStore(db);
    this.gateways = new GatewayStore(db);
    this.estNonces = new NonceStore(db);
  }

  get inTransaction(): boolean {
    return this.db.isTransaction === true;
  }

  /** A named PostgreSQL advisory lock held until the surrounding transaction ends. */
  async lock(name: string): Promise<void> {
    if (!this.inTransaction) throw new Error('advisory locks are taken inside a transaction');
    if (this.singleConnection) return; // nothing runs beside this transaction: no lock to wait for
    await this.db.raw('select pg_advisory_xact_lock(hashtext(?))', [name]);
  }

  /** The shared form: many holders at once, none while someone holds it exclusively (lock). */
  async lockShared(name: string): Promise<void> {
    if (!this.inTransaction) throw new Error('advisory locks are taken inside a transaction');
    if (this.singleConnection) return;
    await this.db.raw('select pg_advisory_xact_lock_shared(hashtext(?))', [name]);
  }

  /**
   * PGlite: one connection in one process (the data directory is locked), so
   * no other transaction runs beside this one, and the advisory locks below
   * are skipped (a round trip each for nothing); PostgreSQL: a pool, and
   * maybe other processes.
   */
  get singleConnection(): boolean {
    return typeof (this.db.client.config as { client?: unknown }).client !== 'string';
  }

  /** Several advisory locks in one round trip: the exclusive ones, then the shared ones, in the order given. */
  async lockAll(exclusive: readonly string[], shared: readonly string[]): Promise<void> {
    if (!this.inTransaction) throw new Error('advisory locks are taken inside a transaction');
    if (this.singleConnection) return;
    const calls = [...exclusive.map(() => 'pg_advisory_xact_lock(hashtext(?))'), ...shared.map(() => 'pg_advisory_xact_lock_shared(hashtext(?))')];
    await this.db.raw(`select ${calls.join(', ')}`, [...exclusive, ...shared]);
  }

  /** Runs work in one READ COMMITTED transaction (or in the caller's, when already inside one). */
  async transaction<T>(work: (tx: Store) => Promise<T>): Promise<T> {
    if (this.inTransaction) return work(this);
    return (this.db as Knex).transaction((trx) => work(new Store(trx, this.accountCache)));
  }

  /** Times every statement (metrics): its duration in seconds, and whether it failed. */
  observeQueries(listener: (seconds: number, failed: boolean) => void): void {
    const started = new Map<string, number>();
    const db = this.db as Knex;
    db.on('query', (query: { __knexQueryUid: string }) => started.set(query.__knexQueryUid, performance.now()));
    const done = (failed: boolean) => (_result: unknown, query: { __knexQueryUid: string }) => {
      const start = started.get(query.__knexQueryUid);
      if (start === undefined) return;
      started.delete(query.__knexQueryUid);
      listener((performance.now() - start) / 1000, failed);
    };
    db.on('query-response', done(false));
    db.on('query-error', done(true));
  }

  /** One round trip: throws when the database does not answer (readiness checks). */
  async ping(): Promise<void> {
    await this.db.raw('select 1');
  }

  async close(): Promise<void> {
    if (!this.inTransaction) await (this.db as Knex).destroy();
  }
}
