import { ATTESTATION_FORMATS, DEFAULT_ATTESTATION_FORMATS } from '../../pki/attestation/formats.ts';
import { malformed, notFound } from '../../errors/domain-error.ts';
import { LOCKS } from '../../store/locks.ts';
import type { DeviceClassCatalogueStore } from '../../store/subsets.ts';
import type { CloneSignalPolicy, DeviceClassRecord, WithdrawnFirmwarePolicy } from '../../store/types.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { durationMs, formatDuration } from '../durations.ts';
import { checkModelName, checkName } from '../identifiers.ts';

/** Operational certificates live from 5 minutes to 90 days; a birth-key attestation is asked for at least yearly at most every hour. */
const TTL_RANGE = [5 * 60_000, 90 * 86_400_000] as const;
const REATTEST_RANGE = [3_600_000, 3650 * 86_400_000] as const;
const FIELDS = ['ttl', 'stagedRenewal', 'factoryReattestEvery', 'serverAuth', 'counterRequired', 'onCloneSignal'] as const;

function duration(field: string, value: unknown, [min, max]: readonly [number, number]): number {
  const ms = durationMs(value);
  if (ms === undefined) throw malformed(`${field} must be a duration such as "24h", "30d", "90m" or "600s"`);
  if (ms < min || ms > max) throw malformed(`${field} must be from ${formatDuration(min)} to ${formatDuration(max)}, not ${String(value)}`);
  return ms;
}

function flag(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw malformed(`${field} must be true or false`);
  return value;
}

/** `attestationFormats`: a non-empty list of registered formats, each once; absent means ["devid"]. */
function formats(value: unknown, registered: { has(fmt: string): boolean; names(): string[] }): string[] {
  if (value === undefined) return [...DEFAULT_ATTESTATION_FORMATS];
  if (!Array.isArray(value) || value.length === 0 || value.length > 16 || !value.every((v) => typeof v === 'string')) {
    throw malformed('attestationFormats must be a non-empty list of attestation format names (fmt), such as ["devid"]');
  }
  const unknown = value.find((fmt: string) => !registered.has(fmt));
  if (unknown !== undefined) throw malformed(`attestationFormats: ${JSON.stringify(unknown.slice(0, 64))} is not an attestation format this CA verifies (${registered.names().join(', ')})`);
  if (new Set(value).size !== value.length) throw malformed('attestationFormats names a format twice');
  return value as string[];
}

/** `gateway`: {"models": [...]}, the models whose declared devices its devices may mediate (docs/operators/gateways.md); absent: not a gateway. */
function gateway(value: unknown): { models: string[] } | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value) || Object.keys(value).some((k) => k !== 'models')) throw malformed('gateway must be {"models": [<model>, ...]}');
  const models = (value as { models?: unknown }).models;
  if (!Array.isArray(models) || models.length === 0 || models.length > 64) throw malformed('gateway.models must be a list of 1 to 64 model names');
  const names = models.map((m) => checkModelName(m));
  if (new Set(names).size !== names.length) throw malformed('gateway.models names a model twice');
  return { models: names };
}

/**
 * A class as PUT /operator/v1/device-classes/<class> takes it (docs/operators/lifecycle.md): every field, checked;
 * `attestationFormats` may be left out (["devid"]), and names only formats of the registry;
 * `est` may be left out (false), `onWithdrawnFirmware` too ("refuse"), `gateway` too (not a gateway).
 */
export function checkDeviceClass(name: unknown, body: Record<string, unknown>, registered = ATTESTATION_FORMATS): DeviceClassRecord {
  const missing = FIELDS.filter((field) => body[field] === undefined);
  if (missing.length > 0) throw malformed(`a device class names all of ${FIELDS.join(', ')}; missing: ${missing.join(', ')}`);
  const ttl = duration('ttl', body.ttl, TTL_RANGE);
  const reattest = duration('factoryReattestEvery', body.factoryReattestEvery, REATTEST_RANGE);
  if (ttl % 1000 !== 0 || reattest % 1000 !== 0) throw malformed('durations are whole seconds');
  const onCloneSignal = body.onCloneSignal;
  if (onCloneSignal !== 'refuse' && onCloneSignal !== 'suspend') throw malformed('onCloneSignal must be "refuse" or "suspend"');
  const onWithdrawnFirmware = body.onWithdrawnFirmware === undefined ? 'refuse' : body.onWithdrawnFirmware;
  if (onWithdrawnFirmware !== 'refuse' && onWithdrawnFirmware !== 'suspend') throw malformed('onWithdrawnFirmware must be "refuse" or "suspend"');
  return {
    name: checkName('class', name),
    ttlSeconds: ttl / 1000,
    stagedRenewal: flag('stagedRenewal', body.stagedRenewal),
    factoryReattestEverySeconds: reattest / 1000,
    serverAuth: flag('serverAuth', body.serverAuth),
    counterRequired: flag('counterRequired', body.counterRequired),
    onCloneSignal: onCloneSignal as CloneSignalPolicy,
    attestationFormats: formats(body.attestationFormats, registered),
    est: body.est === undefined ? false : flag('est', body.est),
    onWithdrawnFirmware: onWithdrawnFirmware as WithdrawnFirmwarePolicy,
    gateway: gateway(body.gateway),
  };
}

/** A class as the API shows it: in the units it was declared in. */
export function deviceClassView(record: DeviceClassRecord) {
  return {
    name: record.name, ttl: formatDuration(record.ttlSeconds * 1000), stagedRenewal: record.stagedRenewal,
    factoryReattestEvery: formatDuration(record.factoryReattestEverySeconds * 1000), serverAuth: record.serverAuth,
    counterRequired: record.counterRequired, onCloneSignal: record.onCloneSignal, attestationFormats: record.attestationFormats, est: record.est,
    onWithdrawnFirmware: record.onWithdrawnFirmware,
    ...(record.gateway ? { gateway: { models: record.gateway.models } } : {}),
  };
}

/** Creates or replaces a device class; it applies to its devices from their next renewal. */
export async function putDeviceClass(store: DeviceClassCatalogueStore, audit: AuditLog, actor: string, record: DeviceClassRecord, now: Date): Promise<{ created: boolean }> {
  return audit.record(store, async (tx) => {
    const previous = await tx.deviceClasses.find(record.name);
    const unchanged = previous && JSON.stringify(deviceClassView(previous)) === JSON.stringify(deviceClassView(record));
    if (unchanged) return { value: { created: false }, events: [] };
    await tx.deviceClasses.put(record, now);
    return {
      value: { created: !previous },
      events: [{ action: previous ? 'device-class.updated' : 'device-class.declared', actor, data: { ...deviceClassView(record), ...(previous ? { previous: deviceClassView(previous) } : {}) } }],
    };
  });
}

/** PUT /operator/v1/devices/<serial>/class: the device's own class, from its next renewal on. */
export async function assignDeviceClass(store: DeviceClassCatalogueStore, audit: AuditLog, actor: string, serial: string, className: string, now: Date): Promise<{ serial: string; class: string }> {
  return audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const device = await tx.devices.get(serial);
    if (!(await tx.deviceClasses.find(className))) throw notFound(`no device class ${className}: declare it with PUT /operator/v1/device-classes/${className}`);
    if (device.deviceClass === className) return { value: { serial, class: className }, events: [] };
    await tx.devices.setClass(serial, className, now);
    return { value: { serial, class: className }, events: [{ action: 'device.class-changed', actor, device: serial, data: { from: device.deviceClass, to: className } }] };
  });
}
