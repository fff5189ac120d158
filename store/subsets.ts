import type { Store } from './store.ts';
import type { AcmeStore } from './acme-store.ts';
import type { ClaimStore } from './claim-store.ts';
import type { AuditStore } from './audit-store.ts';
import type { BatchStore } from './batch-store.ts';
import type { CaStore } from './ca-store.ts';
import type { CertificateStore } from './certificate-store.ts';
import type { CheckpointStore } from './checkpoint-store.ts';
import type { CrlStore } from './crl-store.ts';
import type { DeviceClassStore } from './device-class-store.ts';
import type { DeviceStore } from './device-store.ts';
import type { FirmwareStore } from './firmware-store.ts';
import type { FirmwareReleaseStore } from './firmware-release-store.ts';
import type { FirmwareSignerStore } from './firmware-signer-store.ts';
import type { GatewayStore } from './gateway-store.ts';
import type { ManufacturerStore } from './manufacturer-store.ts';
import type { ModelStore } from './model-store.ts';
import type { OcspStore } from './ocsp-store.ts';
import type { OcspResponderStore } from './ocsp-responder-store.ts';
import type { OwnershipStore } from './ownership-store.ts';
import type { SessionStore } from './session-store.ts';
import type { SettingsStore } from './settings-store.ts';
import type { SupportStore } from './support-store.ts';
import type { TlogStore } from './tlog-store.ts';
import type { TokenStore } from './token-store.ts';
import type { TpmActivationStore } from './tpm-activation-store.ts';

/**
 * The narrow parts of the Store each consumer may use (after Boulder's
 * sa/proto/subsets.go): a component declares what it reads and writes, and
 * the type checker keeps it to that.
 */

/** ca/issuance.ts: records what it signs. */
export interface IssuanceStore {
  certificates: Pick<CertificateStore, 'insertIssued'>;
}

/**
 * A store whose transactions hand `work` the subset S: Store is one for every
 * S it satisfies, as its transaction hands out a whole Store.
 */
export interface Transactional<S> {
  readonly inTransaction: boolean;
  transaction<T>(work: (tx: S) => Promise<T>): Promise<T>;
}

/** What the transactions of a subset hand out: several consumers' needs combine as AuditedStore<TxOf<A> & TxOf<B>>. */
export type TxOf<S> = S extends Transactional<infer T> ? T : never;

/** registry/audit/audit-log.ts: what the log writes in every audited transaction. */
export interface AuditWrites {
  audit: Pick<AuditStore, 'insertPending' | 'appendChained' | 'chainPending' | 'lockChain'>;
}

/** registry/audit/audit-log.ts: the top-level store of an audited action whose work needs S (record, chain). */
export interface AuditedStore<S extends AuditWrites = AuditWrites> extends Transactional<S> {
  readonly singleConnection: boolean;
}

/** enroll/factory.ts: devices, their certificates and models. */
export interface FactoryStore extends IssuanceStore, TpmRedeemStore {
  devices: Pick<DeviceStore, 'forBirth' | 'insert' | 'rebind' | 'bindDeclared'>;
  certificates: Pick<CertificateStore, 'insertIssued' | 'byDevice' | 'devicesWithKey'>;
}

/** registry/lifecycle/revocation.ts: certificates, their OCSP responses and CRL marks. */
export interface RevocationStore {
  certificates: Pick<CertificateStore, 'revoke' | 'revokeLiveOfDevices'>;
  gateways: Pick<GatewayStore, 'liveMediatedBy'>;
  acme: Pick<AcmeStore, 'invalidateLiveOrders'>;
  ocsp: Pick<OcspStore, 'markStale'>;
  crls: Pick<CrlStore, 'mark'>;
}

/** registry/ lifecycle: device states and certificate revocation. */
export interface LifecycleStore extends RevocationStore {
  devices: Pick<DeviceStore, 'get' | 'find' | 'transition'>;
}

/** ca/hierarchy.ts: the CA certificates, and the OCSP responder and firmware signer keys a ceremony's undo must spare. */
export interface HierarchyStore {
  caCertificates: CaStore;
  ocspResponders: Pick<OcspResponderStore, 'keyIds'>;
  firmwareSigners: Pick<FirmwareSignerStore, 'keyIds'>;
}

