import express, { type Express, type Response, type Router } from 'express';
import type { Hierarchy } from '../../ca/hierarchy.ts';
import type { Publication, ServedCrl } from '../../publish/publication.ts';
import type { Logger } from '../../platform/logger.ts';
import { MODEL_PATTERN } from '../../registry/identifiers.ts';
import { VERSION_PATTERN } from '../../registry/firmware/firmware-releases.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { requestLog } from './request-log.ts';

/** CRL caches revalidate at least this often, so a revocation reaches them within a minute (docs/operators/revocation.md). */
const CRL_MAX_AGE_S = 60;

/**
 * The plain-HTTP listener (docs/operators/revocation.md): CA certificates and CRLs by slug
 * (`/ca/root.crt`, `/crl/operational.crl`, `/crl/operational-2.crl` after a
 * rollover: the caIssuers and CDP URLs each certificate carries), and the
 * Merkle audit log's checkpoint, key and hash tiles (`/log/...`), and the
 * approved firmware releases' SUIT envelopes. OCSP is
 * answered before express (publish/ocsp-responder.ts).
 */
/** The signed SUIT envelope of an approved release, undefined for any other. */
export type FirmwareEnvelopes = (model: string, version: string) => Promise<Buffer | undefined>;

export function publicationApp(
  hierarchy: Hierarchy, publication: Pick<Publication, 'crl' | 'crlShard'>, health: Router, logger: Logger, clock: () => Date,
  envelopes: FirmwareEnvelopes, routers: Router[] = [],
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog(logger));
  app.use(health);
  app.get('/ca/:file', (req, res, next) => {
    const slug = /^([a-z0-9-]{1,40})\.crt$/.exec(req.params.file)?.[1];
    const issuer = slug ? hierarchy.bySlug(slug) : undefined;
    if (!issuer) return next();
    res.type('application/pkix-cert').set('Cache-Control', 'public, max-age=3600').send(issuer.record.der);
  });
  app.get('/crl/:file', (req, res, next) => {
    const slug = /^([a-z0-9-]{1,40})\.crl$/.exec(req.params.file)?.[1];
    const crl = slug ? publication.crl(slug) : undefined;
    if (!crl) return next();
    sendCrl(res, crl);
  });
  // One shard of a sharded CRL: /crl/<slug>/<shard>.crl, the CDP of the certificates issued into it.
  app.get('/crl/:slug/:file', async (req, res, next) => {
    const shard = /^(\d{1,4})\.crl$/.exec(req.params.file)?.[1];
    const crl = shard !== undefined && /^[a-z0-9-]{1,40}$/.test(req.params.slug) ? await publication.crlShard(req.params.slug, Number(shard)) : undefined;
    if (!crl) return next();
    sendCrl(res, crl);
  });
  const sendCrl = (res: Response, crl: ServedCrl) => {
    const untilNext = Math.floor((crl.record.nextUpdate.getTime() - clock().getTime()) / 1000);
    res.type('application/pkix-crl').set({
      'Cache-Control': `public, max-age=${Math.max(0, Math.min(CRL_MAX_AGE_S, untilNext))}`,
      ETag: crl.etag,
      'Last-Modified': crl.record.thisUpdate.toUTCString(),
      Expires: crl.record.nextUpdate.toUTCString(),
    }).send(crl.der);
  };
  // Signed firmware manifests (docs/operators/firmware.md): public like CRLs, the signature is their protection; 404 until approved.
  app.get('/firmware/:model/:file', async (req, res, next) => {
    const version = /^(.{1,64})\.suit$/.exec(req.params.file)?.[1];
    if (!version || !MODEL_PATTERN.test(req.params.model) || !VERSION_PATTERN.test(version)) return next();
    const envelope = await envelopes(req.params.model, version);
    if (!envelope) return next();
    res.type('application/suit-envelope+cose').set('Cache-Control', 'public, max-age=3600').send(envelope);
  });
  // The Merkle audit log's public half (server/http/routes/tlog.ts).
  for (const router of routers) app.use(router);
  app.use(notFoundHandler);
  app.use(problemHandler(logger));
  return app;
}
