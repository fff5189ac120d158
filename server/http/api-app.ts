import express, { type Express, type Router } from 'express';
import type { Logger } from '../../platform/logger.ts';
import { openapiRoutes } from './openapi/route.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { requestLog } from './request-log.ts';

/**
 * The HTTPS listener: its OpenAPI description (GET /openapi.json), health,
 * then the role APIs (factory, operator, auditor, vendor); ACME is answered
 * before express (server/serve.ts). Each router maps its own errors (ACME speaks its
 * own problem types); the app's handler takes what falls outside them.
 */
export function apiApp(logger: Logger, routers: Router[]): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(requestLog(logger));
  app.use(openapiRoutes());
  for (const router of routers) app.use(router);
  app.use(notFoundHandler);
  app.use(problemHandler(logger));
  return app;
}
