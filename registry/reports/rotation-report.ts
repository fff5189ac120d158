import type { DeviceStore, RotationRow } from '../../store/device-store.ts';

/** Why a device is in the rotation report (docs/operators/lifecycle.md). */
export type RotationReason = 'never-enrolled' | 'expired-without-successor' | 'revoked-without-successor' | 'overdue' | 'factory-reattestation-overdue' | 'mediated';

export interface RotationEntry {
  serial: string;
  model: string;
  owner: string | null;
  class: string;
  state: string;
  reasons: RotationReason[];
  certificate: string | null;
  notAfter: string | null;
  /** Of its newest operational certificate (docs/operators/gateways.md); null without one. */
  assurance: 'attested' | 'mediated' | null;
}

export interface RotationReport {
  generatedAt: string;
  devices: number;
  byReason: Record<string, number>;
  byClass: Record<string, Record<string, number>>;
  byModel: Record<string, Record<string, number>>;
  byOwner: Record<string, Record<string, number>>;
  entries: RotationEntry[];
}

export interface RotationFilter {
  class?: string;
  model?: string;
  owner?: string;
}

function reasonsOf(row: RotationRow, now: number): RotationReason[] {
  if (!row.certificate) return ['never-enrolled'];
  const reasons: RotationReason[] = [];
  const notBefore = row.notBefore!.getTime();
  const notAfter = row.notAfter!.getTime();
  if (notAfter <= now) reasons.push('expired-without-successor');
  else if (row.revokedAt) reasons.push('revoked-without-successor');
  else if (notBefore + ((notAfter - notBefore) * 5) / 6 <= now) reasons.push('overdue');
  // A device without a factory key has no birth key to re-attest with: it waits, mediated, for staged trust escalation instead.
  if (row.assurance === 'mediated') reasons.push('mediated');
  else if (!row.keyless && (!row.factoryAttestedAt || row.factoryAttestedAt.getTime() + row.reattestSeconds * 1000 <= now)) reasons.push('factory-reattestation-overdue');
  return reasons;
}

function count(table: Record<string, Record<string, number>>, key: string, reasons: readonly string[]): void {
  const row = (table[key] ??= {});
  for (const reason of reasons) row[reason] = (row[reason] ?? 0) + 1;
}

/**
 * GET /operator/v1/reports/rotation: the devices that should have rotated
 * and have not (their newest operational certificate is past its renewal
 * window, expired or revoked with no successor; never enrolled; not
 * re-attested with the birth key within their class's interval; still on a
 * mediated certificate, docs/operators/gateways.md), counted by
 * reason, class, model and owner. Devices in service only: manufactured and
 * active (a suspended, quarantined or retired device is not expected to rotate).
 */
export async function rotationReport(store: { devices: Pick<DeviceStore, 'rotationRows'> }, filter: RotationFilter, now: Date): Promise<RotationReport> {
  const report: RotationReport = { generatedAt: now.toISOString(), devices: 0, byReason: {}, byClass: {}, byModel: {}, byOwner: {}, entries: [] };
  for (const row of await store.devices.rotationRows(filter, now)) {
    const reasons = reasonsOf(row, now.getTime());
    if (reasons.length === 0) continue;
    report.devices += 1;
    for (const reason of reasons) report.byReason[reason] = (report.byReason[reason] ?? 0) + 1;
    count(report.byClass, row.className, reasons);
    count(report.byModel, row.model, reasons);
    count(report.byOwner, row.owner ?? '(none)', reasons);
    report.entries.push({
      serial: row.serial, model: row.model, owner: row.owner, class: row.className, state: row.state, reasons,
      certificate: row.certificate, notAfter: row.notAfter?.toISOString() ?? null, assurance: row.assurance,
    });
  }
  return report;
}

const csvField = (value: string | null) => (value === null ? '' : /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

/** The report's devices as CSV (RFC 4180), one line per device. */
export function rotationCsv(report: RotationReport): string {
  const lines = ['serial,model,owner,class,state,reasons,certificate,notAfter'];
  for (const e of report.entries) lines.push([e.serial, e.model, e.owner, e.class, e.state, e.reasons.join(' '), e.certificate, e.notAfter].map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
