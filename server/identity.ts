import type { Store } from '../store/store.ts';
import type { Config, PublicIdentity } from './config.ts';

const KEYS = { publicHost: 'public_host', trustDomain: 'trust_domain', httpBaseUrl: 'http_base_url' } as const;

/** Records the public identity at init: certificates carry it for ever (SPEC section 1). */
export async function recordIdentity(store: Store, identity: PublicIdentity): Promise<void> {
  for (const [field, key] of Object.entries(KEYS)) await store.settings.set(key, identity[field as keyof PublicIdentity]);
}

/** The recorded identity, or undefined before init. */
export async function loadIdentity(store: Store): Promise<PublicIdentity | undefined> {
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
  const env: Array<[keyof PublicIdentity, string]> = [
    ['publicHost', 'DEVID_PUBLIC_HOST'], ['trustDomain', 'DEVID_TRUST_DOMAIN'], ['httpBaseUrl', 'DEVID_HTTP_BASE_URL'],
  ];
  for (const [field, variable] of env) {
    if (process.env[variable] && config[field] !== recorded[field]) {
      drift.push(`${variable}=${config[field]} differs from the value recorded at init (${recorded[field]}); the recorded value is used`);
    }
  }
  return drift;
}
