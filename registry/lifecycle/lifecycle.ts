import type { DeviceLifecycleStore, OwnerChangeStore } from '../../store/subsets.ts';
import type { DeviceRecord, RevocationReason } from '../../store/types.ts';
import { LOCKS } from '../../store/locks.ts';
import type { AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { conflict } from '../../errors/domain-error.ts';
import { moveDevice } from './device-states.ts';
import { revokeDevices, revokeMediated } from './revocation.ts';
import type { RevocationListener } from './revocation-service.ts';

export interface ReprovisionResult {
  device: DeviceRecord;
  revoked: string[];
}

/**
 * A state change that ends the device's certificates: every live one is
 * revoked with the reason given, in the transaction that moves the device,
 * and signed in OCSP after it commits.
 */
async function moveAndRevoke(
  store: DeviceLifecycleStore, audit: AuditLog, published: RevocationListener, actor: string, serial: string, now: Date,
  transition: 'reprovision' | 'decommission', reason: RevocationReason, event: (from: string, revoked: string[]) => AuditEntry,
): Promise<ReprovisionResult> {
  const result = await audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const { device, from } = await moveDevice(tx, serial, transition, 'operator', now);
    // A device born elsewhere comes back with a birth certificate of ours: its claimed one attests no more.
    if (transition === 'reprovision') await tx.claims.supersede(serial, now);
    const revocations = await revokeDevices(tx, [serial], reason, actor, now);
    const revoked = revocations.revoked.map((r) => r.serial);
    return { value: { device, revoked, certificates: revocations.revoked }, events: [...revocations.events, event(from, revoked)] };
  });
  await published.revoked(result.certificates);
  return { device: result.device, revoked: result.revoked };
}

/**
 * POST /operator/v1/devices/<serial>/reprovision (docs/operators/factory.md): repair,
 * RMA, batch compromise or refurbishment after retirement. Revokes the
 * device's birth and operational certificates (superseded), returns it to
 * `manufactured` and allows one new birth certificate for the serial; the
 * history keeps both births.
 */
export async function reprovisionDevice(store: DeviceLifecycleStore, audit: AuditLog, published: RevocationListener, actor: string, serial: string, reason: string, now: Date): Promise<ReprovisionResult> {
  return moveAndRevoke(store, audit, published, actor, serial, now, 'reprovision', 'superseded', (from, revoked) => (
    { action: 'device.reprovision-allowed', actor, device: serial, data: { reason, previousState: from, revokedCertificates: revoked, revocationReason: 'superseded' } }
  ));
}

/** POST /operator/v1/devices/<serial>/suspend and /resume (docs/operators/lifecycle.md): enrollment and renewal stop, then start again. */
export async function suspendOrResume(
  store: DeviceLifecycleStore, audit: AuditLog, actor: string, serial: string, transition: 'suspend' | 'resume', now: Date, published?: RevocationListener,
): Promise<DeviceRecord> {
  const result = await audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const { device, from } = await moveDevice(tx, serial, transition, 'operator', now);
    // A suspended gateway vouches for nothing: what it mediated is revoked (docs/operators/gateways.md); resuming does not bring it back.
    const mediated = transition === 'suspend' ? await revokeMediated(tx, { gatewaySerials: [serial] }, 'affiliationChanged', actor, now) : { revoked: [], events: [] };
    return {
      value: { device, revoked: mediated.revoked },
      events: [{ action: transition === 'suspend' ? 'device.suspended' : 'device.resumed', actor, device: serial, data: { previousState: from, state: device.state } }, ...mediated.events],
    };
  });
  if (result.revoked.length > 0) await published?.revoked(result.revoked);
  return result.device;
}

/**
 * POST /operator/v1/devices/<serial>/decommission (docs/operators/lifecycle.md):
 * retirement. Revokes every certificate of the device (cessationOfOperation),
 * sets it `decommissioned`; enrollment is refused from then on, until an
 * operator reprovisions it with a new birth certificate.
 */
export async function decommissionDevice(store: DeviceLifecycleStore, audit: AuditLog, published: RevocationListener, actor: string, serial: string, reason: string, now: Date): Promise<ReprovisionResult> {
  return moveAndRevoke(store, audit, published, actor, serial, now, 'decommission', 'cessationOfOperation', (from, revoked) => (
    { action: 'device.decommissioned', actor, device: serial, data: { reason, previousState: from, revokedCertificates: revoked } }
  ));
}

/** POST /operator/v1/devices/<serial>/transfer (docs/operators/lifecycle.md): a new owner; the chain of owners is kept. */
export async function transferDevice(
  store: DeviceLifecycleStore, audit: AuditLog, who: { actor: string; principal: string }, serial: string, to: string, evidence: string, now: Date,
): Promise<{ serial: string; from: string | null; to: string }> {
  return audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const { from, event } = await recordTransfer(tx, who, serial, to, evidence, now);
    return { value: { serial, from, to }, events: [event] };
  });
}

/**
 * A change of owner inside the caller's transaction, under the device's
 * lock: compare-and-set on the owner before, the record kept, and the event
 * to audit. A transfer and an ownership statement's hand-over both go here.
 */
export async function recordTransfer(
  tx: OwnerChangeStore, who: { actor: string; principal: string }, serial: string, to: string, evidence: string, now: Date,
): Promise<{ from: string | null; event: AuditEntry }> {
  const device = await tx.devices.get(serial);
  if (device.state === 'decommissioned') throw conflict(`device ${serial} is decommissioned: reprovision it before it changes hands`);
  if (device.owner === to) throw conflict(`device ${serial} already belongs to ${to}`);
  if (!(await tx.devices.setOwner(serial, device.owner, to, now))) throw conflict(`device ${serial} changed hands meanwhile`);
  await tx.ownership.insert({ deviceSerial: serial, from: device.owner, to, evidence, principal: who.principal, actor: who.actor, at: now });
  return { from: device.owner, event: { action: 'device.transferred', actor: who.actor, device: serial, data: { from: device.owner, to, evidence, principal: who.principal } } };
}
