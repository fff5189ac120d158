import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isHsmUnavailable } from '../../hsm/errors.ts';
import { BodyTooLarge, readBody } from '../../platform/read-body.ts';
import { NAME_PATTERN } from '../../registry/identifiers.ts';
import { isDatabaseUnavailable } from '../../store/database.ts';
import { certsOnly } from './cms.ts';
import { csrAttrs } from './csrattrs.ts';
import type { EstDeps } from './deps.ts';
import { clientCertificate, enroll, type EnrollOperation } from './enroll.ts';
import { EstError } from './errors.ts';
import { gatewayNonce } from './nonce.ts';

/** The base of every EST path (RFC 7030 3.2.2). */
export const EST_BASE = '/.well-known/est/';

/** A base64 PKCS#10 of at most 16 KiB (pki/csr.ts) with line breaks fits; more is no device CSR. */
const BODY_LIMIT = 32 * 1024;

const OPERATIONS = { cacerts: 'GET', csrattrs: 'GET', simpleenroll: 'POST', simplereenroll: 'POST', nonce: 'POST' } as const;
type Operation = keyof typeof OPERATIONS;

/** `<operation>` or `<label>/<operation>`: the label is a device class name. */
const PATH = /^\/\.well-known\/est\/(?:(?<label>[^/]{1,128})\/)?(?<operation>[a-z]{1,32})$/;

/**
 * EST (RFC 7030) on the HTTPS listener, plain node:https as ACME: cacerts
 * and csrattrs for anyone, simpleenroll and simplereenroll for a device
 * with its TLS client certificate (enroll.ts). Every refusal is a status
 * with a text/plain reason (4.2.3); a database or HSM that does not answer
 * is a 503, anything unexpected a 500 whose cause is only logged.
 */
export class EstFrontEnd {
  constructor(private readonly deps: EstDeps) {}

  handles(url: string | undefined): boolean {
    return url !== undefined && (url === '/.well-known/est' || url.startsWith(EST_BASE));
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const { status, type, body } = await this.answer(req);
      // RFC 7030 4.1.3 names it; RFC 8951 3 says HTTP ignores it: sent for the clients that look.
      write(res, status, type, body, req.method === 'HEAD', type === 'application/json' ? {} : { 'Content-Transfer-Encoding': 'base64' });
    } catch (err) {
      const refusal = this.refusal(err, req);
      // An unread body is drained so the connection's next request is not read from it.
      if (!req.readableEnded) req.resume();
      write(res, refusal.status, 'text/plain; charset=utf-8', `${refusal.reason}\n`, req.method === 'HEAD', refusal.headers);
    }
  }

  private async answer(req: IncomingMessage): Promise<{ status: number; type: string; body: string }> {
    const path = (req.url ?? '').split('?')[0]!;
    const match = PATH.exec(path);
    const operation = match?.groups!.operation as Operation | undefined;
    if (!match || !operation || !Object.hasOwn(OPERATIONS, operation)) throw new EstError(404, 'no such EST operation: this CA offers cacerts, csrattrs, simpleenroll, simplereenroll and nonce');
    const label = match.groups!.label;
    if (label !== undefined) await this.checkLabel(label);
    const method = OPERATIONS[operation];
    if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) throw new EstError(405, `${operation} takes ${method}`, { Allow: method === 'GET' ? 'GET, HEAD' : method });
    if (operation === 'cacerts') return { status: 200, type: 'application/pkcs7-mime', body: this.caCerts() };
    if (operation === 'csrattrs') return { status: 200, type: 'application/csrattrs', body: csrAttrs() };
    // Authenticated first: a client without a certificate learns nothing about its body.
    const socket = req.socket as TLSSocket;
    if (operation === 'nonce') return { status: 200, type: 'application/json', body: await gatewayNonce(this.deps, req, clientCertificate(socket, 'nonce'), label) };
    const client = clientCertificate(socket, operation as EnrollOperation);
    const der = await pkcs10Body(req);
    const issued = await enroll(this.deps, socket, operation as EnrollOperation, client, der, label);
    return { status: 200, type: 'application/pkcs7-mime; smime-type=certs-only', body: issued };
  }

  /** A label names a device class that allows EST. */
  private async checkLabel(label: string): Promise<void> {
    if (!NAME_PATTERN.test(label)) throw new EstError(404, 'the EST label must be a device class name');
    const deviceClass = await this.deps.store.deviceClasses.find(label);
    if (!deviceClass) throw new EstError(404, `no device class ${label}`);
    if (!deviceClass.est) throw new EstError(403, `device class ${label} does not allow EST enrollment`);
  }

  /** RFC 7030 4.1.3: the operational intermediate that signs enrollments, and the root (the trust anchor). */
  private caCerts(): string {
    const { hierarchy } = this.deps;
    return certsOnly([hierarchy.operational.record.der, hierarchy.root.record.der]);
  }

  private refusal(err: unknown, req: IncomingMessage): EstError {
    if (err instanceof EstError) return err;
    if (err instanceof BodyTooLarge) return new EstError(413, `an EST request body is at most ${BODY_LIMIT} bytes`);
    if (isDatabaseUnavailable(err) || isHsmUnavailable(err)) return new EstError(503, 'the CA cannot answer right now; try again shortly', { 'Retry-After': '5' });
    this.deps.logger.error({ err, method: req.method, path: req.url }, 'EST request failed');
    return new EstError(500, 'internal error; the event was logged');
  }
}

/**
 * The body of an enrollment (RFC 7030 4.2.1): application/pkcs10, base64
 * of the DER (line breaks allowed, RFC 8951 3: no Content-Transfer-Encoding
 * is needed), strictly: canonical base64 whose length is a multiple of 4.
 */
async function pkcs10Body(req: IncomingMessage): Promise<Buffer> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/pkcs10') throw new EstError(415, 'an EST enrollment is application/pkcs10: the base64 of a DER PKCS#10');
  if ((req.headers['content-encoding'] ?? 'identity') !== 'identity') throw new EstError(415, 'EST requests are not content-encoded');
  const text = (await readBody(req, BODY_LIMIT)).toString('latin1').replace(/[\r\n\t ]/g, '');
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new EstError(400, 'the body must be the base64 of a DER PKCS#10');
  const der = Buffer.from(text, 'base64');
  if (der.toString('base64') !== text) throw new EstError(400, 'the body is not canonical base64');
  return der;
}

function write(res: ServerResponse, status: number, type: string, body: string, head: boolean, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store', ...headers });
  res.end(head ? undefined : body);
}
