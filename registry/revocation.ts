import { malformed } from '../errors/domain-error.ts';
import type { CertificateStore } from '../store/certificate-store.ts';
import { REVOCATION_REASONS, type CertificateRecord, type RevocationReason } from '../store/types.ts';
import type { AuditEntry } from './audit-log.ts';

/** The RFC 5280 reasons a revocation may give (certificateHold is not offered: revocation is final). */
export const REVOCATION_REASON_NAMES = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'] as const;

/** A reason name from a request (operator APIs) or an RFC 5280 code (ACME revokeCert), checked. */
export function checkReason(value: unknown): RevocationReason {
  if (typeof value === 'number') {
    const name = REVOCATION_REASON_NAMES.find((n) => REVOCATION_REASONS[n] === value);
    if (name) return name;
  } else if (typeof value === 'string' && (REVOCATION_REASON_NAMES as readonly string[]).includes(value)) {
    return value as RevocationReason;
  }
  throw malformed(`the revocation reason must be one of ${REVOCATION_REASON_NAMES.join(', ')}`);
}

export interface Revocation {
  record: CertificateRecord;
  /** False when the certificate was revoked already: the first reason and time stand. */
  revokedNow: boolean;
  events: AuditEntry[];
}

/**
 * The one revocation path (ACME revokeCert now; the operator APIs and
 * reprovisioning with the revocation work): marks the certificate revoked
 * unless it already is, and returns the event that records it. Run inside
 * the caller's audited transaction.
 */
export async function revokeCertificate(
  tx: { certificates: Pick<CertificateStore, 'revoke'> }, serial: string, reason: RevocationReason, actor: string, now: Date,
): Promise<Revocation | undefined> {
  const result = await tx.certificates.revoke(serial, REVOCATION_REASONS[reason], now);
  if (!result) return undefined;
  const { record, revokedNow } = result;
  const events: AuditEntry[] = revokedNow
    ? [{ action: 'certificate.revoked', actor, ...(record.deviceSerial ? { device: record.deviceSerial } : {}), data: { serial, kind: record.kind, reason, sha256: record.sha256 } }]
    : [];
  return { record, revokedNow, events };
}
