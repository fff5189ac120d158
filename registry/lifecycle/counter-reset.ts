import type { CounterResetStore } from '../../store/subsets.ts';
import { LOCKS } from '../../store/locks.ts';
import { StoreNotFoundError } from '../../store/types.ts';
import type { AuditLog } from '../audit/audit-log.ts';

export interface CounterReset {
  serial: string;
  /** The counter the device's next attestation must exceed: 0. */
  signCount: 0;
  /** What it was. */
  previous: number;
}

/**
 * POST /operator/v1/devices/<serial>/counter-reset (docs/operators/lifecycle.md):
 * check 4 refuses a counter that does not move forward, and a TPM's clock
 * starts again from zero after TPM2_Clear; an operator who knows why the
 * device's counter went back sets it to 0, with a reason, in the device's
 * history. The device's state and certificates are untouched.
 */
export async function resetDeviceCounter(store: CounterResetStore, audit: AuditLog, actor: string, serial: string, reason: string, now: Date): Promise<CounterReset> {
  return audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const previous = await tx.devices.resetSignCount(serial, now);
    if (previous === undefined) throw new StoreNotFoundError('device', serial);
    return {
      value: { serial, signCount: 0 as const, previous },
      events: [{ action: 'device.counter-reset', actor, device: serial, data: { reason, previous } }],
    };
  });
}
