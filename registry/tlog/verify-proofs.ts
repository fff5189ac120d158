import { nodeHash, leafHash } from './merkle.ts';

/**
 * RFC 9162 section 2.1.3.2, step by step: whether `proof` (leaf side first)
 * proves `entry` at `index` in the tree of `size` leaves whose root is `root`.
 * What an auditor checks a device's proof with, offline.
 */
export function verifyInclusion(entry: Uint8Array, index: number, size: number, proof: readonly Buffer[], root: Buffer): boolean {
  if (index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash(entry);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/**
 * RFC 9162 section 2.1.4.2: whether `proof` proves that the tree of `first`
 * leaves (root `firstRoot`) is a prefix of the tree of `second` leaves (root
 * `secondRoot`). A tree of 0 leaves is a prefix of any tree, with an empty
 * proof (C2SP tlog-witness); equal sizes need equal roots and an empty proof.
 */
export function verifyConsistency(first: number, second: number, proof: readonly Buffer[], firstRoot: Buffer, secondRoot: Buffer): boolean {
  if (first < 0 || first > second) return false;
  if (first === 0) return proof.length === 0;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  if (proof.length === 0) return false;
  const path = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot);
}
