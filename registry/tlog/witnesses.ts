import type { WitnessHealthStore, WitnessStore } from '../../store/subsets.ts';
import { openCosignature } from './cosignature.ts';
import { StoredTree } from './proofs.ts';
import { splitNote, type ParsedVerifierKey } from './signed-note.ts';
import { SIZE_MEDIA_TYPE, addCheckpointBody } from './witness-request.ts';

/** A witness the operator configured (DEVID_WITNESSES): its submission prefix and its cosignature key (type 0x04). */
export interface WitnessEndpoint {
  url: string;
  key: ParsedVerifierKey;
}

/** How long one witness has to answer: a slow witness delays only its own cosignature. */
const WITNESS_TIMEOUT_MS = 10_000;
/** A witness whose cosignature lags the latest checkpoint this long, without an error, is behind. */
const BEHIND_AFTER_MS = 60_000;

/** What /readyz and the metrics say of one witness. */
export interface WitnessHealth {
  witness: string;
  ok: boolean;
  cosignedSize: number;
  /** `ok`, or why not. */
  status: string;
}

type Post = (url: string, body: string, signal: AbortSignal) => Promise<{ status: number; type: string; body: string }>;

/** A witness's answer is a few signature lines: more than this is cut off unread. */
const MAX_ANSWER_BYTES = 16 * 1024;

const fetchPost: Post = async (url, body, signal) => {
  const res = await fetch(url, { method: 'POST', body, signal, headers: { 'content-type': 'text/plain; charset=utf-8' }, redirect: 'error' });
  const chunks: Buffer[] = [];
  let length = 0;
  const reader = res.body?.getReader();
  while (reader && length < MAX_ANSWER_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(Buffer.from(value));
    length += value.length;
  }
  await reader?.cancel().catch(() => {});
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8') };
};

/**
 * The log's side of C2SP tlog-witness: each new checkpoint goes to every
 * witness with the consistency proof from the size that witness last
 * cosigned (read from the stored cosignatures; a 409 tells the witness's
 * size, and the submission is made once more from it). A returned
 * cosignature is kept only when it verifies with the configured key. Runs
 * beside the log, never in an audited action: a witness that is down delays
 * nothing but its own cosignature, and shows in /readyz and the metrics.
 */
export class WitnessSubmitter {
  constructor(
    readonly witnesses: readonly WitnessEndpoint[],
    private readonly clock: () => Date,
    private readonly post: Post = fetchPost,
  ) {}

  /** Submits the latest checkpoint to every witness that has not cosigned it; answers each witness asked and its error (null: cosigned). */
  async submitAll(store: WitnessStore): Promise<Array<{ witness: string; error: string | null }>> {
    const latest = await store.tlog.latestCheckpoint();
    if (!latest || this.witnesses.length === 0) return [];
    const cosigned = await store.tlog.cosignedSizes();
    const asked = await Promise.all(this.witnesses.map(async (witness) => {
      if ((cosigned.get(witness.key.name) ?? 0) >= latest.size) return undefined;
      let error: string | null = null;
      try {
        await this.submit(store, witness, latest, cosigned.get(witness.key.name) ?? 0);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      await store.tlog.setWitnessStatus({ witness: witness.key.name, attemptedAt: this.clock(), error, cosignedSize: error ? 0 : latest.size });
      return { witness: witness.key.name, error };
    }));
    return asked.filter((a) => a !== undefined);
  }

  private async submit(store: WitnessStore, witness: WitnessEndpoint, latest: { size: number; note: string }, known: number): Promise<void> {
    const tree = new StoredTree(store);
    let oldSize = known;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const body = addCheckpointBody({ oldSize, proof: await tree.consistencyProof(oldSize, latest.size), checkpoint: latest.note });
      const answer = await this.post(`${witness.url}/add-checkpoint`, body, AbortSignal.timeout(WITNESS_TIMEOUT_MS));
      if (answer.status === 200) return this.keep(store, witness, latest, answer.body);
      if (answer.status === 409 && answer.type.startsWith(SIZE_MEDIA_TYPE) && attempt === 0) {
        const size = /^(0|[1-9]\d{0,15})\n$/.exec(answer.body);
        if (!size) throw new Error(`the witness answered 409 without a size: ${JSON.stringify(answer.body.slice(0, 200))}`);
        const theirs = Number(size[1]);
        // A witness that saw more of this log than it holds: the log was rolled back, or someone else signs as it.
        if (theirs > latest.size) throw new Error(`the witness has cosigned size ${theirs}, beyond this log's ${latest.size}: the log was rolled back or forked`);
        oldSize = theirs;
        continue;
      }
      throw new Error(`the witness answered ${answer.status}: ${answer.body.trim().slice(0, 300)}`);
    }
    throw new Error('the witness refused the size it had just named');
  }

  private async keep(store: WitnessStore, witness: WitnessEndpoint, latest: { size: number; note: string }, body: string): Promise<void> {
    const text = splitNote(latest.note)!.text;
    const line = body.split('\n').find((candidate) => openCosignature(candidate, text, witness.key));
    if (!line) throw new Error(`the witness answered 200 without a cosignature that verifies with ${witness.key.name}'s key`);
    await store.tlog.insertCosignature({ size: latest.size, witness: witness.key.name, signature: line, receivedAt: this.clock() });
  }

  /** Each configured witness: cosigning, failing (its last error) or behind the latest checkpoint. */
  async health(store: WitnessHealthStore): Promise<WitnessHealth[]> {
    if (this.witnesses.length === 0) return [];
    const [latest, cosigned, statuses] = await Promise.all([store.tlog.latestCheckpoint(), store.tlog.cosignedSizes(), store.tlog.witnessStatuses()]);
    const now = this.clock().getTime();
    return this.witnesses.map(({ key }) => {
      const cosignedSize = cosigned.get(key.name) ?? 0;
      const status = statuses.find((s) => s.witness === key.name);
      const behind = latest !== undefined && cosignedSize < latest.size && now - latest.signedAt.getTime() > BEHIND_AFTER_MS;
      const text = status?.error ? `failing: ${status.error}` : behind ? `behind: cosigned size ${cosignedSize}, the log is at ${latest!.size}` : 'ok';
      return { witness: key.name, ok: text === 'ok', cosignedSize, status: text };
    });
  }
}
