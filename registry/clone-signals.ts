import type { AuditEntry } from './audit-log.ts';

/**
 * The audit events of a suspected clone (SPEC sections 4 and 5): one per
 * device it concerns, so each device's history shows it.
 */
export function cloneSignalEvents(devices: readonly string[], actor: string, data: Record<string, unknown>): AuditEntry[] {
  return [...new Set(devices)].map((device) => ({ action: 'device.clone-suspected', actor, device, data }));
}
