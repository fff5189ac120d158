import express, { type Express } from 'express';
import type { Hierarchy } from '../ca/hierarchy.ts';
import type { CaName } from '../store/types.ts';
import type { Logger } from './logger.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { requestLog } from './request-log.ts';

/** The plain-HTTP listener: CA certificates, and CRL and OCSP as later issues add them (SPEC section 6). */
export function publicationApp(hierarchy: Hierarchy, logger: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog(logger));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const names: readonly CaName[] = ['root', 'factory', 'operational'];
  for (const name of names) {
    app.get(`/ca/${name}.crt`, (_req, res) => {
      res.type('application/pkix-cert').set('Cache-Control', 'public, max-age=3600').send(Buffer.from(hierarchy.issuer(name).certificate.rawData));
    });
  }
  app.use(notFoundHandler);
  app.use(problemHandler(logger));
  return app;
}
