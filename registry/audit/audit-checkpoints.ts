import { verify as verifySignature, type KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Signer } from '../../ca/signer.ts';
import type { AuditStore } from '../../store/audit-store.ts';
import type { CheckpointingStore } from '../../store/subsets.ts';
import type { CheckpointRecord } from '../../store/types.ts';
import { LOCKS } from '../../store/locks.ts';
import { AUDIT_KEY_LABEL } from './audit-key.ts';

export { AUDIT_KEY_LABEL };

/** What a checkpoint signs: the chain head at one moment. */
export interface CheckpointBody {
  seq: number;
  head: string;
  at: string;
  key: string;
}

export interface Checkpoint extends CheckpointBody {
  /** base64 DER ECDSA-Sig-Value over the canonical JSON of the body. */
  signature: string;
}

export function toCheckpoint(record: CheckpointRecord): Checkpoint {
  return { ...(JSON.parse(record.canonical) as CheckpointBody), signature: record.signature.toString('base64') };
}

/**
 * Signed checkpoints of the audit chain head. A checkpoint makes cutting off
 * the tail of the log, or rewriting the whole chain, detectable: the signed
 * head must still be in the chain, at its sequence number.
 */
export class AuditCheckpoints {
  constructor(
    private readonly signer: Signer,
    /** The audit key's certificate, by the root: auditors anchor checkpoints to the root offline. */
    readonly certificate: Buffer,
    private readonly clock: () => Date,
  ) {}

  get publicKey(): KeyObject {
    return this.signer.key.publicKey;
  }

  /** Signs the current head; returns the latest checkpoint when the head has not moved, undefined when the log is empty. */
  async create(store: CheckpointingStore): Promise<Checkpoint | undefined> {
    return this.createIf(store, () => true);
  }

  /**
   * The timer's checkpoint: signed only when the latest one is at least
   * `interval` old, so that many server processes on one database sign one
   * per interval between them, not one each.
   */
  async createIfDue(store: CheckpointingStore, interval: number): Promise<Checkpoint | undefined> {
    const now = this.clock().getTime();
    return this.createIf(store, (latest) => now - Date.parse(latest.at) >= interval);
  }

  private async createIf(store: CheckpointingStore, due: (latest: Checkpoint) => boolean): Promise<Checkpoint | undefined> {
    return store.transaction(async (tx) => {
      // One signer at a time, so two nodes do not sign one head twice.
      await tx.lock(LOCKS.checkpoint);
      const head = await tx.audit.head();
      if (!head) return undefined;
      const stored = await tx.checkpoints.latest();
      const latest = stored ? toCheckpoint(stored) : undefined;
      // A log with no checkpoint yet is always due.
      if (latest && (latest.seq === head.seq || !due(latest))) return latest;
      const body: CheckpointBody = { seq: head.seq, head: head.hash, at: this.clock().toISOString(), key: AUDIT_KEY_LABEL };
      const canonical = canonicalize(body)!;
      const { signature } = await this.signer.sign(Buffer.from(canonical, 'utf8'));
      const record: CheckpointRecord = { seq: head.seq, canonical, signature };
      await tx.checkpoints.insert(record);
      return toCheckpoint(record);
    });
  }
}

/** The first checkpoint that the stored chain contradicts, as { seq, reason }. */
export async function checkCheckpoints(store: { audit: Pick<AuditStore, 'bySeq'> }, publicKey: KeyObject, events: number, records: CheckpointRecord[]): Promise<{ seq: number; reason: string } | undefined> {
  for (const record of records) {
    let body: CheckpointBody;
    try {
      body = JSON.parse(record.canonical) as CheckpointBody;
    } catch {
      return { seq: record.seq, reason: `checkpoint at event ${record.seq} is not JSON` };
    }
    if (canonicalize(body) !== record.canonical || body.seq !== record.seq) {
      return { seq: record.seq, reason: `checkpoint at event ${record.seq} was altered` };
    }
    if (!verifySignature('sha256', Buffer.from(record.canonical, 'utf8'), publicKey, record.signature)) {
      return { seq: record.seq, reason: `checkpoint at event ${record.seq} is not signed by the audit key` };
    }
    if (body.seq > events) {
      return { seq: events + 1, reason: `events ${events + 1} to ${body.seq} are missing: a checkpoint signed at ${body.at} covers event ${body.seq}` };
    }
    const event = await store.audit.bySeq(body.seq);
    if (!event || event.hash !== body.head) {
      return { seq: body.seq, reason: `event ${body.seq} differs from the one signed in the checkpoint of ${body.at}` };
    }
  }
  return undefined;
}
