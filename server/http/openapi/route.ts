import { Router } from 'express';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { projectFile } from '../../project-files.ts';
import { PROBLEM, Problem, sendProblem } from '../problem.ts';
import { buildOpenapiDocument } from './document.ts';
import type { JsonObject } from './dsl.ts';

const VERSION = (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;

/** The document, built once: it describes the code, so it changes only with it. */
export const openapiDocument: JsonObject = buildOpenapiDocument(VERSION);
const body = JSON.stringify(openapiDocument);
const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;

/** GET /openapi.json: the document, without authentication, cacheable; other methods are 405 problems. */
export function openapiRoutes(): Router {
  const router = Router();
  router.route('/openapi.json')
    .get((req, res) => {
      res.set({ 'Cache-Control': 'public, max-age=3600', ETag: etag });
      if (req.get('if-none-match') === etag) return void res.status(304).end();
      res.type('application/json').send(body);
    })
    .all((req, res) => {
      sendProblem(res, new Problem(405, PROBLEM.methodNotAllowed, `${req.method} is not allowed on /openapi.json: GET it`, {}, { Allow: 'GET, HEAD' }));
    });
  return router;
}
