import { malformed } from '../../errors/domain-error.ts';
import type { RevocationStore } from '../../store/subsets.ts';
import { REVOCATION_REASONS, type CertificateRecord, type RevocationReason } from '../../store/types.ts';
import type { AuditEntry } from '../audit/audit-log.ts';

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

export function reasonName(code: number): string {
  return (Object.keys(REVOCATION_REASONS) as RevocationReason[]).find((name) => REVOCATION_REASONS[name] === code) ?? String(code);
}

/** What a revocation changed: the certificates newly revoked (for OCSP and the CRLs) and their audit events. */
export interface Revocations {
  revoked: CertificateRecord[];
  events: AuditEntry[];
}

/**
 * The one revocation path (operator APIs, ACME revokeCert, reprovisioning,
 * batches): certificates already revoked keep their first reason and time;
 * the newly revoked lose their pre-signed OCSP responses (the responder
 * says tryLater until the signer has made the revoked ones), leave a mark
 * for their issuer's next CRL, and get one audit event each. Runs inside
 * the caller's audited transaction.
 */
async function recordRevocations(tx: RevocationStore, revoked: CertificateRecord[], reason: RevocationReason, actor: string): Promise<Revocations> {
  await tx.ocsp.markStale(revoked.map((r) => r.serial));
  await tx.crls.mark(revoked.map((r) => r.serial));
  const events: AuditEntry[] = revoked.map((record) => ({
    action: 'certificate.revoked',
    actor,
    ...(record.deviceSerial ? { device: record.deviceSerial } : {}),
    data: { serial: record.serial, kind: record.kind, reason, sha256: record.sha256 },
  }));
  return { revoked, events };
}

/** Revokes one certificate; undefined when there is no such certificate. A gateway's certificate takes what it mediated with it, for the same reason. */
export async function revokeCertificate(
  tx: RevocationStore, serial: string, reason: RevocationReason, actor: string, now: Date,
): Promise<(Revocations & { record: CertificateRecord }) | undefined> {
  const result = await tx.certificates.revoke(serial, REVOCATION_REASONS[reason], now);
  if (!result) return undefined;
  const revocations = await recordRevocations(tx, result.revokedNow ? [result.record] : [], reason, actor);
  const mediated = result.revokedNow && result.record.kind === 'operational' ? await revokeMediated(tx, { gatewayCertificates: [result.record.sha256] }, reason, actor, now) : undefined;
  return { ...joined(revocations, mediated), record: result.record };
}

/**
 * Revokes every live certificate (birth and operational) of some devices:
 * one device, or a chunk of a batch. Those that are gateways lose what they
 * mediated too (docs/operators/gateways.md): `mediatedReason`, the
 * operator's reason when one was given, else affiliationChanged.
 */
export async function revokeDevices(
  tx: RevocationStore, deviceSerials: readonly string[], reason: RevocationReason, actor: string, now: Date, mediatedReason: RevocationReason = 'affiliationChanged',
): Promise<Revocations> {
  const revoked = await tx.certificates.revokeLiveOfDevices(deviceSerials, REVOCATION_REASONS[reason], now);
  // An order attested before the revocation must not finalize after it.
  await endLiveOrders(tx, deviceSerials, `the device's certificates were revoked (${reason})`, now);
  const own = await recordRevocations(tx, revoked, reason, actor);
  return joined(own, await revokeMediated(tx, { gatewaySerials: deviceSerials }, mediatedReason, actor, now));
}

/**
 * Revokes the live certificates gateways mediated (by gateway, or by one
 * of a gateway's certificates), each with an event that names its
 * mediator: a gateway that is revoked, suspended or quarantined vouches
 * for nothing any more. Certificates attested through a gateway stay.
 */
export async function revokeMediated(
  tx: RevocationStore, scope: { gatewaySerials?: readonly string[]; gatewayCertificates?: readonly string[] }, reason: RevocationReason, actor: string, now: Date,
): Promise<Revocations> {
  const serials = await tx.gateways.liveMediatedBy(scope);
  const revoked: CertificateRecord[] = [];
  for (const serial of serials) {
    const result = await tx.certificates.revoke(serial, REVOCATION_REASONS[reason], now);
    if (result?.revokedNow) revoked.push(result.record);
  }
  const recorded = await recordRevocations(tx, revoked, reason, actor);
  return { revoked, events: recorded.events.map((e) => ({ ...e, data: { ...e.data, mediated: true } })) };
}

function joined(a: Revocations, b: Revocations | undefined): Revocations {
  return b ? { revoked: [...a.revoked, ...b.revoked], events: [...a.events, ...b.events] } : a;
}

/**
 * Ends the live ACME orders of devices whose basis just changed (revoked,
 * suspended, quarantined, reprovisioned, decommissioned): a ready order is
 * no stock of certificates for later. Finalize checks the basis again too.
 */
export async function endLiveOrders(tx: Pick<RevocationStore, 'acme'>, deviceSerials: readonly string[], why: string, now: Date): Promise<void> {
  await tx.acme.invalidateLiveOrders(deviceSerials, now, { type: 'urn:ietf:params:acme:error:unauthorized', status: 403, detail: `the order was ended: ${why}` });
}
