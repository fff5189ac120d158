import { verify as verifySignature, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import canonicalize from 'canonicalize';
import { HsmError } from '../hsm/errors.ts';
import type { KeyHandle, KeyProvider } from '../hsm/provider.ts';
import { LOCKS, type Store } from '../store/store.ts';
import type { CheckpointRecord } from '../store/types.ts';

/** CKA_LABEL of the key that signs checkpoints (SPEC section 7). */
export const AUDIT_KEY_LABEL = 'devid-audit';

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
    private readonly provider: KeyProvider,
    private readonly clock: () => Date,
  ) {}

  /**
   * Generates the audit key when the token has none; under a database lock
   * so that two nodes starting at once cannot create two keys with one label.
   */
  async ensureKey(store: Store): Promise<KeyHandle> {
    return store.transaction(async (tx) => {
      await tx.lock(LOCKS.auditKey);
      return (await this.provider.findKey(AUDIT_KEY_LABEL)) ?? this.provider.createKey(AUDIT_KEY_LABEL, 'P-256');
    });
  }

  async key(): Promise<KeyHandle> {
    const key = await this.provider.findKey(AUDIT_KEY_LABEL);
    if (!key) throw new HsmError('key-missing', `the token holds no "${AUDIT_KEY_LABEL}" key`);
    return key;
  }

  async publicKey(): Promise<KeyObject> {
    return (await this.key()).publicKey;
  }

  /** Signs the current head; returns the latest checkpoint when the head has not moved, undefined when the log is empty. */
  async create(store: Store): Promise<Checkpoint | undefined> {
    const key = await this.key();
    return store.transaction(async (tx) => {
      await tx.lock(LOCKS.auditChain);
      const head = await tx.audit.head();
      if (!head) return undefined;
      const latest = await tx.checkpoints.latest();
      if (latest && latest.seq === head.seq) return toCheckpoint(latest);
      const body: CheckpointBody = { seq: head.seq, head: head.hash, at: this.clock().toISOString(), key: AUDIT_KEY_LABEL };
      const canonical = canonicalize(body)!;
      const raw = await this.provider.sign(key, Buffer.from(canonical, 'utf8'));
      const der = new x509.AsnEcSignatureFormatter().toAsnSignature({ name: 'ECDSA', namedCurve: key.curve } as EcKeyAlgorithm, new Uint8Array(raw));
      const record: CheckpointRecord = { seq: head.seq, canonical, signature: Buffer.from(der!) };
      await tx.checkpoints.insert(record);
      return toCheckpoint(record);
    });
  }
}

/** The first checkpoint that the stored chain contradicts, as { seq, reason }. */
export async function checkCheckpoints(store: Store, publicKey: KeyObject, events: number, records: CheckpointRecord[]): Promise<{ seq: number; reason: string } | undefined> {
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
