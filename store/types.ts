/** Domain records as the rest of devid-ca sees them; rows are converted explicitly. */

/**
 * What a CA-certificate row is for. `audit` is the checkpoint key, certified by
 * the root like the intermediates; `firmware` certifies the firmware signers
 * (docs/operators/firmware.md) and is made by its own root ceremony.
 */
export type CaRole = 'root' | 'factory' | 'operational' | 'firmware' | 'audit';

/**
 * One CA certificate and the HSM key behind it. Its row id is the issuer
 * identity every issued certificate points at; `generation` counts rollovers
 * (the second operational intermediate is generation 2, key `devid-operational-2`).
 */
export interface CaCertificateRecord {
  id: number;
  role: CaRole;
  generation: number;
  serial: string;
  der: Buffer;
  /** SubjectKeyIdentifier of the certificate (SHA-1 of the key, RFC 5280 4.2.1.2 method 1). */
  ski: Buffer;
  /** SubjectPublicKeyInfo DER of the HSM key. */
  publicKey: Buffer;
  keyLabel: string;
  /** CKA_ID: what finds the key in the token. */
  keyId: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** The one certificate of its role that signs new certificates; a retired one still signs its CRL and OCSP. */
  active: boolean;
  createdAt: Date;
}

export type NewCaCertificate = Omit<CaCertificateRecord, 'id'>;

