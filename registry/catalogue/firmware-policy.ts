import { malformed, notFound } from '../../errors/domain-error.ts';
import type { FirmwarePolicyStore } from '../../store/subsets.ts';
import type { FirmwareReport } from '../../store/types.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { checkText } from '../identifiers.ts';

/** An allowlist is a short list of releases, not a history. */
const MAX_ENTRIES = 256;

/** The body of PUT /operator/v1/models/<model>/firmware: `{"allowed": [{"version", "digest"}]}`, checked. */
export function checkAllowlist(allowed: unknown): FirmwareReport[] {
  if (!Array.isArray(allowed) || allowed.length > MAX_ENTRIES) throw malformed(`allowed must be a list of at most ${MAX_ENTRIES} {"version", "digest"} entries ([] removes the policy)`);
  const seen = new Set<string>();
  return allowed.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw malformed(`allowed[${i}] must be {"version", "digest"}`);
    const { version, digest, ...rest } = entry as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw malformed(`allowed[${i}] has an unknown field ${JSON.stringify(Object.keys(rest)[0]!.slice(0, 64))}`);
    const checkedVersion = checkText(`allowed[${i}].version`, version, 64);
    if (typeof digest !== 'string' || !/^(?:[0-9a-fA-F]{2}){32,64}$/.test(digest)) throw malformed(`allowed[${i}].digest must be the hex of a 32- to 64-byte digest`);
    const report = { version: checkedVersion, digest: digest.toLowerCase() };
    const key = `${report.version}\u0000${report.digest}`;
    if (seen.has(key)) throw malformed(`allowed[${i}] repeats ${report.version}`);
    seen.add(key);
    return report;
  });
}

/**
 * A model's firmware allowlist (docs/operators/lifecycle.md, check 5): from
 * now on its devices' attestations must report a listed version and digest
 * at enrollment and renewal. A withdrawn entry makes renewalInfo ask the
 * devices that run it to renew now. `[]` removes the policy.
 */
export async function setFirmwareAllowlist(store: FirmwarePolicyStore, audit: AuditLog, actor: string, model: string, allowed: FirmwareReport[], now: Date): Promise<FirmwareReport[]> {
  return audit.record(store, async (tx) => {
    if (!(await tx.models.byNameForUpdate(model))) throw notFound(`no model ${model}`);
    const { added, withdrawn } = await tx.firmware.replaceAllowed(model, allowed, now);
    const events = added.length + withdrawn.length === 0 ? [] : [{ action: 'model.firmware-policy', actor, data: { model, allowed, added, withdrawn } }];
    return { value: allowed, events };
  });
}

/** Check 5 (docs/device-makers/protocol.md): with a policy for the model, the reported firmware must be on it. */
export function firmwareProblem(allowed: readonly FirmwareReport[], reported: FirmwareReport | null): string | undefined {
  if (allowed.length === 0) return undefined;
  if (!reported) return 'the model has a firmware allowlist and the attestation reports no firmware';
  if (allowed.some((f) => f.version === reported.version && f.digest === reported.digest)) return undefined;
  return `firmware ${reported.version} with digest ${reported.digest} is not on the model's allowlist`;
}
