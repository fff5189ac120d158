import { cosign } from './cosignature.ts';
import { openCheckpoint, type ParsedVerifierKey, type CheckpointBody, splitNote } from './signed-note.ts';
import { verifyConsistency } from './verify-proofs.ts';
import { SIZE_MEDIA_TYPE, parseAddCheckpoint } from './witness-request.ts';
import type { KeyObject } from 'node:crypto';

/** What a witness remembers of one log: the latest checkpoint it cosigned. */
export interface WitnessedHead {
  size: number;
  root: Buffer;
}

/** The witness's own key: it cosigns with it (type 0x04). */
export interface WitnessKey {
  name: string;
  privateKey: KeyObject;
  rawPublicKey: Buffer;
}

/** An HTTP answer of add-checkpoint; `head` is the state to persist before answering, when it changes. */
export interface WitnessAnswer {
  status: number;
  type: string;
  body: string;
  head?: { origin: string; head: WitnessedHead };
}

const text = (status: number, body: string): WitnessAnswer => ({ status, type: 'text/plain; charset=utf-8', body: `${body}\n` });

/**
 * C2SP tlog-witness add-checkpoint, rule by rule: the checkpoint must be
 * signed by a key the witness trusts for its origin (404 for an unknown
 * origin, 403 when no signature verifies), the old size no larger than the
 * new (400) and the size the witness last cosigned (409, with that size as
 * text/x.tlog.size), the same size the same root (409), the consistency
 * proof from the witnessed head must verify (422). Only then is the new head
 * kept and the checkpoint cosigned. `logs` maps an origin to its keys;
 * `heads` is the witness's state; `now` the POSIX seconds of the cosignature.
 */
export function addCheckpoint(body: string, logs: ReadonlyMap<string, readonly ParsedVerifierKey[]>, heads: ReadonlyMap<string, WitnessedHead>, key: WitnessKey, now: number): WitnessAnswer {
  const request = parseAddCheckpoint(body);
  if ('malformed' in request) return text(400, request.malformed);
  const origin = request.checkpoint.split('\n', 1)[0]!;
  const keys = logs.get(origin);
  if (!keys) return text(404, `no log with origin ${JSON.stringify(origin.slice(0, 200))} is known here`);
  let checkpoint: CheckpointBody | undefined;
  for (const logKey of keys) checkpoint ??= openCheckpoint(request.checkpoint, logKey.name, logKey.publicKey, logKey.rawPublicKey);
  if (!checkpoint || checkpoint.origin !== origin) return text(403, 'no signature on the checkpoint verifies with a key trusted for its origin');
  if (request.oldSize > checkpoint.size) return text(400, `old size ${request.oldSize} is larger than the checkpoint's size ${checkpoint.size}`);
  const head = heads.get(origin);
  const witnessed = head?.size ?? 0;
  if (request.oldSize !== witnessed) return { status: 409, type: SIZE_MEDIA_TYPE, body: `${witnessed}\n` };
  if (head && head.size === checkpoint.size) {
    if (!head.root.equals(checkpoint.root)) return text(409, `a different root at size ${head.size}, which this witness cosigned: the log forked`);
  } else if (!verifyConsistency(witnessed, checkpoint.size, request.proof, head?.root ?? Buffer.alloc(0), checkpoint.root)) {
    return text(422, `the consistency proof from size ${witnessed} to ${checkpoint.size} does not verify`);
  }
  const noteText = splitNote(request.checkpoint)!.text;
  return {
    status: 200, type: 'text/plain; charset=utf-8',
    body: `${cosign(noteText, key.name, key.privateKey, key.rawPublicKey, now)}\n`,
    head: { origin, head: { size: checkpoint.size, root: checkpoint.root } },
  };
}
