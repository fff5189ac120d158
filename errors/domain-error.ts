/**
 * Typed errors that cross components (after Boulder's errors/errors.go). The
 * detail is written for the client; server/problem.ts maps each kind to an
 * HTTP status and problem type in one place.
 */
export type ErrorKind = 'malformed' | 'badCSR' | 'badPublicKey' | 'forbidden' | 'notFound' | 'conflict';

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly kind: ErrorKind,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

export const malformed = (detail: string) => new DomainError('malformed', detail);
export const conflict = (detail: string, extra?: Record<string, unknown>) => new DomainError('conflict', detail, extra);
export const notFound = (detail: string) => new DomainError('notFound', detail);
export const forbidden = (detail: string) => new DomainError('forbidden', detail);
