import type { AcmeStore } from './acme-store.ts';
import type { ClaimStore } from './claim-store.ts';
import type { AuditStore } from './audit-store.ts';
import type { CaStore } from './ca-store.ts';
import type { CertificateStore } from './certificate-store.ts';
import type { CrlStore } from './crl-store.ts';
import type { DeviceStore } from './device-store.ts';
import type { FirmwareStore } from './firmware-store.ts';
import type { OcspStore } from './ocsp-store.ts';
import type { OcspResponderStore } from './ocsp-responder-store.ts';
import type { OwnershipStore } from './ownership-store.ts';
import type { SupportStore } from './support-store.ts';

/**
 * The narrow parts of the Store each consumer may use (after Boulder's
 * sa/proto/subsets.go): a component declares what it reads and writes, and
 * the type checker keeps it to that.
 */

/** ca/issuance.ts: records what it signs. */
export interface IssuanceStore {
  certificates: Pick<CertificateStore, 'insert'>;
  ocsp: Pick<OcspStore, 'put'>;
}

/**
 * A store whose transactions hand `work` the subset S: Store is one for every
 * S it satisfies, as its transaction hands out a whole Store.
 */
export interface Transactional<S> {
  readonly inTransaction: boolean;
  transaction<T>(work: (tx: S) => Promise<T>): Promise<T>;
}

/** registry/audit/audit-log.ts: what the log writes in every audited transaction. */
export interface AuditWrites {
  audit: Pick<AuditStore, 'insertPending' | 'chainPending' | 'lockChain'>;
}

/** registry/audit/audit-log.ts: the top-level store of an audited action whose work needs S (record, chain). */
export interface AuditedStore<S extends AuditWrites = AuditWrites> extends Transactional<S> {
  readonly singleConnection: boolean;
}

/** enroll/factory.ts: devices, their certificates and models. */
export interface FactoryStore extends IssuanceStore {
  devices: Pick<DeviceStore, 'forBirth' | 'insert' | 'rebind'>;
  certificates: Pick<CertificateStore, 'insert' | 'byDevice' | 'devicesWithKey'>;
}

/** registry/lifecycle/revocation.ts: certificates, their OCSP responses and CRL marks. */
export interface RevocationStore {
  certificates: Pick<CertificateStore, 'revoke' | 'revokeLiveOfDevices'>;
  acme: Pick<AcmeStore, 'invalidateLiveOrders'>;
  ocsp: Pick<OcspStore, 'markStale'>;
  crls: Pick<CrlStore, 'mark'>;
}

/** registry/ lifecycle: device states and certificate revocation. */
export interface LifecycleStore extends RevocationStore {
  devices: Pick<DeviceStore, 'get' | 'find' | 'transition'>;
}

/** ca/hierarchy.ts: the CA certificates, and the OCSP responder keys a ceremony's undo must spare. */
export interface HierarchyStore {
  caCertificates: CaStore;
  ocspResponders: Pick<OcspResponderStore, 'keyIds'>;
}

/** registry/reports/device-history.ts: reads only. */
export interface HistoryStore {
  claims: Pick<ClaimStore, 'find' | 'birthOf' | 'statements'>;
  caCertificates: Pick<CaStore, 'all'>;
  devices: Pick<DeviceStore, 'find'>;
  certificates: Pick<CertificateStore, 'byDevice'>;
  audit: Pick<AuditStore, 'byDevice'>;
  firmware: Pick<FirmwareStore, 'byDevice'>;
  support: Pick<SupportStore, 'byDevice'>;
  ownership: Pick<OwnershipStore, 'byDevice'>;
}
