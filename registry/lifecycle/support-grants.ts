import { randomBytes } from 'node:crypto';
import type { Hierarchy } from '../../ca/hierarchy.ts';
import type { IssuanceService } from '../../ca/issuance.ts';
import { supportProfile } from '../../ca/profiles.ts';
import { verifyCsr } from '../../pki/csr.ts';
import { conflict, forbidden, malformed, notFound } from '../../errors/domain-error.ts';
import { LOCKS } from '../../store/locks.ts';
import type { SupportGrantStore } from '../../store/subsets.ts';
import type { SupportGrantRecord } from '../../store/support-store.ts';
import type { AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { checkName, checkText } from '../identifiers.ts';
import { revokeCertificate } from './revocation.ts';
import type { RevocationListener } from './revocation-service.ts';

/** A support window lasts at most 8 hours (docs/reference/certificates.md). */
export const MAX_SUPPORT_HOURS = 8;
const HOUR_MS = 3_600_000;

/** Who acts: the audit actor (token id) and the person behind the token. */
export interface Principal {
  actor: string;
  principal: string;
}

export function checkGrantId(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{24}$/.test(value)) throw malformed('a support grant id is 24 hex digits');
  return value;
}

export function checkGrantRequest(body: { vendor?: unknown; reason?: unknown; hours?: unknown }): { vendor: string; reason: string; hours: number } {
  const hours = body.hours;
  if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 1 || hours > MAX_SUPPORT_HOURS) {
    throw malformed(`hours must be a whole number from 1 to ${MAX_SUPPORT_HOURS}`);
  }
  return { vendor: checkName('vendor', body.vendor), reason: checkText('reason', body.reason, 1024, { multiline: true }), hours };
}

export function grantView(grant: SupportGrantRecord) {
  const status = grant.revokedAt ? 'revoked' : grant.approvedAt ? 'approved' : 'pending';
  return {
    id: grant.id, device: grant.deviceSerial, vendor: grant.vendor, reason: grant.reason, hours: grant.hours, status,
    requestedBy: grant.requestedBy, requestedAt: grant.requestedAt.toISOString(),
    approvedBy: grant.approvedBy, windowStart: grant.approvedAt?.toISOString() ?? null, windowEnd: grant.windowEnd?.toISOString() ?? null,
    revokedBy: grant.revokedBy, revokedAt: grant.revokedAt?.toISOString() ?? null,
  };
}

function grantEvent(action: string, who: Principal, grant: SupportGrantRecord, extra: Record<string, unknown> = {}): AuditEntry {
  return { action, actor: who.actor, device: grant.deviceSerial, data: { grant: grant.id, vendor: grant.vendor, principal: who.principal, ...extra } };
}

/** POST /operator/v1/devices/<serial>/support-grants: a pending grant, waiting for a second operator. */
export async function requestSupportGrant(store: SupportGrantStore, audit: AuditLog, who: Principal, serial: string, request: ReturnType<typeof checkGrantRequest>, now: Date): Promise<SupportGrantRecord> {
  return audit.record(store, async (tx) => {
    const device = await tx.devices.get(serial);
    if (device.state === 'decommissioned') throw conflict(`device ${serial} is decommissioned`);
    const grant: SupportGrantRecord = {
      id: randomBytes(12).toString('hex'), deviceSerial: serial, ...request, requestedBy: who.principal, requestedAt: now,
      approvedBy: null, approvedAt: null, windowEnd: null, revokedBy: null, revokedAt: null,
    };
    await tx.support.insert(grant);
    return { value: grant, events: [grantEvent('support.requested', who, grant, { reason: request.reason, hours: request.hours })] };
  });
}

/**
 * POST /operator/v1/support-grants/<id>/approve: by another person than the
 * one who asked (two tokens of one principal are one person); the window
 * starts now.
 */
export async function approveSupportGrant(store: SupportGrantStore, audit: AuditLog, who: Principal, id: string, now: Date): Promise<SupportGrantRecord> {
  return audit.record(store, async (tx) => {
    const grant = await tx.support.find(id);
    if (!grant) throw notFound(`no support grant ${id}`);
    if (grant.requestedBy === who.principal) throw forbidden(`${who.principal} asked for this grant: another operator must approve it`);
    const approved = await tx.support.approve(id, who.principal, now, new Date(now.getTime() + grant.hours * HOUR_MS));
    if (!approved) throw conflict(`support grant ${id} is ${grantView(grant).status}, not pending`);
    return { value: approved, events: [grantEvent('support.approved', who, approved, { windowStart: now.toISOString(), windowEnd: approved.windowEnd!.toISOString() })] };
  });
}

