import type { AuditLog } from '../registry/audit/audit-log.ts';
import type { SettingsStore } from '../store/settings-store.ts';
import type { AuditedStore, AuditWrites, IdentityStore } from '../store/subsets.ts';
import { ConfigError, parseBaseUrl, parseHost, parseTrustDomain, type Config, type PublicIdentity } from './config.ts';

const KEYS = { publicHost: 'public_host', trustDomain: 'trust_domain', httpBaseUrl: 'http_base_url' } as const;

/** Records the public identity at init: certificates carry it for ever (docs/reference/certificates.md). */
export async function recordIdentity(store: { settings: Pick<SettingsStore, 'set'> }, identity: PublicIdentity): Promise<void> {
  for (const [field, key] of Object.entries(KEYS)) await store.settings.set(key, identity[field as keyof PublicIdentity]);
}

/** The recorded identity, or undefined before init. */
export async function loadIdentity(store: { settings: Pick<SettingsStore, 'all'> }): Promise<PublicIdentity | undefined> {
  const all = await store.settings.all();
  const publicHost = all[KEYS.publicHost];
  const trustDomain = all[KEYS.trustDomain];
  const httpBaseUrl = all[KEYS.httpBaseUrl];
  if (!publicHost || !trustDomain || !httpBaseUrl) return undefined;
  return { publicHost, trustDomain, httpBaseUrl };
}

/** Where the environment asks for other values than the recorded ones (which win). */
export function identityDrift(config: Config, recorded: PublicIdentity): string[] {
  const drift: string[] = [];
  const variables: Array<[keyof PublicIdentity, string]> = [
    ['publicHost', 'DEVID_PUBLIC_HOST'], ['trustDomain', 'DEVID_TRUST_DOMAIN'], ['httpBaseUrl', 'DEVID_HTTP_BASE_URL'],
  ];
  for (const [field, variable] of variables) {
    if (config.explicit[field] && config[field] !== recorded[field]) {
      drift.push(`${variable}=${config[field]} differs from the value recorded at init (${recorded[field]}); the recorded value is used`);
    }
  }
  return drift;
}

/**
 * The explicit command that changes the recorded identity (docs/reference/certificates.md):
 * validated like the environment, audited with old and new values. Only
 * certificates issued from now on carry the new values.
 */
export async function changeIdentity(store: AuditedStore<AuditWrites & IdentityStore>, audit: AuditLog, changes: Partial<PublicIdentity>, actor: string): Promise<PublicIdentity> {
  const checked: Partial<PublicIdentity> = {};
  if (changes.publicHost !== undefined) checked.publicHost = parseHost('--public-host', changes.publicHost);
  if (changes.trustDomain !== undefined) checked.trustDomain = parseTrustDomain(changes.trustDomain, '--trust-domain');
  if (changes.httpBaseUrl !== undefined) checked.httpBaseUrl = parseBaseUrl('--http-base-url', changes.httpBaseUrl);
  return audit.record(store, async (tx) => {
    const current = await loadIdentity(tx);
    if (!current) throw new ConfigError('this database holds no initialised CA: run "devid-ca init" first');
    const next = { ...current, ...checked };
    await recordIdentity(tx, next);
    return { value: next, events: [{ action: 'ca.identity-changed', actor, data: { from: { ...current }, to: { ...next } } }] };
  });
}