/** registry/reports/device-history.ts: reads only. */
export interface HistoryStore {
  claims: Pick<ClaimStore, 'find' | 'birthOf' | 'statements'>;
  caCertificates: Pick<CaStore, 'all'>;
  devices: Pick<DeviceStore, 'find'>;
  certificates: Pick<CertificateStore, 'byDevice'>;
  audit: Pick<AuditStore, 'byDevice'>;
  firmware: Pick<FirmwareStore, 'byDevice'>;
  /** The signers of the releases the firmware lineage names. */
  firmwareReleases: Pick<FirmwareReleaseStore, 'byManifests'>;
  support: Pick<SupportStore, 'byDevice'>;
  ownership: Pick<OwnershipStore, 'byDevice'>;
  gateways: Pick<GatewayStore, 'pathsOfDevice'>;
}

/** An advisory lock held until the transaction ends (Store.lock). */
export interface Locking {
  lock(name: string): Promise<void>;
}

/** Several advisory locks in one round trip (Store.lockAll). */
export interface LockingAll {
  lockAll(exclusive: readonly string[], shared: readonly string[]): Promise<void>;
}

/** enroll/factory.ts: a birth certificate's transaction, and the keys' devices read after a refused one. */
export interface FactoryServiceStore extends AuditedStore<AuditWrites & LockingAll & FactoryStore>, TpmChallengeStore {
  certificates: Pick<CertificateStore, 'devicesWithKey'>;
}

/** registry/audit/audit-key.ts: the audit key's certificate, recorded once. */
export interface AuditKeyStore extends AuditedStore<AuditWrites & Locking & {
  caCertificates: Pick<CaStore, 'all' | 'insert'>;
  checkpoints: Pick<CheckpointStore, 'latest'>;
}> {
  caCertificates: Pick<CaStore, 'all'>;
}

/** registry/audit/audit-checkpoints.ts: a signed checkpoint of the chain head. */
export type CheckpointingStore = Transactional<Locking & {
  audit: Pick<AuditStore, 'head'>;
  checkpoints: Pick<CheckpointStore, 'latest' | 'insert'>;
}>;

/** registry/audit/audit-verify.ts: chains what is pending, then checks the chain and its checkpoints. */
export interface AuditVerifyStore extends AuditedStore {
  audit: Pick<AuditStore, 'page' | 'bySeq'>;
  checkpoints: Pick<CheckpointStore, 'all'>;
}

/** registry/tlog/transparency-log.ts: extends the tiles from the chained events and signs checkpoints. */
export type TlogStepStore = Transactional<Locking & {
  audit: Pick<AuditStore, 'page'>;
  tlog: Pick<TlogStore, 'lastTiles' | 'putTiles' | 'latestCheckpoint' | 'insertCheckpoint'>;
}>;

/** registry/tlog/transparency-log.ts: what the log's endpoints read. */
export interface TlogReadStore {
  audit: Pick<AuditStore, 'page'>;
  tlog: Pick<TlogStore, 'tile' | 'latestCheckpoint' | 'cosignaturesAt'>;
}

/** registry/tlog/device-proof.ts: a device's entries with their inclusion proofs. */
export interface DeviceProofStore {
  audit: Pick<AuditStore, 'byDevice'>;
  tlog: Pick<TlogStore, 'tile' | 'latestCheckpoint' | 'checkpointAt'>;
}

/** registry/tlog/log-key.ts: the log key, made once under the ceremony lock. */
export type TlogKeyStore = Transactional<Locking & { tlog: Pick<TlogStore, 'latestCheckpoint'> }>;

/** registry/tlog/witnesses.ts: submits checkpoints to witnesses and keeps their cosignatures. */
export interface WitnessStore {
  tlog: Pick<TlogStore, 'tile' | 'latestCheckpoint' | 'cosignedSizes' | 'insertCosignature' | 'setWitnessStatus'>;
}

