import type { RequestHandler, Response } from 'express';
import type { AuthStore } from '../../store/subsets.ts';
import type { Role, TokenRecord } from '../../store/types.ts';
import { authenticateToken } from '../tokens.ts';
import { checkCsrf, sessionFor } from './console-session.ts';
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
 * Authentication (docs/operators/tokens-and-roles.md): a bearer token, or a console session
 * cookie (server/http/console-session.ts) whose state-changing requests must
 * pass the CSRF check. 401 without either, 403 with another role's.
 */
export function requireRole(store: AuthStore, ...roles: Role[]): RequestHandler {
  return async (req, res, next) => {
    const authorization = req.get('authorization');
    let token: TokenRecord | undefined;
    if (authorization !== undefined) {
      const match = /^Bearer ([^\s]+)$/i.exec(authorization);
      token = match ? await authenticateToken(store, match[1]!) : undefined;
    } else {
      const found = await sessionFor(store, req.headers, new Date());
      if (found) {
        try {
          checkCsrf(req.method, req.headers, found.session);
        } catch (err) {
          return sendProblem(res, err as Problem);
        }
        token = found.token;
      }
    }
    if (!token) {
      res.set('WWW-Authenticate', 'Bearer realm="devid-ca"');
      return sendProblem(res, new Problem(401, PROBLEM.unauthorized, 'a valid bearer token (or console session) is required'));
    }
    if (!roles.includes(token.role)) {
      return sendProblem(res, new Problem(403, PROBLEM.forbidden, `this endpoint is for role ${roles.join(' or ')}, not ${token.role}`));
    }
    res.locals.token = token;
    next();
  };
}
