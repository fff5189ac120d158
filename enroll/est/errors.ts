import { DomainError, type DomainCode, type ErrorKind } from '../../errors/domain-error.ts';

/** An EST refusal (RFC 7030 4.2.3): a status code with a text/plain reason. */
export class EstError extends Error {
  override readonly name = 'EstError';
  constructor(readonly status: number, readonly reason: string, readonly headers: Record<string, string> = {}) {
    super(reason);
  }
}

const KINDS: Record<ErrorKind, number> = { malformed: 400, badCSR: 400, badPublicKey: 400, forbidden: 403, notFound: 404, conflict: 409, gone: 410 };

/** The registration authority's finer reasons: a device or certificate not allowed is 403, a lineage fork 409. */
const CODES: Record<DomainCode, number> = { rejectedIdentifier: 403, badAttestation: 403, alreadyReplaced: 409, basisChanged: 403 };

/** A domain error as EST answers it: the one place the EST front end maps them. */
export function domainEstError(err: DomainError): EstError {
  return new EstError(err.code ? CODES[err.code] : KINDS[err.kind], err.detail);
}
