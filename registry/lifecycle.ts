import { conflict, malformed, notFound } from '../errors/domain-error.ts';
import { LOCKS, type Store } from '../store/store.ts';
import { REVOCATION_REASONS, type DeviceRecord } from '../store/types.ts';
import type { AuditLog } from './audit-log.ts';
import { bodyFields, checkSerial } from './identifiers.ts';

/** Free text an operator gives for an action; it lands in the audit log. */
export function checkReasonText(body: unknown): string {
  const { reason } = bodyFields(body, ['reason']);
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 1024 || /[\u0000-\u0008\u000b-\u001f\u007f]/.test(reason)) {
    throw malformed('reason must be 1-1024 characters of text');
  }
  return reason;
}

export interface ReprovisionResult {
  device: DeviceRecord;
  revoked: string[];
}

/**
 * POST /operator/v1/devices/<serial>/reprovision (SPEC section 4): repair,
 * RMA or batch compromise. Revokes the device's birth and operational
 * certificates (superseded), returns it to `manufactured` and allows one new
 * birth certificate for the serial; the history keeps both births.
 */
export async function reprovisionDevice(store: Store, audit: AuditLog, actor: string, serial: string, body: unknown, now: Date): Promise<ReprovisionResult> {
  checkSerial(serial);
  const reason = checkReasonText(body);
  return store.transaction(async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const device = await tx.devices.bySerial(serial);
    if (!device) throw notFound(`no device ${serial}`);
    if (device.state === 'decommissioned') throw conflict(`device ${serial} is decommissioned, which is final`);
    const revoked = await tx.certificates.revokeLiveOfDevice(serial, REVOCATION_REASONS.superseded, now);
    const updated: DeviceRecord = { ...device, state: 'manufactured', reprovisionAllowed: true, updatedAt: now };
    await tx.devices.update(updated);
    await audit.append(tx, {
      action: 'device.reprovision-allowed',
      actor,
      device: serial,
      data: { reason, previousState: device.state, revokedCertificates: revoked, revocationReason: 'superseded' },
    });
    return { device: updated, revoked };
  });
}