/** registry/tlog/witnesses.ts: what /readyz and the metrics say of each witness. */
export interface WitnessHealthStore {
  tlog: Pick<TlogStore, 'latestCheckpoint' | 'cosignedSizes' | 'witnessStatuses'>;
}

/** registry/tlog/tlog-verify.ts: the events, the stored tiles and the latest checkpoint. */
export interface TlogVerifyStore {
  audit: Pick<AuditStore, 'page'>;
  tlog: Pick<TlogStore, 'tile' | 'lastTiles' | 'latestCheckpoint'>;
}

/** registry/audit/audit-export.ts: reads only. */
export interface AuditExportStore {
  caCertificates: Pick<CaStore, 'all'>;
  manufacturers: Pick<ManufacturerStore, 'all'>;
  checkpoints: Pick<CheckpointStore, 'all'>;
  devices: Pick<DeviceStore, 'page'>;
  claims: Pick<ClaimStore, 'birthsOfDevices'>;
  certificates: Pick<CertificateStore, 'byDevices'>;
  audit: Pick<AuditStore, 'firstSeqOf' | 'head' | 'page'>;
  /** The firmware lineage and the signed manifests it names (registry/audit/export-firmware.ts). */
  firmware: Pick<FirmwareStore, 'byDevices'>;
  firmwareReleases: Pick<FirmwareReleaseStore, 'byManifests'>;
}

/** registry/catalogue/models.ts: a model's declaration. */
export type ModelCatalogueStore = AuditedStore<AuditWrites & {
  models: Pick<ModelStore, 'insert' | 'byNameForUpdate' | 'setDefaultClass' | 'update'>;
  deviceClasses: Pick<DeviceClassStore, 'find'>;
  devices: Pick<DeviceStore, 'anyOfModel'>;
}>;

/** registry/catalogue/device-classes.ts: the classes, and which device has which. */
export type DeviceClassCatalogueStore = AuditedStore<AuditWrites & Locking & {
  deviceClasses: Pick<DeviceClassStore, 'find' | 'put'>;
  devices: Pick<DeviceStore, 'get' | 'setClass'>;
}>;

/** registry/catalogue/constrained-devices.ts: a device declared for gateways, and the gateways allowed to mediate it. */
export type ConstrainedDeviceStore = AuditedStore<AuditWrites & Locking & {
  models: Pick<ModelStore, 'byName'>;
  deviceClasses: Pick<DeviceClassStore, 'find'>;
  devices: Pick<DeviceStore, 'find' | 'getWithClass' | 'insert'>;
  gateways: Pick<GatewayStore, 'gatewaysOf' | 'allow'>;
}>;

/** registry/catalogue/firmware-policy.ts: a model's firmware allowlist. */
export type FirmwarePolicyStore = AuditedStore<AuditWrites & {
  models: Pick<ModelStore, 'byNameForUpdate' | 'legacyFirmwareUntil' | 'setLegacyFirmwareUntil'>;
  firmwareReleases: Pick<FirmwareReleaseStore, 'liveLegacy' | 'insertLegacy' | 'reinstateLegacy' | 'withdraw' | 'findForUpdate'>;
}>;

/** registry/lifecycle/lifecycle.ts recordTransfer: a change of owner inside the caller's transaction. */
export interface OwnerChangeStore {
  devices: Pick<DeviceStore, 'get' | 'setOwner'>;
  ownership: Pick<OwnershipStore, 'insert'>;
}

/** registry/lifecycle/lifecycle.ts: an operator moves a device (revoking its certificates), or hands it over. */
export type DeviceLifecycleStore = AuditedStore<AuditWrites & Locking & LifecycleStore & OwnerChangeStore & {
  claims: Pick<ClaimStore, 'supersede'>;
}>;

/** enroll/tpm-activation.ts: a TPM challenge is made from the model, the TPM maker and the line's open challenges. */
export interface TpmChallengeStore {
  models: Pick<ModelStore, 'byName'>;
  manufacturers: Pick<ManufacturerStore, 'find'>;
  tpmActivations: Pick<TpmActivationStore, 'insert' | 'openOfLine'>;
}

