import type { IncomingMessage, ServerResponse } from 'node:http';
import { accountOrders, accountUpdate, newAccount } from './account.ts';
import { authorizationPost } from './authorization.ts';
import { certificateGet } from './certificate.ts';
import { challengePost } from './challenge.ts';
import type { AcmeDeps, AcmeHandler, AcmeReply } from './context.ts';
import { directory } from './directory.ts';
import { finalize } from './finalize.ts';
import { parseJws, verifyJws, type KeySource, type VerifiedJws } from './jws.ts';
import { keyChange } from './key-change.ts';
import { MemoryNonces, databaseNonces, newNonce, newNonceGet, newNonceValue, type NonceBook } from './nonce.ts';
import { newOrder, orderGet } from './order.ts';
import { AcmeProblem, acmeProblem, rateLimited, toAcmeProblem } from './problems.ts';
import { renewalInfo } from './renewal-info.ts';
import { revokeCert } from './revocation.ts';
import { AcmeUrls } from './urls.ts';
import { BodyTooLarge, readBody } from '../../platform/read-body.ts';

/** ACME requests are a JWS around a CSR or an attestation object at most. */
const BODY_LIMIT = 64 * 1024;

interface Route {
  method: 'GET' | 'HEAD' | 'POST';
  pattern: RegExp;
  handler: AcmeHandler;
  /** POST: which key signs (RFC 8555 6.2). */
  source?: KeySource;
}

const ID = '(?<id>[A-Za-z0-9_-]{1,64})';
const route = (method: Route['method'], path: string, handler: AcmeHandler, source?: KeySource): Route =>
  ({ method, pattern: new RegExp(`^/acme/${path}$`), handler, ...(source ? { source } : {}) });

/** Every ACME resource (one file each), with the method and key it takes. */
const ROUTES: Route[] = [
  route('GET', 'directory', directory),
  route('HEAD', 'new-nonce', newNonce),
  route('GET', 'new-nonce', newNonceGet),
  route('POST', 'new-account', newAccount, 'jwk'),
  route('POST', `acct/${ID}`, accountUpdate, 'kid'),
  route('POST', `acct/${ID}/orders`, accountOrders, 'kid'),
  route('POST', 'new-order', newOrder, 'kid'),
  route('POST', `order/${ID}`, orderGet, 'kid'),
  route('POST', `order/${ID}/finalize`, finalize, 'kid'),
  route('POST', `authz/${ID}`, authorizationPost, 'kid'),
  route('POST', `chall/${ID}`, challengePost, 'kid'),
  route('POST', 'cert/(?<serial>[0-9a-f]{2,64})', certificateGet, 'kid'),
  route('POST', 'revoke-cert', revokeCert, 'jwk-or-kid'),
  route('POST', 'key-change', keyChange, 'kid'),
  route('GET', 'renewal-info/(?<certId>[A-Za-z0-9_.-]{1,256})', renewalInfo),
];

/** host[:port], a DNS name or an IP literal: the base of every URL we hand out. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The ACME front end on plain node:https (express costs more than the work
 * on these paths, docs/developers/architecture.md): routing, the JWS checks, nonces, and RFC
 * 8555's headers on every answer (Replay-Nonce, Link rel="index", Location,
 * problem documents with urn:ietf:params:acme:error types). Other paths go
 * to the express app.
 */
export class AcmeFrontEnd {
  /** In memory where this process is the database's only user (PGlite), else in the database, for every process on it. */
  private readonly nonces: NonceBook;

  constructor(private readonly deps: AcmeDeps) {
    this.nonces = deps.store.singleConnection ? new MemoryNonces(deps.store) : databaseNonces(deps.store);
  }

