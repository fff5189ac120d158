import type { AuditEntry } from '../audit/audit-log.ts';

/**
 * The audit events of a suspected clone (docs/operators/factory.md): one per
 * device it concerns, so each device's history shows it.
 */
export function cloneSignalEvents(devices: readonly string[], actor: string, data: Record<string, unknown>): AuditEntry[] {
  return [...new Set(devices)].map((device) => ({ action: 'device.clone-suspected', actor, device, data }));
}

/** The events that signal a clone or a lineage fork: the console's fleet signals and the lineage graph's refused attempts. */
export const SIGNAL_ACTIONS = ['device.clone-suspected', 'device.lineage-fork'] as const;

/** A signal event's why, on one line: its reason, the attestation check that failed and its detail, as recorded. */
export function signalReason(data: Record<string, unknown>): string {
  return [data.reason, data.check, data.detail].filter((v) => typeof v === 'string').join(': ');
}
