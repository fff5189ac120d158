import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { LOCKS, type Store } from '../store/store.ts';
import type { AuditEventRecord } from '../store/types.ts';

/** The `prev` of the first event. */
export const GENESIS = '0'.repeat(64);

/** What an action says about itself; the log adds seq, time and the chain link. */
export interface AuditEntry {
  action: string;
  /** Who acted: `token:<id>`, `cli`, `device:<serial>` or `system`; never a secret. */
  actor: string;
  device?: string;
  data?: Record<string, unknown>;
}

/** An event as hashed: its RFC 8785 canonical JSON is what `prev` of the next event covers. */
export interface AuditEvent extends AuditEntry {
  seq: number;
  at: string;
  prev: string;
}

export type AuditVerification =
  | { ok: true; events: number; head: string }
  | { ok: false; events: number; brokenAt: number; reason: string };

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function canonical(event: AuditEvent): string {
  const text = canonicalize(event);
  if (text === undefined) throw new Error('audit event cannot be canonicalised');
  return text;
}

/**
 * The hash-chained audit log (SPEC section 7). Each event carries the SHA-256
 * of the previous event's canonical JSON, so any edit, deletion or reordering
 * breaks the chain; appends hold a database lock so the chain never forks.
 */
export class AuditLog {
  constructor(private readonly clock: () => Date) {}

  /** Appends within the caller's transaction, so the event commits with the action it records. */
  async append(tx: Store, entry: AuditEntry): Promise<AuditEvent> {
    if (!tx.db.isTransaction) throw new Error('audit events are appended inside the transaction of their action');
    await tx.lock(LOCKS.auditChain);
    const head = await tx.audit.head();
    const event: AuditEvent = {
      seq: (head?.seq ?? 0) + 1,
      at: this.clock().toISOString(),
      actor: entry.actor,
      action: entry.action,
      ...(entry.device ? { device: entry.device } : {}),
      data: entry.data ?? {},
      prev: head?.hash ?? GENESIS,
    };
    const text = canonical(event);
    await tx.audit.insert({ seq: event.seq, action: event.action, deviceSerial: entry.device ?? null, canonical: text, hash: sha256(text) });
    return event;
  }

  /** Recomputes the whole chain, a page at a time; names the first event that breaks it. */
  async verify(store: Store): Promise<AuditVerification> {
    let prev = GENESIS;
    let expectedSeq = 1;
    for (;;) {
      const page = await store.audit.page(expectedSeq - 1, 1000);
      if (page.length === 0) return { ok: true, events: expectedSeq - 1, head: prev };
      for (const row of page) {
        const problem = checkEvent(row, expectedSeq, prev);
        if (problem) return { ok: false, events: expectedSeq - 1, brokenAt: problem.seq, reason: problem.reason };
        prev = row.hash;
        expectedSeq += 1;
      }
    }
  }

  static parse(row: AuditEventRecord): AuditEvent {
    return JSON.parse(row.canonical) as AuditEvent;
  }
}

function checkEvent(row: AuditEventRecord, expectedSeq: number, prev: string): { seq: number; reason: string } | undefined {
  if (row.seq !== expectedSeq) {
    return { seq: expectedSeq, reason: `event ${expectedSeq} is missing (next stored event is ${row.seq})` };
  }
  let event: AuditEvent;
  try {
    event = JSON.parse(row.canonical) as AuditEvent;
  } catch {
    return { seq: row.seq, reason: `event ${row.seq} is not JSON` };
  }
  if (canonicalize(event) !== row.canonical) return { seq: row.seq, reason: `event ${row.seq} is not in canonical form` };
  if (sha256(row.canonical) !== row.hash) return { seq: row.seq, reason: `event ${row.seq} does not match its recorded hash` };
  if (event.seq !== row.seq) return { seq: row.seq, reason: `event ${row.seq} claims sequence number ${event.seq}` };
  if (event.prev !== prev) return { seq: row.seq, reason: `event ${row.seq} does not link to the event before it` };
  if (event.action !== row.action || (event.device ?? null) !== row.deviceSerial) {
    return { seq: row.seq, reason: `event ${row.seq} has index columns that differ from its body` };
  }
  return undefined;
}
