import type { Ed25519Handle, Ed25519Keys } from '../../hsm/ed25519.ts';
import { LOCKS } from '../../store/locks.ts';
import type { TlogKeyStore } from '../../store/subsets.ts';
import { isValidKeyName, openCheckpoint, verifierKey } from './signed-note.ts';

/** CKA_LABEL of the Ed25519 key that signs the Merkle log's checkpoints (docs/auditors/audit-log.md). */
export const LOG_KEY_LABEL = 'devid-log';

/** The log's name: its origin line and its key name (tlog-checkpoint), the public HTTP base URL without its scheme, plus `/log`. */
export function logOrigin(httpBaseUrl: string): string {
  return `${httpBaseUrl.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/+$/, '')}/log`;
}

/** The key that signs checkpoints, under the log's name. */
export interface LogKey {
  name: string;
  key: Ed25519Handle;
  /** `<name>+<hex key hash>+<base64(0x01 || public key)>`, as note.NewVerifier reads it. */
  verifierKey: string;
}

export type LogKeyResult = { ok: true; logKey: LogKey } | { ok: false; reason: string };

/**
 * The log key: found in the token, or made on the first start (under the
 * ceremony lock, so workers starting together make one). The log stays
 * disabled, with the reason, when the token has no Ed25519, when the name is
 * not a valid note key name, or when the newest checkpoint was signed by
 * another key or under another name: a new key or origin would start a
 * different log, and nothing would say which one is real.
 */
export async function openLogKey(provider: Ed25519Keys, store: TlogKeyStore, httpBaseUrl: string): Promise<LogKeyResult> {
  const name = logOrigin(httpBaseUrl);
  if (!isValidKeyName(name)) return { ok: false, reason: `the log name "${name}" (from DEVID_HTTP_BASE_URL) is not a valid signed-note key name` };
  const unsupported = await provider.ed25519Unsupported();
  if (unsupported) return { ok: false, reason: unsupported };
  return store.transaction(async (tx): Promise<LogKeyResult> => {
    await tx.lock(LOCKS.ceremony);
    const latest = await tx.tlog.latestCheckpoint();
    const existing = await provider.findEd25519Key(LOG_KEY_LABEL);
    if (!existing && latest) return { ok: false, reason: `the database holds signed log checkpoints but the token holds no "${LOG_KEY_LABEL}" key: restore the token from its backup` };
    const key = existing ?? (await provider.createEd25519Key(LOG_KEY_LABEL));
    if (latest && !openCheckpoint(latest.note, name, key.publicKey, key.rawPublicKey)) {
      return { ok: false, reason: `the newest log checkpoint is not signed by "${LOG_KEY_LABEL}" under the name "${name}": was DEVID_HTTP_BASE_URL or the token changed?` };
    }
    return { ok: true, logKey: { name, key, verifierKey: verifierKey(name, key.rawPublicKey) } };
  });
}
