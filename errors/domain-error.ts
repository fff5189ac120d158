/**
 * Typed errors that cross components (after Boulder's errors/errors.go). The
 * detail is written for the client; server/problem.ts maps each kind to an
 * HTTP status and problem type in one place.
 */
export type ErrorKind = 'malformed' | 'badCSR' | 'badPublicKey' | 'forbidden' | 'notFound' | 'conflict' | 'gone';

/**
 * A finer reason within a kind, for surfaces that have a word for it (the
 * enrollment front ends: ACME maps each code to its own problem type in
 * enroll/acme/problems.ts); surfaces without one answer by the kind.
 * - rejectedIdentifier: the device named may not enroll or renew now (unknown, a state that may not enroll, no live birth certificate);
 * - badAttestation: an attestation failed a check (the detail names the check);
 * - alreadyReplaced: the certificate an enrollment would succeed already has, or is claimed for, a successor (a lineage fork);
 * - basisChanged: what an accepted attestation rested on changed before issuance (attest again).
 */
export type DomainCode = 'rejectedIdentifier' | 'badAttestation' | 'alreadyReplaced' | 'basisChanged';

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly kind: ErrorKind,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly code?: DomainCode,
  ) {
    super(detail);
  }
}

export const malformed = (detail: string) => new DomainError('malformed', detail);
export const conflict = (detail: string, extra?: Record<string, unknown>) => new DomainError('conflict', detail, extra);
export const notFound = (detail: string) => new DomainError('notFound', detail);
export const forbidden = (detail: string) => new DomainError('forbidden', detail);
/** A resource retired for good (a model's firmware allowlist after its legacy cut-off): 410. */
export const gone = (detail: string) => new DomainError('gone', detail);
