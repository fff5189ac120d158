import { conflict, gone, malformed, notFound } from '../../errors/domain-error.ts';
import type { LegacyEntry } from '../../store/firmware-release-store.ts';
import type { FirmwarePolicyStore } from '../../store/subsets.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Principal } from '../lifecycle/support-grants.ts';
import { proposalHash } from '../two-person.ts';

/** An allowlist is a short list of releases, not a history. */
const MAX_ENTRIES = 256;
/** An entry's version names its legacy release, in URLs like any release's. */
const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/;

/** The body of PUT /operator/v1/models/<model>/firmware: `{"allowed": [{"version", "digest"}]}`, checked. */
export function checkAllowlist(allowed: unknown): LegacyEntry[] {
  if (!Array.isArray(allowed) || allowed.length > MAX_ENTRIES) throw malformed(`allowed must be a list of at most ${MAX_ENTRIES} {"version", "digest"} entries ([] removes the policy)`);
  const seen = new Set<string>();
  return allowed.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw malformed(`allowed[${i}] must be {"version", "digest"}`);
    const { version, digest, ...rest } = entry as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw malformed(`allowed[${i}] has an unknown field ${JSON.stringify(Object.keys(rest)[0]!.slice(0, 64))}`);
    if (typeof version !== 'string' || !VERSION_PATTERN.test(version)) throw malformed(`allowed[${i}].version must be 1-64 characters: a letter or digit, then letters, digits, ".", "+", "_" or "-" (it names a legacy release)`);
    if (typeof digest !== 'string' || !/^(?:[0-9a-fA-F]{2}){32,64}$/.test(digest)) throw malformed(`allowed[${i}].digest must be the hex of a 32- to 64-byte digest`);
    if (seen.has(version)) throw malformed(`allowed[${i}] repeats ${version}`);
    seen.add(version);
    return { version, digest: digest.toLowerCase() };
  });
}

/** A legacy release's proposal hash: RFC 8785 JSON of what the allowlist said, marked legacy (nobody approves it). */
export const legacyProposalHash = (model: string, entry: LegacyEntry) => proposalHash({ model, version: entry.version, digest: entry.digest, legacy: true });

/** Why the model's allowlist is gone: its legacy cut-off has passed. */
export function allowlistGone(model: string, until: Date | null, now: Date): void {
  if (until !== null && until <= now) {
    throw gone(`model ${model}'s firmware allowlist ended at its legacy cut-off, ${until.toISOString()}: its devices run signed releases (POST /operator/v1/models/${model}/firmware-releases)`);
  }
}

/**
 * A model's firmware allowlist (docs/operators/firmware.md#legacy-releases):
 * its entries are legacy releases, unsigned, that check 5 accepts until the
 * model's legacy cut-off. A new entry is a new legacy release; an entry left
 * out is withdrawn (renewalInfo asks its devices to renew now); an entry
 * listed again after its withdrawal is accepted again. `[]` removes the
 * policy. From the cut-off on, the allowlist is gone (410).
 */
export async function setFirmwareAllowlist(store: FirmwarePolicyStore, audit: AuditLog, who: Principal, model: string, allowed: LegacyEntry[], now: Date): Promise<LegacyEntry[]> {
  return audit.record(store, async (tx) => {
    if (!(await tx.models.byNameForUpdate(model))) throw notFound(`no model ${model}`);
    allowlistGone(model, await tx.models.legacyFirmwareUntil(model), now);
    const current = await tx.firmwareReleases.liveLegacy(model);
    const live = new Map(current.map((entry) => [entry.version, entry.digest]));
    const wanted = new Map(allowed.map((entry) => [entry.version, entry.digest]));
    const withdrawn = current.filter((entry) => wanted.get(entry.version) !== entry.digest);
    const added = allowed.filter((entry) => live.get(entry.version) !== entry.digest);
    for (const entry of withdrawn) {
      await tx.firmwareReleases.withdraw(model, entry.version, { withdrawnBy: who.principal, withdrawnAt: now, reason: 'removed from the allowlist' });
    }
    for (const entry of added) {
      const existing = await tx.firmwareReleases.findForUpdate(model, entry.version);
      if (!existing) await tx.firmwareReleases.insertLegacy(model, entry, legacyProposalHash(model, entry), who.principal, now);
      else if (!existing.legacy || existing.digest !== entry.digest || !(await tx.firmwareReleases.reinstateLegacy(model, entry.version))) {
        throw conflict(`model ${model} has a release ${entry.version} already (${existing.legacy ? `a legacy release of digest ${existing.digest}` : 'a signed release'}): give this entry another version`);
      }
    }
    const events = added.length + withdrawn.length === 0 ? [] : [{ action: 'model.firmware-policy', actor: who.actor, data: { model, allowed, added, withdrawn, principal: who.principal } }];
    return { value: allowed, events };
  });
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/i;

/** An RFC 3339 date-time with its offset, as the legacy cut-off is given: a day that exists (Date.parse takes February 30). */
export function checkCutoff(value: unknown): Date {
  const refused = () => malformed('until must be an RFC 3339 date-time with its offset, such as "2027-03-01T00:00:00Z"');
  const m = typeof value === 'string' ? RFC3339.exec(value) : null;
  if (!m) throw refused();
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = m.slice(1).map((part) => (part === undefined ? 0 : Number(part)));
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth || hour! > 23 || minute! > 59 || second! > 59 || offsetHour! > 23 || offsetMinute! > 59) throw refused();
  const at = new Date(value as string);
  if (Number.isNaN(at.getTime())) throw refused();
  return at;
}

/**
 * PUT /operator/v1/models/<model>/firmware-legacy {"until"}: the date from
 * which check 5 refuses the model's legacy releases and its allowlist answers
 * 410. It may move while it is ahead; once it has passed it is final. Audited.
 */
export async function setLegacyCutoff(store: FirmwarePolicyStore, audit: AuditLog, who: Principal, model: string, until: Date, now: Date): Promise<{ model: string; until: Date }> {
  return audit.record(store, async (tx) => {
    if (!(await tx.models.byNameForUpdate(model))) throw notFound(`no model ${model}`);
    const previous = await tx.models.legacyFirmwareUntil(model);
    if (previous !== null && previous <= now) throw conflict(`model ${model}'s legacy cut-off passed at ${previous.toISOString()}: it is final`);
    if (previous?.getTime() === until.getTime()) return { value: { model, until }, events: [] };
    await tx.models.setLegacyFirmwareUntil(model, until, now);
    return {
      value: { model, until },
      events: [{ action: 'model.firmware-legacy-cutoff', actor: who.actor, data: { model, until: until.toISOString(), previous: previous?.toISOString() ?? null, principal: who.principal } }],
    };
  });
}
