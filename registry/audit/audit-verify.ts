import canonicalize from 'canonicalize';
import type { KeyObject } from 'node:crypto';
import type { AuditVerifyStore } from '../../store/subsets.ts';
import type { CheckpointRecord } from '../../store/types.ts';
import { checkCheckpoints, toCheckpoint, type Checkpoint } from './audit-checkpoints.ts';
import type { AuditLog } from './audit-log.ts';

export type AuditReport =
  | { ok: true; events: number; head: string; checkpoints: number; latestCheckpoint: Checkpoint | null }
  | { ok: false; events: number; brokenAt: number; reason: string };

/** A checkpoint exported earlier (GET /audit/v1/checkpoints) back in stored form, to check against the log. */
export function fromExported(checkpoint: Checkpoint): CheckpointRecord {
  const { signature, ...body } = checkpoint;
  return { seq: body.seq, canonical: canonicalize(body)!, signature: Buffer.from(signature, 'base64') };
}

/**
 * `devid-ca audit verify` and GET /audit/v1/verify: the whole hash chain,
 * then every signed checkpoint against it, verified with the audit key as
 * found in the token (never a key read from the database alone, which an
 * attacker could have edited).
 * `external` adds checkpoints kept outside the CA, which prove that the log
 * was not rewritten or cut back along with its stored checkpoints.
 */
export async function verifyAudit(store: AuditVerifyStore, log: AuditLog, auditKey: KeyObject, external: CheckpointRecord[] = [], onProgress?: (events: number) => void): Promise<AuditReport> {
  // Events a stopped process committed but did not chain yet are chained first, so the check covers them.
  await log.chain(store).catch(() => {});
  // Checkpoints first: every one read now signs a head the chain read next must contain.
  const stored = await store.checkpoints.all();
  const chain = await log.verify(store, onProgress);
  if (!chain.ok) return chain;
  const all = [...stored, ...external];
  if (chain.events > 0 && stored.length === 0) {
    return { ok: false, events: chain.events, brokenAt: 1, reason: 'the log has events but no signed checkpoint: init signs one, so checkpoints were removed' };
  }
  if (all.length === 0) return { ...chain, checkpoints: 0, latestCheckpoint: null };
  const problem = await checkCheckpoints(store, auditKey, chain.events, all);
  if (problem) return { ok: false, events: chain.events, brokenAt: problem.seq, reason: problem.reason };
  const latest = stored.at(-1);
  return { ...chain, checkpoints: stored.length, latestCheckpoint: latest ? toCheckpoint(latest) : null };
}
