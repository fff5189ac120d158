import { extensionOidProblem } from '../../ca/oid.ts';
import { conflict, malformed, notFound } from '../../errors/domain-error.ts';
import type { ModelCatalogueStore } from '../../store/subsets.ts';
import type { ModelRecord } from '../../store/types.ts';
import type { AuditLog, Audited } from '../audit/audit-log.ts';
import { checkModelName, checkName, checkText } from '../identifiers.ts';

export interface ModelDeclaration {
  hwType: string;
  manufacturer: string;
  /** The device class of its devices that name none; undefined leaves it as it is. */
  defaultClass?: string;
}

/** A model as the operator API and the CLI show it. */
export function modelView(model: ModelRecord) {
  return { name: model.name, hwType: model.hwType, manufacturer: model.manufacturer, defaultClass: model.defaultClass };
}

/** Checks a declaration: the hwType OID goes into every birth certificate's HardwareModuleName, the manufacturer into its O. */
export function checkModelDeclaration(declaration: { hwType: unknown; manufacturer: unknown; defaultClass?: unknown }): ModelDeclaration {
  const { hwType, manufacturer, defaultClass } = declaration;
  if (typeof hwType !== 'string') throw malformed('hwType must be an OID string');
  const problem = extensionOidProblem(hwType);
  if (problem) throw malformed(`hwType: ${problem}`);
  const name = checkText('manufacturer', manufacturer, 64);
  if (name.trim() !== name) throw malformed('manufacturer must not start or end with blanks');
  return { hwType, manufacturer: name, ...(defaultClass === undefined ? {} : { defaultClass: checkName('defaultClass', defaultClass) }) };
}

/**
 * PUT /operator/v1/models/<model>: creates (true) or updates (false) a model.
 * Idempotent: the same declaration again changes nothing and writes no event.
 * Once a birth certificate names the model, its hwType and manufacturer are
 * fixed: certificates carry them for ever, so a different product needs a new
 * model name.
 */
export async function declareModel(store: ModelCatalogueStore, audit: AuditLog, actor: string, name: string, declaration: ModelDeclaration, now: Date): Promise<{ created: boolean; model: ModelRecord }> {
  checkModelName(name);
  return audit.record(store, async (tx): Promise<Audited<{ created: boolean; model: ModelRecord }>> => {
    if (declaration.defaultClass && !(await tx.deviceClasses.find(declaration.defaultClass))) {
      throw notFound(`no device class ${declaration.defaultClass}: declare it with PUT /operator/v1/device-classes/${declaration.defaultClass}`);
    }
    const record: ModelRecord = { name, hwType: declaration.hwType, manufacturer: declaration.manufacturer, defaultClass: declaration.defaultClass ?? null, createdAt: now, updatedAt: now };
    if (await tx.models.insert(record)) {
      return { value: { created: true, model: record }, events: [{ action: 'model.declared', actor, data: { model: name, ...declaration } }] };
    }
    const existing = (await tx.models.byNameForUpdate(name))!;
    const sameIdentity = existing.hwType === declaration.hwType && existing.manufacturer === declaration.manufacturer;
    if (sameIdentity && (declaration.defaultClass === undefined || declaration.defaultClass === existing.defaultClass)) return { value: { created: false, model: existing }, events: [] };
    if (sameIdentity) {
      // The default class is policy, not a certificate field: it may change at any time, from the devices' next renewal.
      await tx.models.setDefaultClass(name, declaration.defaultClass!, now);
      return {
        value: { created: false, model: { ...existing, defaultClass: declaration.defaultClass!, updatedAt: now } },
        events: [{ action: 'model.default-class-changed', actor, data: { model: name, from: existing.defaultClass, to: declaration.defaultClass } }],
      };
    }
    if (await tx.devices.anyOfModel(name)) {
      throw conflict(`model ${name} is in birth certificates already, which carry its hwType and manufacturer for ever: declare a new model name instead`);
    }
    const updated = { ...existing, ...declaration, defaultClass: declaration.defaultClass ?? existing.defaultClass, updatedAt: now };
    await tx.models.update(updated);
    return {
      value: { created: false, model: updated },
      events: [{ action: 'model.updated', actor, data: { model: name, ...declaration, previous: { hwType: existing.hwType, manufacturer: existing.manufacturer } } }],
    };
  });
}