/** enroll/tpm-activation.ts: a birth redeems its challenge. */
export interface TpmRedeemStore {
  tpmActivations: Pick<TpmActivationStore, 'findForUpdate' | 'redeem'>;
}

/** registry/lifecycle/counter-reset.ts: the device's counter and the audit log. */
export type CounterResetStore = AuditedStore<AuditWrites & Locking & { devices: Pick<DeviceStore, 'resetSignCount'> }>;

/** registry/lifecycle/revocation-service.ts: revocations of a certificate, a device, a batch. */
export interface RevocationServiceStore extends AuditedStore<AuditWrites & Locking & RevocationStore & {
  devices: Pick<DeviceStore, 'get' | 'transitionMany'>;
  certificates: Pick<CertificateStore, 'find'>;
  batches: Pick<BatchStore, 'declare' | 'find' | 'devicePage' | 'finish' | 'advance'>;
}> {
  batches: Pick<BatchStore, 'find' | 'unfinished'>;
}

/** registry/lifecycle/support-grants.ts: grants, and the certificates issued (and revoked) with them. */
export type SupportGrantStore = AuditedStore<AuditWrites & Locking & RevocationStore & IssuanceStore & {
  devices: Pick<DeviceStore, 'get'>;
  support: Pick<SupportStore, 'insert' | 'find' | 'findForUpdate' | 'approve' | 'revoke' | 'certificates' | 'linkCertificate'>;
}>;

/** registry/manufacturers/claims.ts: what a claim writes in its transaction. */
export interface ClaimWrites extends AuditWrites {
  manufacturers: Pick<ManufacturerStore, 'findForUpdate'>;
  claims: Pick<ClaimStore, 'existingHashes' | 'insert'>;
  devices: Pick<DeviceStore, 'find' | 'insert'>;
}

/** registry/manufacturers/claims.ts: devices claimed from a manufacturer; S, what the claim's afterClaim writes too. */
export interface ClaimingStore<S extends ClaimWrites = ClaimWrites> extends AuditedStore<S> {
  manufacturers: Pick<ManufacturerStore, 'find'>;
}

/** registry/manufacturers/ownership-statements.ts: statements exported (a hand-over) and imported (a claim). */
export type OwnershipStatementStore = ClaimingStore<OwnershipStatementWrites>;

/** registry/manufacturers/ownership-statements.ts: what its transactions write (and the claim's, importing). */
export type OwnershipStatementWrites = ClaimWrites & Locking & OwnerChangeStore & {
  claims: Pick<ClaimStore, 'find' | 'statements' | 'insertStatement'>;
  certificates: Pick<CertificateStore, 'newestOfDevice'>;
};

/** registry/manufacturers/manufacturers.ts: proposals, approvals and withdrawals of manufacturers. */
export type ManufacturerAdminStore = AuditedStore<AuditWrites & Locking & {
  models: Pick<ModelStore, 'byName'>;
  manufacturers: Pick<ManufacturerStore, 'propose' | 'find' | 'findForUpdate' | 'resetCrl' | 'approve' | 'withdraw' | 'narrow'>;
  batches: Pick<BatchStore, 'declare'>;
}>;

/** registry/manufacturers/manufacturer-crl.ts: a manufacturer's CRL applied (quarantines and revocations), and polled. */
export interface ManufacturerCrlStore extends AuditedStore<AuditWrites & RevocationStore & {
  manufacturers: Pick<ManufacturerStore, 'findForUpdate' | 'setCrlState' | 'replaceCrlEntries'>;
  claims: Pick<ClaimStore, 'birthsBySerial' | 'markBirthRevoked'>;
  devices: Pick<DeviceStore, 'transitionMany'>;
}> {
  manufacturers: Pick<ManufacturerStore, 'find' | 'polled' | 'setCrlState'>;
}

/** registry/reports/fleet-overview.ts: reads only. */
export interface FleetReportStore {
  devices: Pick<DeviceStore, 'rotationRows' | 'count' | 'countsBy'>;
  gateways: Pick<GatewayStore, 'assuranceCounts'>;
  audit: Pick<AuditStore, 'recentByActions'>;
  batches: Pick<BatchStore, 'unfinished'>;
}

