import type { TlogStore } from '../../store/tlog-store.ts';
import { perfectRoot, nodeHash } from './merkle.ts';
import { HASH_SIZE, TILE_HEIGHT, TILE_WIDTH } from './tile-builder.ts';
import { splitHashes } from './transparency-log.ts';

/**
 * Hashes of the stored tree, read from its tiles (a tile is read once per
 * reader). A complete subtree's hash never changes as the tree grows, so
 * tiles stored past a checkpoint's size serve its proofs unchanged.
 */
export class StoredTree {
  private readonly tiles = new Map<string, Buffer[]>();

  constructor(private readonly store: { tlog: Pick<TlogStore, 'tile'> }) {}

  /** The hash of the perfect subtree of height `height` at position `index` (leaves index·2^height onwards). */
  async subtree(height: number, index: number): Promise<Buffer> {
    const level = Math.floor(height / TILE_HEIGHT);
    const span = 2 ** (height - level * TILE_HEIGHT);
    const first = index * span;
    const tileIndex = Math.floor(first / TILE_WIDTH);
    const hashes = await this.tile(level, tileIndex);
    const start = first - tileIndex * TILE_WIDTH;
    if (hashes.length < start + span) throw new Error(`the stored tile ${level}/${tileIndex} lacks the hashes of subtree ${height}/${index}`);
    return span === 1 ? hashes[start]! : perfectRoot(hashes.slice(start, start + span));
  }

  /** RFC 9162 MTH of leaves [start, end): perfect subtrees, split as the RFC splits. */
  async rangeHash(start: number, end: number): Promise<Buffer> {
    const count = end - start;
    if ((count & (count - 1)) === 0 && start % count === 0) return this.subtree(Math.log2(count), start / count);
    const split = largestPowerOfTwoBelow(count);
    return nodeHash(await this.rangeHash(start, start + split), await this.rangeHash(start + split, end));
  }

  /** RFC 9162 section 2.1.3.1 PATH(m, D[start:end]): the inclusion proof of leaf `index`, leaf side first. */
  async inclusionProof(index: number, size: number, start = 0): Promise<Buffer[]> {
    const count = size - start;
    if (index < start || index >= size) throw new RangeError(`leaf ${index} is not in [${start}, ${size})`);
    if (count === 1) return [];
    const split = largestPowerOfTwoBelow(count);
    return index < start + split
      ? [...(await this.inclusionProof(index, start + split, start)), await this.rangeHash(start + split, size)]
      : [...(await this.inclusionProof(index, size, start + split)), await this.rangeHash(start, start + split)];
  }

  /**
   * RFC 9162 section 2.1.4.1 PROOF(m, D[n]): the consistency proof from the
   * tree of `first` leaves to the tree of `second` (empty when first is 0 or
   * equal to second), what a witness checks before it cosigns.
   */
  async consistencyProof(first: number, second: number): Promise<Buffer[]> {
    if (first < 0 || first > second) throw new RangeError(`no consistency proof from ${first} to ${second}`);
    if (first === 0 || first === second) return [];
    return this.subproof(first, 0, second, true);
  }

  /** SUBPROOF(m, D[start:end], b) of RFC 9162 section 2.1.4.1. */
  private async subproof(m: number, start: number, end: number, whole: boolean): Promise<Buffer[]> {
    const count = end - start;
    if (m === count) return whole ? [] : [await this.rangeHash(start, end)];
    const split = largestPowerOfTwoBelow(count);
    return m <= split
      ? [...(await this.subproof(m, start, start + split, whole)), await this.rangeHash(start + split, end)]
      : [...(await this.subproof(m - split, start + split, end, false)), await this.rangeHash(start, start + split)];
  }

  private async tile(level: number, index: number): Promise<Buffer[]> {
    const key = `${level}/${index}`;
    let hashes = this.tiles.get(key);
    if (!hashes) {
      const stored = await this.store.tlog.tile(level, index);
      hashes = stored ? splitHashes(stored.hashes) : [];
      if (stored && stored.hashes.length % HASH_SIZE !== 0) throw new Error(`the stored tile ${key} is not a whole number of hashes`);
      this.tiles.set(key, hashes);
    }
    return hashes;
  }
}

/** The largest power of two smaller than n (n > 1): where RFC 9162 splits a tree of n leaves. */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
