import express, { type Express, type Router } from 'express';
import type { Hierarchy } from '../../ca/hierarchy.ts';
import type { Logger } from '../logger.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { requestLog } from './request-log.ts';

/**
 * The plain-HTTP listener (SPEC section 6): CA certificates by slug
 * (`/ca/root.crt`, `/ca/operational.crt`, `/ca/operational-2.crt` after a
 * rollover: the caIssuers URL each certificate carries), and CRL and OCSP as
 * later issues add them.
 */
export function publicationApp(hierarchy: Hierarchy, health: Router, logger: Logger): Express {
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
  app.use(notFoundHandler);
  app.use(problemHandler(logger));
  return app;
}
