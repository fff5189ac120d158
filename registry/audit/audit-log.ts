import canonicalize from 'canonicalize';
import { sha256Hex } from '../../ca/digest.ts';
import { malformed } from '../../errors/domain-error.ts';
import type { AuditStore } from '../../store/audit-store.ts';
import type { Store } from '../../store/store.ts';
import type { PendingEvent } from '../../store/audit-store.ts';
import type { AuditedStore, AuditWrites } from '../../store/subsets.ts';
import type { AuditEventRecord } from '../../store/types.ts';

/** The `prev` of the first event. */
export const GENESIS = '0'.repeat(64);
/**
 * The largest event: an entry of the Merkle log's bundles carries a uint16
 * length (tlog-tiles), so an action whose event would not fit is refused.
 */
export const MAX_EVENT_BYTES = 65_535;
/** The longest free-text field of an event, in UTF-8 bytes: a reason or a note is prose, not a payload. */
export const MAX_FREE_TEXT_BYTES = 4096;
/** The members of an event's data, at any depth, that hold what a person wrote (reasons, evidence, comments). */
const FREE_TEXT_FIELDS = new Set(['reason', 'evidence', 'comment', 'comments', 'note', 'notes', 'description', 'justification', 'message', 'detail']);
/** What the chain appends to a pending event: `"prev":"<64 hex>","seq":<at most 16 digits>}`. */
const CHAIN_SUFFIX_BYTES = '"prev":"","seq":}'.length + 64 + 16;
/** Pending events moved into the chain per statement. */
const CHAIN_BATCH = 2000;

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

/** What an audited action returns: its result and the events that record it. */
export interface Audited<T> {
  value: T;
  events: AuditEntry[];
}

export type AuditVerification =
  | { ok: true; events: number; head: string }
  | { ok: false; events: number; brokenAt: number; reason: string };

/**
 * The hash-chained audit log (docs/auditors/audit-log.md). Each event carries the SHA-256
 * of the previous event's canonical JSON, so any edit, deletion or reordering
 * breaks the chain; appends hold a database lock so the chain never forks,
 * and are group-committed (`record`, `chain`) so the lock is not the cluster's bottleneck.
 */
export class AuditLog {
  private readonly listeners: Array<(actions: readonly string[]) => void> = [];

  constructor(private readonly clock: () => Date) {}

