import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { DomainError, type ErrorKind } from '../../errors/domain-error.ts';
import { isHsmUnavailable } from '../../hsm/errors.ts';
import { isDatabaseUnavailable } from '../../store/database.ts';
import { StoreConflictError, StoreNotFoundError } from '../../store/types.ts';
import type { Logger } from '../../platform/logger.ts';
import { PROBLEM } from '../../platform/problem-types.ts';

export { PROBLEM };


const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 410: 'Gone', 413: 'Content Too Large', 415: 'Unsupported Media Type', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** An error meant for the client: its detail is sent as it is. */
export class Problem extends Error {
  override readonly name = 'Problem';
  constructor(
    readonly status: number,
    readonly type: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

/** The JSON body of a problem document; `extra` adds members but never replaces type, title, status or detail. */
export function problemDocument(problem: Problem): Record<string, unknown> {
  return { ...problem.extra, type: problem.type, title: TITLES[problem.status] ?? 'Error', status: problem.status, detail: problem.detail };
}

export function sendProblem(res: Response, problem: Problem): void {
  res.set(problem.headers).status(problem.status).type('application/problem+json').json(problemDocument(problem));
}

/** Maps what a surface knows (its domain errors) to a problem; undefined hands the error on to the shared rules. */
export type ProblemMapper = (err: unknown) => Problem | undefined;

/** The role APIs' table from domain error kind to HTTP status and problem type. */
const DOMAIN: Record<ErrorKind, { status: number; type: string }> = {
  malformed: { status: 400, type: PROBLEM.malformed },
  badCSR: { status: 400, type: PROBLEM.badCSR },
  badPublicKey: { status: 400, type: PROBLEM.badPublicKey },
  forbidden: { status: 403, type: PROBLEM.forbidden },
  notFound: { status: 404, type: PROBLEM.notFound },
  conflict: { status: 409, type: PROBLEM.conflict },
  gone: { status: 410, type: PROBLEM.gone },
};

export const devidProblems: ProblemMapper = (err) => {
  if (err instanceof Problem) return err;
  if (err instanceof StoreNotFoundError) return new Problem(404, PROBLEM.notFound, err.message);
  // A unique constraint that refused a racing write (a second claim of one device, one birth key): the other request won.
  if (err instanceof StoreConflictError) return new Problem(409, PROBLEM.conflict, err.message);
  if (!(err instanceof DomainError)) return undefined;
  const { status, type } = DOMAIN[err.kind];
  return new Problem(status, type, err.detail, err.extra);
};

/** The client-error statuses node and body-parser raise, with the devid-ca type and a detail that names no internals. */
const CLIENT_ERRORS: Record<number, { type: string; detail: string }> = {
  400: { type: PROBLEM.malformed, detail: 'the request is malformed (its body, its encoding or its path)' },
  404: { type: PROBLEM.notFound, detail: 'no such resource' },
  413: { type: PROBLEM.tooLarge, detail: 'the request body is larger than this endpoint accepts' },
  415: { type: PROBLEM.unsupportedMediaType, detail: 'unsupported request body encoding or character set' },
};

/**
 * Rules every surface shares, after its own mapper: body-parser and router
 * errors (a corrupt gzip body, a bad percent-encoding, a body that is not
 * JSON) become 4xx problems; a database or HSM that does not answer becomes
 * 503 with Retry-After; anything else is logged and becomes a bare 500 that
 * says nothing of the cause (after Boulder's web/probs.go).
 */
export function toProblem(err: unknown, own: ProblemMapper, logger: Logger, context: Record<string, unknown>): Problem {
  const mapped = own(err);
  if (mapped) return mapped;
  if (isDatabaseUnavailable(err) || isHsmUnavailable(err)) {
    logger.warn({ err, ...context }, 'dependency unavailable');
    const what = isHsmUnavailable(err) ? 'HSM' : 'database';
    return new Problem(503, PROBLEM.unavailable, `the CA's ${what} does not answer; try again shortly`, {}, { 'Retry-After': '5' });
  }
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if ((err as { type?: string }).type === 'entity.parse.failed') return new Problem(400, PROBLEM.malformed, 'the request body is not valid JSON');
    const known = CLIENT_ERRORS[status] ?? CLIENT_ERRORS[400]!;
    return new Problem(CLIENT_ERRORS[status] ? status : 400, known.type, known.detail);
  }
  logger.error({ err, ...context }, 'request failed');
  return new Problem(500, PROBLEM.internal, 'internal error; the event was logged');
}

/** An error handler for one router (or app), with that surface's mapper. */
export function problemHandler(logger: Logger, own: ProblemMapper = devidProblems): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return void res.end();
    sendProblem(res, toProblem(err, own, logger, { method: req.method, path: req.path }));
  };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, new Problem(404, PROBLEM.notFound, `no resource at ${req.method} ${req.path}`));
};
