import { DomainError, type DomainCode, type ErrorKind } from '../../errors/domain-error.ts';
import { isHsmUnavailable } from '../../hsm/errors.ts';
import { isDatabaseUnavailable } from '../../store/database.ts';
import { StoreNotFoundError } from '../../store/types.ts';

/** The ACME error types devid-ca answers with (RFC 8555 6.7, RFC 9773, draft-ietf-acme-device-attest). */
export type AcmeErrorType =
  | 'malformed' | 'badNonce' | 'badSignatureAlgorithm' | 'unauthorized' | 'accountDoesNotExist' | 'badCSR' | 'badPublicKey'
  | 'rejectedIdentifier' | 'unsupportedIdentifier' | 'orderNotReady' | 'alreadyRevoked' | 'badRevocationReason'
  | 'badAttestationStatement' | 'alreadyReplaced' | 'rateLimited' | 'serverInternal' | 'unavailable';

/** An ACME problem document (RFC 7807 with urn:ietf:params:acme:error:* types). */
export class AcmeProblem extends Error {
  override readonly name = 'AcmeProblem';
  constructor(
    readonly type: AcmeErrorType,
    readonly status: number,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  document(): Record<string, unknown> {
    const type = this.type === 'unavailable' ? 'urn:devid-ca:problem:unavailable' : `urn:ietf:params:acme:error:${this.type}`;
    return { ...this.extra, type, status: this.status, detail: this.detail };
  }
}

/** RFC 8555 6.6: 429 with the ACME rateLimited type and a Retry-After in seconds. */
export function rateLimited(detail: string, retryAfterSeconds: number): AcmeProblem {
  return new AcmeProblem('rateLimited', 429, detail, {}, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
}

export const acmeProblem = {
  malformed: (detail: string, status = 400) => new AcmeProblem('malformed', status, detail),
  notFound: (what: string) => new AcmeProblem('malformed', 404, `no such ${what}`),
  unauthorized: (detail: string) => new AcmeProblem('unauthorized', 403, detail),
  badNonce: () => new AcmeProblem('badNonce', 400, 'the nonce is unknown, used or expired; retry with the one in Replay-Nonce'),
  badSignatureAlgorithm: (algorithms: readonly string[]) =>
    new AcmeProblem('badSignatureAlgorithm', 400, `the JWS algorithm must be one of ${algorithms.join(', ')}`, { algorithms }),
  orderNotReady: (status: string) => new AcmeProblem('orderNotReady', 403, `the order is ${status}, not ready`),
};

const DOMAIN: Record<ErrorKind, { type: AcmeErrorType; status: number }> = {
  malformed: { type: 'malformed', status: 400 },
  badCSR: { type: 'badCSR', status: 400 },
  badPublicKey: { type: 'badPublicKey', status: 400 },
  forbidden: { type: 'unauthorized', status: 403 },
  notFound: { type: 'malformed', status: 404 },
  conflict: { type: 'malformed', status: 409 },
  gone: { type: 'malformed', status: 410 },
};

/** The registration authority's finer reasons (registry/enrollment/errors.ts), as ACME names them. */
const CODES: Record<DomainCode, { type: AcmeErrorType; status: number }> = {
  rejectedIdentifier: { type: 'rejectedIdentifier', status: 400 },
  badAttestation: { type: 'badAttestationStatement', status: 400 },
  alreadyReplaced: { type: 'alreadyReplaced', status: 409 },
  basisChanged: { type: 'unauthorized', status: 403 },
};

/** A domain error as an ACME problem: by its code when it has one, else by its kind. The one place the enrollment front end maps them. */
export function domainProblem(err: DomainError): AcmeProblem {
  const { type, status } = err.code ? CODES[err.code] : DOMAIN[err.kind];
  return new AcmeProblem(type, status, err.detail);
}

/**
 * The ACME surface's own error mapping: domain errors to ACME types; a
 * database or HSM that does not answer to 503; anything else to
 * serverInternal, whose detail says nothing of the cause (it is logged).
 */
export function toAcmeProblem(err: unknown): { problem: AcmeProblem; unexpected: boolean } {
  if (err instanceof AcmeProblem) return { problem: err, unexpected: false };
  if (err instanceof DomainError) return { problem: domainProblem(err), unexpected: false };
  if (err instanceof StoreNotFoundError) return { problem: new AcmeProblem('malformed', 404, err.message), unexpected: false };
  if (isDatabaseUnavailable(err) || isHsmUnavailable(err)) {
    return { problem: new AcmeProblem('unavailable', 503, 'the CA cannot answer right now; try again shortly', {}, { 'Retry-After': '5' }), unexpected: false };
  }
  return { problem: new AcmeProblem('serverInternal', 500, 'internal error; the event was logged'), unexpected: true };
}