  /** Told the actions of every committed audited action (metrics count them). */
  onCommitted(listener: (actions: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Runs an audited action: `work` and its events in one transaction, the
   * events written as pending (no lock, so actions commit side by side);
   * then the events are chained (`chain`) before this returns, so whoever
   * reads the log afterwards finds them. When chaining fails (the database
   * went away after the commit) the action stands and its events wait,
   * committed, for the next chain run: nothing is lost, and `chainError`
   * says why. S, what `work` needs of the transaction, is inferred from
   * `store`; a caller that names only T gets a whole Store.
   */
  async record<T, S extends AuditWrites = Store>(store: AuditedStore<S>, work: (tx: S) => Promise<Audited<T>>): Promise<T> {
    if (store.inTransaction) throw new Error('an audited action is its own transaction: call record on the top-level store');
    let actions: string[] = [];
    // With one connection nothing can append beside this transaction: its events are chained in it, in one statement.
    const inline = store.singleConnection;
    const value = await store.transaction(async (tx) => {
      const { value, events } = await work(tx);
      if (events.length > 0) await (inline ? tx.audit.appendChained(this.pending(events)) : tx.audit.insertPending(this.pending(events)));
      actions = events.map((e) => e.action);
      return value;
    });
    if (actions.length > 0) {
      if (!inline) await this.chain(store).catch((err: unknown) => { this.chainError = err; });
      for (const listener of this.listeners) listener(actions);
    }
    return value;
  }

  /** Events that record no other write: a refused clone attempt, a read. */
  async recordAlone(store: AuditedStore, ...events: AuditEntry[]): Promise<void> {
    await this.record(store, async () => ({ value: undefined, events }));
  }

  /** Why the last chain run failed, if it did; the next successful one clears it. */
  chainError: unknown;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  /**
   * Moves every committed pending event into the chain (group commit): one
   * transaction under the chain lock for all the actions that committed
   * before it started, from every process. Within a process, callers share
   * runs: a caller joins the run queued after the one in flight (which may
   * have read the pending rows before its commit), so each process keeps at
   * most one waiter on the lock.
   */
  chain(store: AuditedStore): Promise<void> {
    if (!this.running) {
      this.running = this.chainNow(store).finally(() => { this.running = undefined; });
      return this.running;
    }
    this.queued ??= this.running.catch(() => {}).then(() => {
      this.queued = undefined;
      return this.chain(store);
    });
    return this.queued;
  }

  private async chainNow(store: AuditedStore): Promise<void> {
    await store.transaction(async (tx) => {
      await tx.audit.lockChain();
      while ((await tx.audit.chainPending(CHAIN_BATCH)) === CHAIN_BATCH);
    });
    this.chainError = undefined;
  }

  /**
   * The canonical JSON of an event ends with its `prev` and `seq` members
   * (they sort last under RFC 8785), so it is written here up to them and
   * completed from the chain head, and hashed, by the database when it is
   * chained (store/audit-store.ts).
   */
  private pending(entries: AuditEntry[]): PendingEvent[] {
    const at = this.clock().toISOString();
    return entries.map((entry) => {
      const body = { at, actor: entry.actor, action: entry.action, ...(entry.device ? { device: entry.device } : {}), data: entry.data ?? {} };
      // People's actions only: what a device or the CA itself records (a refusal's detail, a clone signal) is never refused for its length.
      const long = writtenByPerson(entry.actor) ? longFreeText(entry.data ?? {}) : undefined;
      if (long) throw malformed(`${long} of this action's audit event (${entry.action}) is longer than ${MAX_FREE_TEXT_BYTES} bytes of UTF-8: shorten it`);
      const text = canonicalize(body);
      if (text === undefined) throw new Error('audit event cannot be canonicalised');
      // Thrown inside the action's transaction, before its events are written: the action rolls back whole.
      if (Buffer.byteLength(text, 'utf8') + CHAIN_SUFFIX_BYTES > MAX_EVENT_BYTES) {
        throw malformed(`this action's audit event (${entry.action}) would exceed ${MAX_EVENT_BYTES} bytes: shorten its free-text fields`);
      }
      return { canonicalPrefix: `${text.slice(0, -1)},`, action: entry.action, deviceSerial: entry.device ?? null };
    });
  }

  /** Recomputes the whole chain, a page at a time; names the first event that breaks it. */
  async verify(store: { audit: Pick<AuditStore, 'page'> }, onProgress?: (events: number) => void): Promise<AuditVerification> {
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
      if ((expectedSeq - 1) % 50_000 === 0) onProgress?.(expectedSeq - 1);
    }
  }

  static parse(row: AuditEventRecord): AuditEvent {
    return JSON.parse(row.canonical) as AuditEvent;
  }
}

/** A token's or the command line's action (`token:<id>`, `cli...`), not a device's or the CA's own. */
function writtenByPerson(actor: string): boolean {
  return !actor.startsWith('device:') && actor !== 'system';
}

/** The path of the first free-text member longer than MAX_FREE_TEXT_BYTES, if any. */
function longFreeText(value: unknown, path = 'data'): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = longFreeText(item, `${path}[${i}]`);
      if (found) return found;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (FREE_TEXT_FIELDS.has(key) && typeof item === 'string' && Buffer.byteLength(item, 'utf8') > MAX_FREE_TEXT_BYTES) return `${path}.${key}`;
      const found = longFreeText(item, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
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
  if (sha256Hex(row.canonical) !== row.hash) return { seq: row.seq, reason: `event ${row.seq} does not match its recorded hash` };
  if (event.seq !== row.seq) return { seq: row.seq, reason: `event ${row.seq} claims sequence number ${event.seq}` };
  if (event.prev !== prev) return { seq: row.seq, reason: `event ${row.seq} does not link to the event before it` };
  if (event.action !== row.action || (event.device ?? null) !== row.deviceSerial) {
    return { seq: row.seq, reason: `event ${row.seq} has index columns that differ from its body` };
  }
  return undefined;
}
