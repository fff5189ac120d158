import { extensionOidProblem } from '../ca/oid.ts';
import { malformed } from '../errors/domain-error.ts';
import type { Store } from '../store/store.ts';
import type { ModelRecord } from '../store/types.ts';
import type { AuditLog } from './audit-log.ts';
import { bodyFields, checkModelName } from './identifiers.ts';

export interface ModelDeclaration {
  hwType: string;
  manufacturer: string;
}

/** Validates a model body: the hwType OID goes into every birth certificate's HardwareModuleName. */
export function checkModelDeclaration(body: unknown): ModelDeclaration {
  const { hwType, manufacturer } = bodyFields(body, ['hwType', 'manufacturer']);
  if (typeof hwType !== 'string') throw malformed('hwType must be an OID string');
  const problem = extensionOidProblem(hwType);
  if (problem) throw malformed(`hwType: ${problem}`);
  if (typeof manufacturer !== 'string' || manufacturer.trim() !== manufacturer || manufacturer.length < 1 || manufacturer.length > 64 || /[\u0000-\u001f\u007f]/.test(manufacturer)) {
    throw malformed('manufacturer must be 1-64 characters with no control characters or surrounding blanks');
  }
  return { hwType, manufacturer };
}

/**
 * PUT /operator/v1/models/<model>: creates (true) or updates (false) a model.
 * Idempotent: the same declaration again changes nothing and writes no event.
 */
export async function declareModel(store: Store, audit: AuditLog, actor: string, name: string, body: unknown, now: Date): Promise<{ created: boolean; model: ModelRecord }> {
  checkModelName(name);
  const declaration = checkModelDeclaration(body);
  return store.transaction(async (tx) => {
    const record: ModelRecord = { name, ...declaration, createdAt: now, updatedAt: now };
    if (await tx.models.insert(record)) {
      await audit.append(tx, { action: 'model.declared', actor, data: { model: name, ...declaration } });
      return { created: true, model: record };
    }
    const existing = (await tx.models.byNameForUpdate(name))!;
    if (existing.hwType === declaration.hwType && existing.manufacturer === declaration.manufacturer) return { created: false, model: existing };
    const updated = { ...existing, ...declaration, updatedAt: now };
    await tx.models.update(updated);
    await audit.append(tx, { action: 'model.updated', actor, data: { model: name, ...declaration, previous: { hwType: existing.hwType, manufacturer: existing.manufacturer } } });
    return { created: false, model: updated };
  });
}