/** POST /operator/v1/support-grants/<id>/revoke: ends the grant early and revokes its certificates. */
export async function revokeSupportGrant(store: SupportGrantStore, audit: AuditLog, published: RevocationListener, who: Principal, id: string, now: Date): Promise<SupportGrantRecord> {
  const { grant, revoked } = await audit.record(store, async (tx) => {
    // The row lock waits for a certificate being issued under the grant, so its list below includes it.
    if (!(await tx.support.findForUpdate(id))) throw notFound(`no support grant ${id}`);
    const revokedGrant = await tx.support.revoke(id, who.principal, now);
    if (!revokedGrant) {
      if (!(await tx.support.find(id))) throw notFound(`no support grant ${id}`);
      throw conflict(`support grant ${id} is revoked already`);
    }
    const events: AuditEntry[] = [grantEvent('support.revoked', who, revokedGrant)];
    const certificates = [];
    for (const serial of await tx.support.certificates(id)) {
      const revocation = await revokeCertificate(tx, serial, 'privilegeWithdrawn', who.actor, now);
      if (revocation) {
        certificates.push(...revocation.revoked);
        events.push(...revocation.events);
      }
    }
    return { value: { grant: revokedGrant, revoked: certificates }, events };
  });
  await published.revoked(revoked);
  return grant;
}

export interface SupportIssuanceDeps {
  store: SupportGrantStore;
  audit: AuditLog;
  issuance: IssuanceService;
  hierarchy: Hierarchy;
  baseUrl: string;
  trustDomain: string;
}

/**
 * POST /support/v1/grants/<id>/certificate (role vendor): a support
 * certificate for the grant's vendor and device, valid exactly inside the
 * approved window, only while the window is open.
 */
export async function issueSupportCertificate(deps: SupportIssuanceDeps, vendor: { actor: string; vendor: string | null }, id: string, csr: string, now: Date): Promise<{ pem: string; chainPem: string; serial: string; notAfter: Date }> {
  const { publicKey } = verifyCsr(csr);
  return deps.audit.record(deps.store, async (tx) => {
    // Locked until the certificate is recorded: a revocation of the grant waits, then revokes it too.
    const grant = await tx.support.findForUpdate(id);
    if (!grant || grant.vendor !== vendor.vendor) throw forbidden('this grant is not for your vendor');
    await tx.lock(LOCKS.device(grant.deviceSerial));
    if (grant.revokedAt) throw conflict(`support grant ${id} was revoked`);
    if (!grant.approvedAt || !grant.windowEnd) throw conflict(`support grant ${id} is not approved yet`);
    if (now < grant.approvedAt || now >= grant.windowEnd) throw conflict(`support grant ${id} is outside its window (${grant.approvedAt.toISOString()} to ${grant.windowEnd.toISOString()})`);
    const device = await tx.devices.get(grant.deviceSerial);
    if (device.state === 'decommissioned') throw conflict(`device ${device.serial} is decommissioned`);
    const issuer = deps.hierarchy.operational;
    const profile = supportProfile({ issuer, spki: publicKey.spki, baseUrl: deps.baseUrl, now }, {
      serial: grant.deviceSerial, vendor: grant.vendor, trustDomain: deps.trustDomain, notBefore: grant.approvedAt, notAfter: grant.windowEnd,
    });
    const issued = await deps.issuance.issue(tx, { issuer, profile, deviceSerial: grant.deviceSerial, predecessorSha256: null });
    await tx.support.linkCertificate(issued.record.serial, id);
    return {
      value: { pem: issued.pem, chainPem: `${issued.pem.trimEnd()}\n${deps.hierarchy.chainPem(issuer)}`, serial: issued.record.serial, notAfter: issued.record.notAfter },
      events: [{ action: 'support.certificate-issued', actor: vendor.actor, device: grant.deviceSerial, data: { grant: id, vendor: grant.vendor, certificateSerial: issued.record.serial, notAfter: issued.record.notAfter.toISOString() } }],
    };
  });
}
