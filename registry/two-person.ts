import canonicalize from 'canonicalize';
import { sha256Hex } from '../ca/digest.ts';
import { malformed } from '../errors/domain-error.ts';

/**
 * Two-person approvals (docs/operators/manufacturers.md, docs/operators/firmware.md):
 * one operator proposes, another approves by naming the SHA-256 of the
 * proposal's RFC 8785 canonical JSON, so what is approved is what the
 * approver read, not something swapped in meanwhile.
 */
export function proposalHash(proposal: unknown): string {
  return sha256Hex(canonicalize(proposal)!);
}

/** The `proposal` an approval must name: 64 lowercase hex digits; `where` tells the approver where to read it. */
export function checkProposalHash(value: unknown, where: string): string {
  if (value === undefined) throw malformed(`proposal is required: the SHA-256 of the change being approved, ${where}`);
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw malformed(`proposal is the SHA-256 (64 lowercase hex digits) of the change being approved, ${where}`);
  return value;
}