  handles(url: string | undefined): boolean {
    return url !== undefined && (url === '/acme' || url.startsWith('/acme/'));
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { deps } = this;
    const now = deps.clock();
    const host = req.headers.host ?? '';
    const urls = new AcmeUrls(`https://${HOST.test(host) ? host : deps.identity.publicHost}`);
    let nonce: string | undefined;
    let reply: AcmeReply;
    let anonymousRefused = false;
    try {
      if (!HOST.test(host)) throw acmeProblem.malformed('the Host header is not a host name');
      const path = (req.url ?? '').split('?')[0]!;
      const candidates = ROUTES.filter((r) => r.pattern.test(path));
      const matched = candidates.find((r) => r.method === req.method);
      if (!matched) {
        if (candidates.length === 0) throw acmeProblem.notFound(`ACME resource ${path.slice(0, 100)}`);
        throw new AcmeProblem('malformed', 405, `use ${candidates.map((r) => r.method).join(' or ')}`, {}, { Allow: candidates.map((r) => r.method).join(', ') });
      }
      const params = { ...matched.pattern.exec(path)!.groups } as Record<string, string>;
      // A nonce asked for, or an account made, by a client that has proved nothing: each is kept (a row, or memory on PGlite), so each costs a token.
      if (matched.handler === newNonce || matched.handler === newNonceGet || matched.handler === newAccount) {
        const granted = deps.anonymousLimit.take(req.socket.remoteAddress, now.getTime());
        if (!granted.ok) {
          anonymousRefused = true;
          throw rateLimited('too many new nonces or accounts from this address; retry later', granted.retryAfterSeconds);
        }
      }
      let jws: VerifiedJws | undefined;
      if (matched.method === 'POST') {
        if (req.headers['content-type'] !== 'application/jose+json') throw new AcmeProblem('malformed', 415, 'ACME requests are application/jose+json');
        if ((req.headers['content-encoding'] ?? 'identity') !== 'identity') throw new AcmeProblem('malformed', 415, 'ACME requests are not content-encoded');
        const body = await readBody(req, BODY_LIMIT);
        const parsed = await parseJws(body, `${urls.base}${req.url}`, matched.source!, urls);
        nonce = newNonceValue();
        // An over-long nonce is none of ours: nothing is redeemed, but the next nonce is still issued.
        const presented = parsed.header.nonce.length <= 64 ? parsed.header.nonce : '';
        const redeemed = await this.nonces.redeem(presented, nonce, now, parsed.accountId ?? null);
        if (!redeemed.fresh) throw acmeProblem.badNonce();
        jws = await verifyJws(parsed, redeemed.account);
      }
      reply = await matched.handler({ deps, urls, params, ...(jws ? { jws } : {}), now });
    } catch (err) {
      if (err instanceof BodyTooLarge) err = new AcmeProblem('malformed', 413, `ACME requests are at most ${BODY_LIMIT} bytes`);
      const { problem, unexpected } = toAcmeProblem(err);
      if (unexpected) deps.logger.error({ err, method: req.method, path: req.url }, 'ACME request failed');
      reply = { status: problem.status, body: problem.document(), headers: problem.headers, problem: true };
      deps.onProblem?.(problem.type);
    }
    // An answer that redeemed no nonce hands out a new one only within the client's budget (a rate-limited one gets none).
    const fresh = nonce ?? (!anonymousRefused && this.mayHandOutNonce(req, now) ? await this.freshNonce(now) : undefined);
    await this.write(res, req.method === 'HEAD', urls, reply, fresh);
  }

  /** newNonce and newAccount took their token already; other answers (GETs, refused JWSs) take one here. */
  private mayHandOutNonce(req: IncomingMessage, now: Date): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/acme/new-nonce' || path === '/acme/new-account') return true;
    return this.deps.anonymousLimit.take(req.socket.remoteAddress, now.getTime()).ok;
  }

  /** A nonce for an answer that redeemed none (GET, HEAD, a refused JWS); omitted when the database does not answer. */
  private async freshNonce(now: Date): Promise<string | undefined> {
    const value = newNonceValue();
    try {
      await this.nonces.issue(value, now);
      return value;
    } catch {
      return undefined;
    }
  }

  private async write(res: ServerResponse, head: boolean, urls: AcmeUrls, reply: AcmeReply, nonce: string | undefined): Promise<void> {
    const links = [`<${urls.directory}>;rel="index"`, ...(reply.links ?? []).map((l) => `<${l.url}>;rel="${l.rel}"`)];
    const headers: Record<string, string | string[]> = { 'Cache-Control': 'no-store', Link: links, ...reply.headers };
    if (nonce) headers['Replay-Nonce'] = nonce;
    if (reply.location) headers.Location = reply.location;
    let body: string | undefined;
    if (reply.raw) {
      headers['Content-Type'] = reply.raw.contentType;
      body = reply.raw.text;
    } else if (reply.body !== undefined) {
      headers['Content-Type'] = reply.problem ? 'application/problem+json' : 'application/json';
      body = JSON.stringify(reply.body);
    }
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(reply.status, headers);
    res.end(head ? undefined : body);
  }
}
