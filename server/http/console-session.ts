import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { sha256 } from '../../ca/digest.ts';
import type { AuditLog } from '../../registry/audit/audit-log.ts';
import type { AuthStore, ConsoleSessionStore } from '../../store/subsets.ts';
import type { ConsoleSessionRecord } from '../../store/session-store.ts';
import type { Role, TokenRecord } from '../../store/types.ts';
import { authenticateToken } from '../tokens.ts';
import { PROBLEM, Problem } from './problem.ts';

/**
 * Console sessions: an operator or auditor token is exchanged once for a
 * cookie, so the token never sits in the browser's storage. `__Host-` makes
 * the browser keep the cookie to this exact origin over HTTPS; HttpOnly keeps
 * it from scripts; SameSite=Strict keeps it off requests another site starts.
 * State-changing requests also carry the session's CSRF token in a header,
 * which a cross-site form cannot set, and must not come from another origin.
 */
export const SESSION_COOKIE = '__Host-devid-session';
export const CSRF_HEADER = 'x-csrf-token';
/** Short-lived: a console left open signs in again after this. */
export const SESSION_MS = 30 * 60 * 1000;
/** The roles that may use the console. */
export const CONSOLE_ROLES: readonly Role[] = ['operator', 'auditor'];
const SAFE_METHODS = new Set(['GET', 'HEAD']);

export interface OpenedSession {
  cookie: string;
  csrf: string;
  expiresAt: Date;
  token: TokenRecord;
}

export async function openSession(store: ConsoleSessionStore, audit: AuditLog, presented: string, now: Date): Promise<OpenedSession> {
  const token = await authenticateToken(store, presented);
  if (!token) throw new Problem(401, PROBLEM.unauthorized, 'that is not a valid token');
  if (!CONSOLE_ROLES.includes(token.role)) throw new Problem(403, PROBLEM.forbidden, `the console is for operator and auditor tokens, not ${token.role}`);
  const id = randomBytes(32).toString('base64url');
  const csrf = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + SESSION_MS);
  await audit.record(store, async (tx) => {
    await tx.sessions.deleteExpired(now);
    await tx.sessions.insert({ idSha256: sha256(id), tokenId: token.id, csrf, createdAt: now, expiresAt });
    return { value: undefined, events: [{ action: 'console.signed-in', actor: `token:${token.id}`, data: { principal: token.principal, role: token.role, expiresAt: expiresAt.toISOString() } }] };
  });
  const cookie = serializeCookie(SESSION_COOKIE, id, { path: '/', secure: true, httpOnly: true, sameSite: 'strict', expires: expiresAt });
  return { cookie, csrf, expiresAt, token };
}

/** The cookie that ends the session in the browser. */
export const CLEARED_COOKIE = serializeCookie(SESSION_COOKIE, '', { path: '/', secure: true, httpOnly: true, sameSite: 'strict', expires: new Date(0) });

export function sessionIdOf(headers: IncomingHttpHeaders): string | undefined {
  const header = headers.cookie;
  if (!header || header.length > 8192) return undefined;
  const value = parseCookies(header)[SESSION_COOKIE];
  return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}

export async function sessionFor(store: Pick<AuthStore, 'sessions'>, headers: IncomingHttpHeaders, now: Date): Promise<{ session: ConsoleSessionRecord; token: TokenRecord } | undefined> {
  const id = sessionIdOf(headers);
  return id ? store.sessions.live(sha256(id), now) : undefined;
}

/**
 * Cross-site request forgery: a state-changing request under a session
 * cookie must carry the session's CSRF token and, when the browser says where
 * it comes from, come from this origin. Throws a 403 problem otherwise.
 */
export function checkCsrf(method: string, headers: IncomingHttpHeaders, session: ConsoleSessionRecord): void {
  if (SAFE_METHODS.has(method)) return;
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new Problem(403, PROBLEM.forbidden, `a console action must come from the console itself, not from a ${String(site)} page`);
  const origin = headers.origin;
  if (origin !== undefined && origin !== `https://${headers.host ?? ''}`) throw new Problem(403, PROBLEM.forbidden, 'a console action must come from the console\'s own origin');
  const presented = Buffer.from(String(headers[CSRF_HEADER] ?? ''));
  const expected = Buffer.from(session.csrf);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new Problem(403, PROBLEM.forbidden, `a console action needs the session's CSRF token in the ${CSRF_HEADER} header`);
  }
}
