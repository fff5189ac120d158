import type { Store } from '../store/store.ts';
import { REVOCATION_REASONS, type DeviceRecord } from '../store/types.ts';
import { LOCKS } from '../store/locks.ts';
import type { AuditLog } from './audit-log.ts';
import { moveDevice } from './device-states.ts';

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
export async function reprovisionDevice(store: Store, audit: AuditLog, actor: string, serial: string, reason: string, now: Date): Promise<ReprovisionResult> {
  return audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const { device, from } = await moveDevice(tx, serial, 'reprovision', 'operator', now);
    const revoked = await tx.certificates.revokeLiveOfDevice(serial, REVOCATION_REASONS.superseded, now);
    return {
      value: { device, revoked },
      events: [{
        action: 'device.reprovision-allowed',
        actor,
        device: serial,
        data: { reason, previousState: from, revokedCertificates: revoked, revocationReason: 'superseded' },
      }],
    };
  });
}
