import type { FleetReportStore } from '../../store/subsets.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { SIGNAL_ACTIONS, signalReason } from './clone-signals.ts';
import { reasonName } from '../lifecycle/revocation.ts';
import { rotationReport } from './rotation-report.ts';

/** Values shown per breakdown; the rest of a long tail is one "other" figure. */
const TOP = 20;
const RECENT_SIGNALS = 20;

type Breakdown = { values: Array<{ value: string | null; devices: number }>; other: number };

export interface FleetOverview {
  generatedAt: string;
  devices: number;
  byState: Breakdown;
  byModel: Breakdown;
  byClass: Breakdown;
  byOwner: Breakdown;
  /** Devices in service that should have rotated and have not (the rotation report's counts, without its list). */
  rotation: { devices: number; byReason: Record<string, number> };
  /** Devices whose newest live operational certificate is mediated by a gateway, and those raised to attested since (docs/operators/gateways.md). */
  assurance: { mediated: number; raised: number };
  signals: Array<{ seq: number; at: string; action: string; device: string | null; reason: string }>;
  batches: Array<{ batch: string; devices: number; certificates: number; finished: boolean; reason: string; requestedAt: string }>;
}

async function breakdown(store: Pick<FleetReportStore, 'devices'>, column: 'state' | 'model' | 'device_class' | 'owner', total: number): Promise<Breakdown> {
  const values = await store.devices.countsBy(column, TOP);
  return { values, other: total - values.reduce((sum, v) => sum + v.devices, 0) };
}

/** The console's fleet page: the fleet by state, model, class and owner; overdue rotation; recent clone signals and forks; batch revocations under way. */
export async function fleetOverview(store: FleetReportStore, now: Date): Promise<FleetOverview> {
  const devices = await store.devices.count();
  const [byState, byModel, byClass, byOwner] = await Promise.all([
    breakdown(store, 'state', devices), breakdown(store, 'model', devices), breakdown(store, 'device_class', devices), breakdown(store, 'owner', devices),
  ]);
  const rotation = await rotationReport(store, {}, now);
  const assurance = await store.gateways.assuranceCounts();
  const signals = (await store.audit.recentByActions(SIGNAL_ACTIONS, RECENT_SIGNALS)).map((row) => {
    const event = AuditLog.parse(row);
    return { seq: event.seq, at: event.at, action: event.action, device: row.deviceSerial, reason: signalReason(event.data ?? {}) };
  });
  const batches = (await store.batches.unfinished()).map((b) => ({
    batch: b.batch, devices: b.devices, certificates: b.certificates, finished: false, reason: reasonName(b.reason), requestedAt: b.requestedAt.toISOString(),
  }));
  return { generatedAt: now.toISOString(), devices, byState, byModel, byClass, byOwner, rotation: { devices: rotation.devices, byReason: rotation.byReason }, assurance, signals, batches };
}
