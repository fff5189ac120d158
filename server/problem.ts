import type { ErrorRequestHandler, RequestHandler } from 'express';
import { DomainError, malformed, notFound, type ErrorKind } from '../errors/domain-error.ts';
import type { Logger } from './logger.ts';

/** RFC 7807 problem types of the devid-ca HTTP APIs (ACME has its own urns). */
export const PROBLEM = {
  malformed: 'urn:devid-ca:problem:malformed',
  badCSR: 'urn:devid-ca:problem:bad-csr',
  badPublicKey: 'urn:devid-ca:problem:bad-public-key',
  unauthorized: 'urn:devid-ca:problem:unauthorized',
  forbidden: 'urn:devid-ca:problem:forbidden',
  notFound: 'urn:devid-ca:problem:not-found',
  conflict: 'urn:devid-ca:problem:conflict',
  tooLarge: 'urn:devid-ca:problem:request-too-large',
  unsupportedMediaType: 'urn:devid-ca:problem:unsupported-media-type',
  internal: 'urn:devid-ca:problem:internal',
} as const;

/** One table from domain error kind to HTTP status and problem type. */
const DOMAIN: Record<ErrorKind, { status: number; type: string }> = {
  malformed: { status: 400, type: PROBLEM.malformed },
  badCSR: { status: 400, type: PROBLEM.badCSR },
  badPublicKey: { status: 400, type: PROBLEM.badPublicKey },
  forbidden: { status: 403, type: PROBLEM.forbidden },
  notFound: { status: 404, type: PROBLEM.notFound },
  conflict: { status: 409, type: PROBLEM.conflict },
};

export function fromDomainError(err: DomainError): Problem {
  const { status, type } = DOMAIN[err.kind];
  return new Problem(status, type, err.detail, err.extra);
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 500: 'Internal Server Error',
};

/** An error meant for the client: its detail is sent as it is. */
export class Problem extends Error {
  override readonly name = 'Problem';
  constructor(
    readonly status: number,
    readonly type: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}


/** The JSON body of a problem document. */
export function problemDocument(problem: Problem): Record<string, unknown> {
  return { type: problem.type, title: TITLES[problem.status] ?? 'Error', status: problem.status, detail: problem.detail, ...problem.extra };
}

export function sendProblem(res: Parameters<RequestHandler>[1], problem: Problem): void {
  res.status(problem.status).type('application/problem+json').json(problemDocument(problem));
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, fromDomainError(notFound(`no resource at ${req.method} ${req.path}`)));
};

/**
 * The problem for any error. Body-parser failures become 400/413/415;
 * anything unexpected is logged and becomes a bare 500 whose detail says
 * nothing of the cause (after Boulder's web/probs.go).
 */
export function toProblem(err: unknown, logger: Logger, context: Record<string, unknown>): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof DomainError) return fromDomainError(err);
  const bodyError = err as { type?: string };
  if (bodyError.type === 'entity.too.large') return new Problem(413, PROBLEM.tooLarge, 'the request body is larger than this endpoint accepts');
  if (bodyError.type === 'entity.parse.failed') return fromDomainError(malformed('the request body is not valid JSON'));
  if (bodyError.type === 'encoding.unsupported' || bodyError.type === 'charset.unsupported') {
    return new Problem(415, PROBLEM.unsupportedMediaType, 'unsupported request encoding');
  }
  logger.error({ err, ...context }, 'request failed');
  return new Problem(500, PROBLEM.internal, 'internal error; the event was logged');
}

export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    sendProblem(res, toProblem(err, logger, { method: req.method, path: req.path }));
  };
}