/** RFC 5280 5.3.1 CRLReason codes devid-ca uses. */
export const REVOCATION_REASONS = {
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
  cessationOfOperation: 5, certificateHold: 6, privilegeWithdrawn: 9, aACompromise: 10,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export type CertificateKind = 'birth' | 'operational' | 'server' | 'support' | 'firmware-signer';

export interface CertificateRecord {
  serial: string;
  kind: CertificateKind;
  /** The CA-certificate row that signed it. */
  issuerId: number;
  deviceSerial: string | null;
  subject: string;
  der: Buffer;
  sha256: string;
  keySha256: string;
  predecessorSha256: string | null;
  notBefore: Date;
  notAfter: Date;
  revokedAt: Date | null;
  revocationReason: number | null;
  createdAt: Date;
  /** The CRL shard its CDP names, fixed at issuance; null or absent: its issuer's whole CRL. */
  crlShard?: number | null;
}

export type Role = 'factory' | 'operator' | 'auditor' | 'vendor';
export const ROLES: readonly Role[] = ['factory', 'operator', 'auditor', 'vendor'];

export interface TokenRecord {
  id: string;
  role: Role;
  principal: string;
  line: string | null;
  /** null: every model. */
  models: string[] | null;
  vendor: string | null;
  secretSha256: Buffer;
  createdAt: Date;
  revokedAt: Date | null;
}

export type DeviceState = 'manufactured' | 'active' | 'suspended' | 'quarantined' | 'decommissioned';

export interface DeviceRecord {
  serial: string;
  model: string;
  batch: string;
  line: string;
  deviceClass: string | null;
  owner: string | null;
  state: DeviceState;
  /** `self` for our own births; else the registered manufacturer whose birth certificate the device carries (docs/operators/manufacturers.md). */
  manufacturer: string;
  /** null for a device born elsewhere until its first attestation shows its birth key. */
  factoryKeySha256: string | null;
  /** Set by an operator's reprovision: the next birth request may bind a new key. */
  reprovisionAllowed: boolean;
  /** The highest attestation signCount accepted (0: none, or a device without a counter). */
  signCount: number;
  /** When the device last attested with its birth key (staged renewal needs one every factoryReattestEvery). */
  factoryAttestedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a birth certificate binds a device to: set at manufacture, replaced only by reprovisioning. */
export type DeviceBinding = Pick<DeviceRecord, 'model' | 'batch' | 'line'> & { factoryKeySha256: string };

export interface AuditEventRecord {
  seq: number;
  action: string;
  deviceSerial: string | null;
  canonical: string;
  hash: string;
}

export interface ModelRecord {
  name: string;
  hwType: string;
  manufacturer: string;
  /** The class of its devices that name none (docs/operators/lifecycle.md); null: the built-in `default`. */
  defaultClass: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface CheckpointRecord {
  seq: number;
  canonical: string;
  signature: Buffer;
}

/** A unique constraint refused the write (after smallstep's typed errors). */
export class StoreConflictError extends Error {
  override readonly name = 'StoreConflictError';
  constructor(
    message: string,
    readonly constraint?: string,
  ) {
    super(message);
  }
}

/** The row the caller needs does not exist. */
export class StoreNotFoundError extends Error {
  override readonly name = 'StoreNotFoundError';
  constructor(
    readonly what: string,
    readonly key: string,
  ) {
    super(`no ${what} ${key}`);
  }
}

export type AccountStatus = 'valid' | 'deactivated' | 'revoked';

/** An ACME account (RFC 8555 7.1.2): a key; the device's attestation, not the account, authorizes issuance. */
export interface AcmeAccountRecord {
  id: string;
  /** RFC 7638 thumbprint of the account key, unique. */
  thumbprint: string;
  jwk: JsonWebKey;
  status: AccountStatus;
  contact: string[];
  /** Audited: set when the account first mattered (its first accepted attestation); anonymous accounts cost no audit event. */
  recorded: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
export type AuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type ChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';

export interface FirmwareReport {
  version: string;
  /** hex */
  digest: string;
  /** The signed release the report maps to (check 5), when the model has releases: recorded in the lineage. */
  release?: { sequence: number; manifestSha256: string | null };
}

/** An approved release of a model, as check 5 weighs it (registry/firmware/update-path.ts). */
export interface ApprovedRelease {
  version: string;
  digest: string;
  sequence: number;
  minSequence: number | null;
  withdrawn: boolean;
  manifestSha256: string | null;
  /** A former allowlist entry: unsigned, sequence 0, accepted until the model's legacy cut-off. */
  legacy: boolean;
}

export interface AcmeOrderRecord {
  id: string;
  accountId: string;
  deviceSerial: string;
  status: OrderStatus;
  expiresAt: Date;
  /** Serial (hex) of the certificate this order renews (RFC 9773 `replaces`). */
  replaces: string | null;
  /** The certID the client named it by, echoed in the order. */
  replacesCertId: string | null;
  /** Set once the order's attestation succeeded: the replaced certificate is then this order's alone. */
  replacesClaimed: boolean;
  /** The key the device attested for this order (canonical SPKI); the CSR must carry it. */
  attestedSpki: Buffer | null;
  /** SHA-256 (hex) of the certificate the attestation rested on (x5c[0]): finalize checks it still stands. */
  attestedBy: string | null;
  firmware: FirmwareReport | null;
  certificateSerial: string | null;
  /** The problem document that made the order invalid. */
  error: Record<string, unknown> | null;
  createdAt: Date;
  updatedAt: Date;
  /** The identifier as ordered (draft-ietf-acme-device-attest-09); null for orders made before it was kept: the plain serial. */
  identifier: { type: string; value: string } | null;
}

/** An authorization and its one device-attest-01 challenge (they share the id). */
export interface AcmeAuthorizationRecord {
  id: string;
  orderId: string;
  status: AuthorizationStatus;
  expiresAt: Date;
  token: string;
  challengeStatus: ChallengeStatus;
  challengeValidatedAt: Date | null;
  challengeError: Record<string, unknown> | null;
  createdAt: Date;
}

export type CloneSignalPolicy = 'refuse' | 'suspend';
/** What check 5 does to a device that attests on a withdrawn release (docs/operators/firmware.md). */
export type WithdrawnFirmwarePolicy = 'refuse' | 'suspend';

/** Policy per device class (docs/operators/lifecycle.md); `default` is built in. */
export interface DeviceClassRecord {
  name: string;
  ttlSeconds: number;
  stagedRenewal: boolean;
  factoryReattestEverySeconds: number;
  serverAuth: boolean;
  counterRequired: boolean;
  onCloneSignal: CloneSignalPolicy;
  /** A device attesting on a withdrawn release is refused, or refused and suspended. */
  onWithdrawnFirmware: WithdrawnFirmwarePolicy;
  /** The attestation formats (`fmt`) its devices may attest with (pki/attestation/formats.ts). */
  attestationFormats: string[];
  /** Its devices may enroll with EST (RFC 7030, docs/device-makers/est.md) as well as ACME. */
  est: boolean;
  /** Its devices are gateways (RFC 7030 3.7) for the devices of these models that name them (docs/operators/gateways.md); null: not a gateway. */
  gateway?: { models: string[] } | null;
}

/** One firmware report in a device's lineage. */
export interface FirmwareRecord extends FirmwareReport {
  deviceSerial: string;
  certificateSerial: string | null;
  attestedAt: Date;
}
