import { conflict } from '../../errors/domain-error.ts';
import type { LifecycleStore } from '../../store/subsets.ts';
import { endLiveOrders } from './revocation.ts';
import type { DeviceRecord, DeviceState } from '../../store/types.ts';

/** Who moves a device: the device itself (through ACME), an operator, or the CA on its own (a clone signal). */
export type DeviceActor = 'device' | 'operator' | 'system';

export type DeviceTransition = 'enroll' | 'suspend' | 'resume' | 'quarantine' | 'clone-suspend' | 'firmware-suspend' | 'reprovision' | 'decommission';

interface TransitionRule {
  from: readonly DeviceState[];
  to: DeviceState;
  by: DeviceActor;
}

const LIVE: readonly DeviceState[] = ['manufactured', 'active', 'suspended', 'quarantined'];

/**
 * Every state change of a device, in one table (docs/operators/lifecycle.md): who may
 * move it, from which states, to which. Anything not here does not happen.
 */
export const DEVICE_TRANSITIONS: Readonly<Record<DeviceTransition, TransitionRule>> = {
  /** First enrollment and every renewal. */
  enroll: { from: ['manufactured', 'active'], to: 'active', by: 'device' },
  suspend: { from: ['active'], to: 'suspended', by: 'operator' },
  resume: { from: ['suspended'], to: 'active', by: 'operator' },
  /** Batch revocation after a manufacturing compromise. */
  quarantine: { from: ['manufactured', 'active', 'suspended'], to: 'quarantined', by: 'operator' },
  /** A clone signal under a device class with onCloneSignal: suspend. */
  'clone-suspend': { from: ['manufactured', 'active'], to: 'suspended', by: 'system' },
  /** A signed attestation on a withdrawn firmware release under a device class with onWithdrawnFirmware: suspend. */
  'firmware-suspend': { from: ['manufactured', 'active'], to: 'suspended', by: 'system' },
  /** Repair, RMA, refurbishment after retirement: one new birth certificate is allowed. */
  reprovision: { from: [...LIVE, 'decommissioned'], to: 'manufactured', by: 'operator' },
  /** Retirement: no enrollment again, unless an operator reprovisions the device (a second life, in the same history). */
  decommission: { from: LIVE, to: 'decommissioned', by: 'operator' },
};

/** docs/operators/lifecycle.md: enrollment and renewal only from these states. */
export function mayEnroll(state: DeviceState): boolean {
  return DEVICE_TRANSITIONS.enroll.from.includes(state);
}

/**
 * Moves a device by one rule of the table, as a compare-and-set on its
 * current state: of two racing changes only one applies. An unknown device
 * is StoreNotFoundError (404 at the edge); a device in another state, or an actor the rule does not
 * name, is a conflict that says why. `locked`: the device as read under its lock in this transaction.
 */
export async function moveDevice(
  tx: LifecycleStore, serial: string, transition: DeviceTransition, actor: DeviceActor, now: Date, locked?: DeviceRecord,
): Promise<{ device: DeviceRecord; from: DeviceState }> {
  const rule = DEVICE_TRANSITIONS[transition];
  if (rule.by !== actor) throw new Error(`a ${actor} may not ${transition} a device`);
  // A caller that read the device under its lock in this transaction saves the read.
  const before = locked ?? await tx.devices.get(serial);
  const moved = await tx.devices.transition(serial, rule.from, rule.to, now, transition === 'reprovision');
  if (!moved) {
    const current = (await tx.devices.find(serial))?.state ?? before.state;
    throw conflict(`device ${serial} is ${current}: ${transition} applies only to a device that is ${rule.from.join(', ')}`);
  }
  if (!mayEnroll(rule.to) || transition === 'reprovision') await endLiveOrders(tx, [serial], `device ${serial} was moved by ${transition}`, now);
  return { device: moved, from: before.state };
}
