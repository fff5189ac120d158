import type { KeyProvider } from '../hsm/provider.ts';
import type { Store } from '../store/store.ts';
import { AUDIT_KEY_LABEL, checkCheckpoints, toCheckpoint, type Checkpoint } from './audit-checkpoints.ts';
import type { AuditLog } from './audit-log.ts';

export type AuditReport =
  | { ok: true; events: number; head: string; checkpoints: number; latestCheckpoint: Checkpoint | null }
  | { ok: false; events: number; brokenAt: number; reason: string };

/**
 * `devid-ca audit verify` and GET /audit/v1/verify: the whole hash chain,
 * then every signed checkpoint against it (verified with the audit key in the
 * token, never a key read from the database an attacker could have edited).
 */
export async function verifyAudit(store: Store, log: AuditLog, provider: KeyProvider): Promise<AuditReport> {
  const chain = await log.verify(store);
  if (!chain.ok) return chain;
  const checkpoints = await store.checkpoints.all();
  if (checkpoints.length === 0) return { ...chain, checkpoints: 0, latestCheckpoint: null };
  const key = await provider.findKey(AUDIT_KEY_LABEL);
  if (!key) return { ok: false, events: chain.events, brokenAt: checkpoints[0]!.seq, reason: `the token holds no "${AUDIT_KEY_LABEL}" key to check the checkpoints with` };
  const problem = await checkCheckpoints(store, key.publicKey, chain.events);
  if (problem) return { ok: false, events: chain.events, brokenAt: problem.seq, reason: problem.reason };
  return { ...chain, checkpoints: checkpoints.length, latestCheckpoint: toCheckpoint(checkpoints.at(-1)!) };
}
