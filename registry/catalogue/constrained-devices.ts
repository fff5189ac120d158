import { conflict, malformed, notFound } from '../../errors/domain-error.ts';
import { LOCKS } from '../../store/locks.ts';
import type { ConstrainedDeviceStore } from '../../store/subsets.ts';
import type { DeviceRecord } from '../../store/types.ts';
import type { AuditLog, Audited } from '../audit/audit-log.ts';
import { checkModelName, checkName, checkSerial } from '../identifiers.ts';

/** The batch and line of a device an operator declared (it has no birth certificate, so no factory batch). */
export const DECLARED_BATCH = 'declared';
export const DECLARED_LINE = 'operator';

/** A device an operator declared that has no factory key yet: the factory may give it its first birth certificate. */
export function isDeclaredWithoutKey(device: DeviceRecord): boolean {
  return device.factoryKeySha256 === null && device.manufacturer === 'self' && device.batch === DECLARED_BATCH;
}

/** At most this many gateways per declaration: a few redundant ones, not a fleet. */
const MAX_GATEWAYS = 16;

export interface ConstrainedDeviceDeclaration {
  serial: string;
  model: string;
  class?: string;
  gateways: string[];
}

/** POST /operator/v1/devices as the API and the CLI take it: serial, model, an optional class, 1 to 16 gateway serials. */
export function checkDeclaration(body: { serial: unknown; model: unknown; class?: unknown; gateways: unknown }): ConstrainedDeviceDeclaration {
  const { gateways } = body;
  if (!Array.isArray(gateways) || gateways.length === 0 || gateways.length > MAX_GATEWAYS) throw malformed(`gateways must be a list of 1 to ${MAX_GATEWAYS} gateway serials`);
  const serials = gateways.map((g: unknown) => checkSerial(g));
  if (new Set(serials).size !== serials.length) throw malformed('gateways names a gateway twice');
  const serial = checkSerial(body.serial);
  if (serials.includes(serial)) throw malformed('a device is not its own gateway');
  return { serial, model: checkModelName(body.model), ...(body.class === undefined ? {} : { class: checkName('class', body.class) }), gateways: serials };
}

/**
 * Declares a device that gateways may enroll (docs/operators/gateways.md): a
 * constrained device without a factory key is created (`manufactured`, no
 * birth certificate, in the batch `declared`); a device that exists already
 * (born with a factory key, which then attests through the gateway) must be
 * of the model named, and gains the gateways. Every gateway must be a device
 * whose class mediates the model. Idempotent; audited.
 */
export async function declareConstrainedDevice(
  store: ConstrainedDeviceStore, audit: AuditLog, actor: string, declaration: ConstrainedDeviceDeclaration, now: Date,
): Promise<{ created: boolean; device: DeviceRecord; gateways: string[] }> {
  const { serial, model } = declaration;
  return audit.record(store, async (tx): Promise<Audited<{ created: boolean; device: DeviceRecord; gateways: string[] }>> => {
    await tx.lock(LOCKS.device(serial));
    if (!(await tx.models.byName(model))) throw notFound(`no model ${model}: declare it with PUT /operator/v1/models/${model}`);
    if (declaration.class !== undefined && !(await tx.deviceClasses.find(declaration.class))) throw notFound(`no device class ${declaration.class}`);
    for (const gateway of declaration.gateways) {
      const found = await tx.devices.getWithClass(gateway).catch(() => undefined);
      if (!found) throw notFound(`no device ${gateway} to be a gateway`);
      if (!found.deviceClass.gateway?.models.includes(model)) {
        throw conflict(`device ${gateway} is of class ${found.deviceClass.name}, which does not mediate model ${model}: give the class "gateway": {"models": ["${model}"]}`);
      }
    }
    const before = await tx.gateways.gatewaysOf(serial);
    let device = await tx.devices.find(serial);
    const created = !device;
    if (device) {
      if (device.model !== model) throw conflict(`device ${serial} is a ${device.model}, not a ${model}`);
      if (declaration.class !== undefined && device.deviceClass !== declaration.class) throw conflict(`device ${serial} is of class ${device.deviceClass ?? '(its model\'s)'}: change it with PUT /operator/v1/devices/${serial}/class`);
    } else {
      device = {
        serial, model, batch: DECLARED_BATCH, line: DECLARED_LINE, deviceClass: declaration.class ?? null, owner: null, state: 'manufactured', manufacturer: 'self',
        factoryKeySha256: null, reprovisionAllowed: false, signCount: 0, factoryAttestedAt: null, createdAt: now, updatedAt: now,
      };
      await tx.devices.insert(device);
    }
    const added = declaration.gateways.filter((g) => !before.includes(g));
    await tx.gateways.allow(serial, added, now);
    const gateways = [...new Set([...before, ...added])].sort();
    if (!created && added.length === 0) return { value: { created, device, gateways }, events: [] };
    return {
      value: { created, device, gateways },
      events: [{ action: created ? 'device.declared' : 'device.gateways-added', actor, device: serial, data: { model, class: device.deviceClass, gateways: added, ...(created ? { factoryKey: false } : {}) } }],
    };
  });
}
