import type { RequestHandler, Response } from 'express';
import type { Store } from '../../store/store.ts';
import type { Role, TokenRecord } from '../../store/types.ts';
import { authenticateToken } from '../tokens.ts';
import { PROBLEM, Problem, sendProblem } from './problem.ts';

/** The authenticated token of the request, set by requireRole. */
export function tokenOf(res: Response): TokenRecord {
  return res.locals.token as TokenRecord;
}

/** The audit actor for the request's token: its id, never the token. */
export function actorOf(res: Response): string {
  return `token:${tokenOf(res).id}`;
}

/**
 * Bearer-token authentication (SPEC section 3): 401 without a valid token,
 * 403 with a token of another role.
 */
export function requireRole(store: Store, ...roles: Role[]): RequestHandler {
  return async (req, res, next) => {
    const match = /^Bearer ([^\s]+)$/i.exec(req.get('authorization') ?? '');
    const token = match ? await authenticateToken(store, match[1]!) : undefined;
    if (!token) {
      res.set('WWW-Authenticate', 'Bearer realm="devid-ca"');
      return sendProblem(res, new Problem(401, PROBLEM.unauthorized, 'a valid bearer token is required'));
    }
    if (!roles.includes(token.role)) {
      return sendProblem(res, new Problem(403, PROBLEM.forbidden, `this endpoint is for role ${roles.join(' or ')}, not ${token.role}`));
    }
    res.locals.token = token;
    next();
  };
}
