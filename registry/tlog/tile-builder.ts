import { perfectRoot, rootFromSubtrees } from './merkle.ts';

/** tlog-tiles: a tile holds 2^8 hashes of one level of its own (tree level 8·L). */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 1 << TILE_HEIGHT;
export const HASH_SIZE = 32;

/** One tile: `hashes` are its first `hashes.length` entries (a partial tile when fewer than 256). */
export interface Tile {
  level: number;
  index: number;
  hashes: Buffer[];
}

/**
 * The right edge of a tree in tiles: at each tile level the last, partial
 * tile (which may be empty). Appending leaf hashes fills the level-0 tile;
 * a full tile is handed to `onFull` and its root becomes the next hash of
 * the level above. Enough to extend the stored tiles and to compute the root
 * at the current size without reading anything else.
 */
export class TileBuilder {
  private readonly edge: Tile[];

  /** `edge`: the last partial tile of each level, from level 0 up (empty for a new tree). */
  constructor(edge: readonly Tile[] = [], private readonly onFull: (tile: Tile) => void = () => {}) {
    this.edge = edge.map((t) => ({ level: t.level, index: t.index, hashes: [...t.hashes] }));
    if (this.edge.length === 0) this.edge.push({ level: 0, index: 0, hashes: [] });
    this.edge.forEach((tile, level) => {
      if (tile.level !== level || tile.hashes.length >= TILE_WIDTH) throw new Error(`the right edge at level ${level} is not a partial tile of that level`);
    });
  }

  /** Leaves so far. */
  get size(): number {
    return this.edge[0]!.index * TILE_WIDTH + this.edge[0]!.hashes.length;
  }

  /** The partial tiles, level 0 first; those with no hash are left out. */
  partialTiles(): Tile[] {
    return this.edge.filter((t) => t.hashes.length > 0).map((t) => ({ ...t, hashes: [...t.hashes] }));
  }

  appendLeaf(hash: Buffer): void {
    this.append(0, hash);
  }

  private append(level: number, hash: Buffer): void {
    const tile = this.edge[level] ??= { level, index: 0, hashes: [] };
    tile.hashes.push(hash);
    if (tile.hashes.length < TILE_WIDTH) return;
    this.onFull({ level, index: tile.index, hashes: tile.hashes });
    this.edge[level] = { level, index: tile.index + 1, hashes: [] };
    this.append(level + 1, perfectRoot(tile.hashes));
  }

  /**
   * The root at the current size. The size's base-256 digits are the widths
   * of the partial tiles; each width's binary digits are the perfect
   * subtrees within that tile, largest (leftmost) first.
   */
  root(): Buffer {
    const subtrees: Buffer[] = [];
    for (let level = this.edge.length - 1; level >= 0; level -= 1) {
      const hashes = this.edge[level]!.hashes;
      let start = 0;
      for (let bit = TILE_HEIGHT - 1; bit >= 0; bit -= 1) {
        const span = 1 << bit;
        if ((hashes.length & span) === 0) continue;
        subtrees.push(perfectRoot(hashes.slice(start, start + span)));
        start += span;
      }
    }
    return rootFromSubtrees(subtrees);
  }
}

/** The width of tile `index` of `level` in a tree of `size` leaves: 0 when the tree has no hash of it yet. */
export function tileWidth(size: number, level: number, index: number): number {
  const count = Math.floor(size / TILE_WIDTH ** level);
  return Math.max(0, Math.min(TILE_WIDTH, count - index * TILE_WIDTH));
}
