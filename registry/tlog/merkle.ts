import { createHash } from 'node:crypto';

/** RFC 6962 section 2.1 (RFC 9162 section 2.1.1): the hash of an empty tree, SHA-256 of nothing. */
export const EMPTY_ROOT = createHash('sha256').digest();

/** RFC 9162 section 2.1.1: leaf = SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(0)).update(entry).digest();
}

/** RFC 9162 section 2.1.1: node = SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(1)).update(left).update(right).digest();
}

/** The root of a perfect subtree: `hashes` are its 2^k nodes of one level, left to right. */
export function perfectRoot(hashes: readonly Buffer[]): Buffer {
  if (hashes.length === 0 || (hashes.length & (hashes.length - 1)) !== 0) throw new Error(`a perfect subtree has 2^k nodes, not ${hashes.length}`);
  let level = hashes;
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    level = next;
  }
  return level[0]!;
}

/**
 * The root of a tree from its perfect subtrees, left to right (largest first,
 * as the binary digits of its size): RFC 9162's MTH splits at the largest
 * power of two, so the subtrees fold from the right.
 */
export function rootFromSubtrees(subtrees: readonly Buffer[]): Buffer {
  if (subtrees.length === 0) return EMPTY_ROOT;
  let root = subtrees[subtrees.length - 1]!;
  for (let i = subtrees.length - 2; i >= 0; i -= 1) root = nodeHash(subtrees[i]!, root);
  return root;
}

/** RFC 9162's MTH over every leaf, by its recursive definition: the reference tests compare the tiles with. */
export function referenceRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  let split = 1;
  while (split * 2 < leaves.length) split *= 2;
  return nodeHash(referenceRoot(leaves.slice(0, split)), referenceRoot(leaves.slice(split)));
}
