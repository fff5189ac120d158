/** Domain records as the rest of devid-ca sees them; rows are converted explicitly. */

export type CaName = 'root' | 'factory' | 'operational';

export interface CaCertificateRecord {
  name: CaName;
  serial: string;
  der: Buffer;
  keyLabel: string;
  keyId: Buffer;
  notAfter: Date;
  createdAt: Date;
}

/** RFC 5280 5.3.1 CRLReason codes devid-ca uses. */
export const REVOCATION_REASONS = {
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
  cessationOfOperation: 5, certificateHold: 6, privilegeWithdrawn: 9, aACompromise: 10,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export type CertificateKind = 'birth' | 'operational' | 'server' | 'support';

export interface CertificateRecord {
  serial: string;
  kind: CertificateKind;
  issuer: CaName;
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
  factoryKeySha256: string;
  /** Set by an operator's reprovision: the next birth request may bind a new key. */
  reprovisionAllowed: boolean;
  createdAt: Date;
  updatedAt: Date;
}

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
  createdAt: Date;
  updatedAt: Date;
}

export interface CheckpointRecord {
  seq: number;
  canonical: string;
  signature: Buffer;
}

/** A storage failure the caller can act on (after smallstep's typed not-found). */
export class StoreConflictError extends Error {
  override readonly name = 'StoreConflictError';
  constructor(
    message: string,
    readonly constraint?: string,
  ) {
    super(message);
  }
}
