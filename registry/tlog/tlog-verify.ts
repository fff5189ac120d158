import type { KeyObject } from 'node:crypto';
import type { TlogVerifyStore } from '../../store/subsets.ts';
import { leafHash } from './merkle.ts';
import { openCheckpoint } from './signed-note.ts';
import { TileBuilder, type Tile } from './tile-builder.ts';
import { edgeFromStored, entryBytes, tileRecord } from './transparency-log.ts';

export type TlogReport =
  | { ok: true; entries: number; checkpoint: { size: number; root: string } | null }
  | { ok: false; reason: string };

/** The log key as the token holds it, under the log's name; undefined when the token has none. */
export interface LogVerifierKey {
  name: string;
  publicKey: KeyObject;
  rawPublicKey: Buffer;
}

const PAGE = 1000;

/**
 * `devid-ca audit verify`: rebuilds the Merkle tree from the chained events
 * and compares it with every stored tile, and the latest checkpoint's root
 * and signature with the tree at its size. The stored tiles may lag the
 * chain (the step runs every few seconds); they may never run ahead of it.
 */
export async function verifyTlog(store: TlogVerifyStore, key: LogVerifierKey | undefined): Promise<TlogReport> {
  const checkpoint = await store.tlog.latestCheckpoint();
  const covered = new TileBuilder(edgeFromStored(await store.tlog.lastTiles())).size;
  let body: { size: number; root: Buffer } | undefined;
  if (checkpoint) {
    if (!key) return { ok: false, reason: 'the log has checkpoints but the token holds no log key (devid-log) to check them' };
    body = openCheckpoint(checkpoint.note, key.name, key.publicKey, key.rawPublicKey);
    if (!body) return { ok: false, reason: `the checkpoint at size ${checkpoint.size} is not signed by the log key as "${key.name}", or is malformed` };
    if (body.size !== checkpoint.size || !body.root.equals(checkpoint.root)) return { ok: false, reason: `the checkpoint at size ${checkpoint.size} differs from its stored size or root` };
    if (body.size > covered) return { ok: false, reason: `the checkpoint signs ${body.size} entries but the stored tiles cover ${covered}` };
  }
  const full: Tile[] = [];
  const builder = new TileBuilder([], (tile) => full.push(tile));
  const problem = { reason: '' };
  const compare = async (tile: Tile): Promise<boolean> => {
    const stored = await store.tlog.tile(tile.level, tile.index);
    if (stored && stored.hashes.equals(tileRecord(tile).hashes)) return true;
    problem.reason = `the stored tile ${tile.level}/${tile.index} differs from the one rebuilt from the events`;
    return false;
  };
  let checkpointRoot: Buffer | undefined = body?.size === 0 ? builder.root() : undefined;
  while (builder.size < covered) {
    const events = await store.audit.page(builder.size, Math.min(PAGE, covered - builder.size));
    if (events.length === 0) return { ok: false, reason: `the stored tiles cover ${covered} entries but the chain holds ${builder.size}` };
    for (const event of events) {
      builder.appendLeaf(leafHash(entryBytes(event.canonical)));
      if (builder.size === body?.size) checkpointRoot = builder.root();
    }
    for (const tile of full.splice(0)) if (!(await compare(tile))) return { ok: false, reason: problem.reason };
  }
  for (const tile of builder.partialTiles()) if (!(await compare(tile))) return { ok: false, reason: problem.reason };
  if (body && !checkpointRoot?.equals(body.root)) return { ok: false, reason: `the checkpoint's root at size ${body.size} is not the root of the first ${body.size} events` };
  return { ok: true, entries: covered, checkpoint: body ? { size: body.size, root: body.root.toString('base64') } : null };
}