/** server/http/auth.ts, console-session.ts, server/tokens.ts: a bearer token or console session, read to authenticate. */
export interface AuthStore {
  tokens: Pick<TokenStore, 'byId'>;
  sessions: Pick<SessionStore, 'live'>;
}

/** server/tokens.ts: tokens created and revoked. */
export type TokenAdminStore = AuditedStore<AuditWrites & {
  models: Pick<ModelStore, 'byName'>;
  tokens: Pick<TokenStore, 'insert' | 'revoke'>;
}>;

/** server/http/console-session.ts: a console session opened for a token. */
export type ConsoleSessionStore = AuditedStore<AuditWrites & {
  sessions: Pick<SessionStore, 'deleteExpired' | 'insert'>;
}> & Pick<AuthStore, 'tokens'>;

/** server/identity.ts: the recorded public identity. */
export interface IdentityStore {
  settings: Pick<SettingsStore, 'all' | 'set'>;
}

/** server/metrics.ts gauges: reads only. */
export interface MetricsStore {
  manufacturers: Pick<ManufacturerStore, 'all'>;
  audit: Pick<AuditStore, 'head'>;
  checkpoints: Pick<CheckpointStore, 'latest'>;
  tlog: Pick<TlogStore, 'latestCheckpoint'>;
}

/** server/http/routes/audit.ts: the audit API's reads, the events it records, the checkpoints it makes. */
export type AuditRoutesStore = AuditedStore<AuditWrites & TxOf<CheckpointingStore>> & AuthStore
  & Omit<AuditVerifyStore, 'transaction'> & AuditExportStore & HistoryStore;

/** server/http/routes/console.ts: the console's sessions, and the views it reads. */
export type ConsoleRoutesStore = AuditedStore<TxOf<ConsoleSessionStore> & { sessions: Pick<SessionStore, 'delete'> }>
  & AuthStore & Pick<ConsoleSessionStore, 'tokens'> & FleetReportStore & FirmwareOverviewStore & {
    devices: Pick<DeviceStore, 'search'>;
    audit: Pick<AuditStore, 'head' | 'recentByActions'>;
    checkpoints: Pick<CheckpointStore, 'latest'>;
    ocsp: Pick<OcspStore, 'freshness'>;
  };

/** registry/reports/firmware-overview.ts: the console's Firmware pages. */
export interface FirmwareOverviewStore {
  models: Pick<ModelStore, 'byName' | 'legacyFirmwareUntil'>;
  firmwareReleases: Pick<FirmwareReleaseStore, 'byModel' | 'summaryByModel'>;
  devices: Pick<DeviceStore, 'firmwareCounts'>;
}

/** server/http/routes/operator.ts: the operator API's reads, and the catalogue, lifecycle and support actions it calls. */
export type OperatorRoutesStore = AuditedStore<TxOf<ModelCatalogueStore> & TxOf<FirmwarePolicyStore> & TxOf<DeviceClassCatalogueStore> & TxOf<ConstrainedDeviceStore>
  & TxOf<DeviceLifecycleStore> & TxOf<SupportGrantStore> & TxOf<CounterResetStore>> & AuthStore & {
    models: Pick<ModelStore, 'byName' | 'legacyFirmwareUntil'>;
    firmwareReleases: Pick<FirmwareReleaseStore, 'liveLegacy'>;
    deviceClasses: Pick<DeviceClassStore, 'find'>;
    support: Pick<SupportStore, 'find' | 'certificates'>;
    devices: Pick<DeviceStore, 'rotationRows' | 'byOwner'>;
  };

/** server/http/routes/manufacturers.ts: the manufacturer API's reads, and the manufacturer, claim and statement actions it calls. */
export type ManufacturerRoutesStore = AuditedStore<TxOf<ManufacturerAdminStore> & TxOf<ManufacturerCrlStore> & OwnershipStatementWrites>
  & AuthStore & {
    manufacturers: Pick<ManufacturerStore, 'find' | 'all' | 'polled' | 'setCrlState'>;
    claims: Pick<ClaimStore, 'countByManufacturer'>;
  };

