import type { Ed25519Keys } from '../../hsm/ed25519.ts';
import { LOCKS } from '../../store/locks.ts';
import type { TlogReadStore, TlogStepStore } from '../../store/subsets.ts';
import type { TileRecord, TlogCheckpointRecord } from '../../store/tlog-store.ts';
import type { LogKey } from './log-key.ts';
import { leafHash } from './merkle.ts';
import { checkpointText, signedNote } from './signed-note.ts';
import { HASH_SIZE, TILE_WIDTH, TileBuilder, tileWidth, type Tile } from './tile-builder.ts';

/** Events hashed into the tiles per transaction: short transactions, so a long backlog never holds the lock for long. */
const EXTEND_BATCH = 4096;

/** The right edge of the stored tree, as the builder starts from it. */
export function edgeFromStored(last: readonly TileRecord[]): Tile[] {
  return last.map((record) => {
    const hashes = splitHashes(record.hashes);
    return hashes.length === TILE_WIDTH ? { level: record.level, index: record.index + 1, hashes: [] } : { level: record.level, index: record.index, hashes };
  });
}

export function splitHashes(bytes: Buffer): Buffer[] {
  const hashes: Buffer[] = [];
  for (let at = 0; at + HASH_SIZE <= bytes.length; at += HASH_SIZE) hashes.push(bytes.subarray(at, at + HASH_SIZE));
  return hashes;
}

/** A tile's stored form: its hashes, concatenated. */
export function tileRecord(tile: Tile): TileRecord {
  return { level: tile.level, index: tile.index, hashes: Buffer.concat(tile.hashes) };
}

/** The bytes of one entry: the event's canonical JSON exactly as stored. */
export function entryBytes(canonical: string): Buffer {
  return Buffer.from(canonical, 'utf8');
}

/**
 * The audit log as a Merkle tree in the C2SP tlog-tiles layout
 * (docs/auditors/audit-log.md): entry i is the event with seq i + 1. A
 * periodic step, not the append, extends the stored tiles from the last
 * covered entry up to the chain head and signs a checkpoint of the new size,
 * so audited actions never wait for the tree.
 */
export class TransparencyLog {
  constructor(
    private readonly keys: Ed25519Keys,
    readonly logKey: LogKey,
    private readonly clock: () => Date,
  ) {}

  /** Extends the tiles to the chain head, then signs the new size; returns the latest checkpoint. */
  async step(store: TlogStepStore): Promise<TlogCheckpointRecord | undefined> {
    while ((await this.extend(store)) === EXTEND_BATCH);
    return this.checkpoint(store);
  }

  /** One batch of events into the tiles, in one transaction under the log's lock; returns how many. */
  private async extend(store: TlogStepStore): Promise<number> {
    return store.transaction(async (tx) => {
      await tx.lock(LOCKS.tlog);
      const touched = new Map<string, Tile>();
      const keep = (tile: Tile) => touched.set(`${tile.level}/${tile.index}`, tile);
      const builder = new TileBuilder(edgeFromStored(await tx.tlog.lastTiles()), keep);
      const events = await tx.audit.page(builder.size, EXTEND_BATCH);
      if (events.length === 0) return 0;
      for (const event of events) {
        if (event.seq !== builder.size + 1) throw new Error(`the audit chain has no event ${builder.size + 1}: the tree cannot grow past it`);
        builder.appendLeaf(leafHash(entryBytes(event.canonical)));
      }
      for (const tile of builder.partialTiles()) keep(tile);
      await tx.tlog.putTiles([...touched.values()].map(tileRecord));
      return events.length;
    });
  }

  private async checkpoint(store: TlogStepStore): Promise<TlogCheckpointRecord | undefined> {
    return store.transaction(async (tx) => {
      await tx.lock(LOCKS.tlog);
      const latest = await tx.tlog.latestCheckpoint();
      const builder = new TileBuilder(edgeFromStored(await tx.tlog.lastTiles()));
      if (builder.size === 0 || (latest && latest.size >= builder.size)) return latest;
      const root = builder.root();
      const text = checkpointText({ origin: this.logKey.name, size: builder.size, root });
      const signature = await this.keys.signEd25519(this.logKey.key, Buffer.from(text, 'utf8'));
      const record: TlogCheckpointRecord = { size: builder.size, root, note: signedNote(text, this.logKey.name, this.logKey.key.rawPublicKey, signature), signedAt: this.clock() };
      await tx.tlog.insertCheckpoint(record);
      return record;
    });
  }

  /** The hashes of a tile of the published tree (the latest checkpoint), or undefined when the tree has no such tile. */
  async tile(store: TlogReadStore, level: number, index: number, width: number): Promise<Buffer | undefined> {
    const size = (await store.tlog.latestCheckpoint())?.size ?? 0;
    if (width > tileWidth(size, level, index)) return undefined;
    const stored = await store.tlog.tile(level, index);
    if (!stored || stored.hashes.length < width * HASH_SIZE) return undefined;
    return stored.hashes.subarray(0, width * HASH_SIZE);
  }

  /** An entry bundle of the published tree: each entry a big-endian uint16 length and its bytes. */
  async entryBundle(store: TlogReadStore, index: number, width: number): Promise<Buffer | undefined> {
    const size = (await store.tlog.latestCheckpoint())?.size ?? 0;
    if (width > tileWidth(size, 0, index)) return undefined;
    const events = await store.audit.page(index * TILE_WIDTH, width);
    if (events.length !== width) return undefined;
    return Buffer.concat(events.flatMap((event) => {
      const bytes = entryBytes(event.canonical);
      // Events are refused above this size (registry/audit/audit-log.ts); one older than that cap cannot be bundled.
      if (bytes.length > 0xffff) throw new Error(`event ${event.seq} has ${bytes.length} bytes: more than an entry bundle can carry`);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length);
      return [length, bytes];
    }));
  }
}