/** publish/crl-publisher.ts: each CA's CRL, made under its lock when due. */
export interface CrlPublisherStore extends Transactional<Locking & {
  crls: Pick<CrlStore, 'newest' | 'marked' | 'takeMarks' | 'revokedPage' | 'insert'>;
}> {
  crls: Pick<CrlStore, 'newest' | 'marked' | 'shardsUsed' | 'overview'>;
}

/** publish/ocsp-signer.ts: the OCSP responses due, signed again. */
export interface OcspRefreshStore extends Transactional<{ ocsp: Pick<OcspStore, 'due' | 'putMany'> }> {
  ocsp: Pick<OcspStore, 'deleteExpired' | 'anyDue'>;
}

/** publish/ocsp-responder.ts: reads only. */
export interface OcspAnswerStore {
  ocsp: Pick<OcspStore, 'find'>;
  certificates: Pick<CertificateStore, 'byIssuerAndSerial'>;
}

/** publish/ocsp-responders.ts: each CA's OCSP responder, loaded and rotated (a failed rotation's keys undone). */
export interface OcspResponderKeysStore extends AuditedStore<AuditWrites & Locking & {
  ocspResponders: Pick<OcspResponderStore, 'newest' | 'insert'>;
}>, HierarchyStore {
  ocsp: Pick<OcspStore, 'hasLive'>;
  ocspResponders: Pick<OcspResponderStore, 'current' | 'keyIds'>;
}

/** publish/publication.ts: what its OCSP responders, signer and responder and its CRL publisher need, and what it serves. */
export type PublicationStore = AuditedStore<TxOf<OcspResponderKeysStore> & TxOf<CrlPublisherStore> & TxOf<OcspRefreshStore>>
  & Omit<OcspResponderKeysStore, 'transaction'> & Omit<CrlPublisherStore, 'transaction'> & Omit<OcspRefreshStore, 'transaction'> & OcspAnswerStore & {
    ocsp: Pick<OcspStore, 'clock' | 'putMany' | 'changedSince'>;
    crls: Pick<CrlStore, 'newest' | 'bytes' | 'overview'>;
  };

/**
 * registry/enrollment/ (the registration authority) and the front ends on it
 * (enroll/acme/): the areas an enrollment reads and writes, and its
 * transactions and locks. No tokens, sessions, settings, batches, owners or
 * vendor support.
 */
export type EnrollmentStore = Pick<
  Store,
  'inTransaction' | 'singleConnection' | 'transaction' | 'lock' | 'acme' | 'audit' | 'certificates' | 'claims' | 'deviceClasses' | 'devices' | 'firmware' | 'gateways' | 'estNonces' | 'manufacturers' | 'models' | 'ocsp' | 'crls'
>;

/** registry/firmware/firmware-signers.ts: a model's signer, made in a ceremony. */
export type FirmwareSignerCeremonyStore = HierarchyStore & IssuanceStore & {
  models: Pick<ModelStore, 'byNameForUpdate'>;
  certificates: Pick<CertificateStore, 'insertIssued' | 'find'>;
  firmwareSigners: Pick<FirmwareSignerStore, 'insert' | 'ofModel' | 'keyIds' | 'countOfModel' | 'retire'>;
};

/** registry/firmware/firmware-releases.ts: releases proposed, approved and signed. */
export type FirmwareReleaseAdminStore = AuditedStore<AuditWrites & {
  models: Pick<ModelStore, 'byNameForUpdate'>;
  caCertificates: Pick<CaStore, 'all'>;
  certificates: Pick<CertificateStore, 'find'>;
  firmwareSigners: Pick<FirmwareSignerStore, 'ofModel'>;
  firmwareReleases: Pick<FirmwareReleaseStore, 'insert' | 'findForUpdate' | 'highestSequence' | 'approve' | 'withdraw'>;
}> & {
  firmwareReleases: Pick<FirmwareReleaseStore, 'find' | 'byModel'>;
  models: Pick<ModelStore, 'byName'>;
};
