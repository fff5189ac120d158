import { Router, type Response } from 'express';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Hierarchy } from '../../../ca/hierarchy.ts';
import { malformed } from '../../../errors/domain-error.ts';
import type { Publication } from '../../../publish/publication.ts';
import { toCheckpoint } from '../../../registry/audit/audit-checkpoints.ts';
import { AuditLog } from '../../../registry/audit/audit-log.ts';
import { fleetOverview } from '../../../registry/reports/fleet-overview.ts';
import { firmwareModels, firmwareOverview } from '../../../registry/reports/firmware-overview.ts';
import { checkModelName, checkName } from '../../../registry/identifiers.ts';
import type { ConsoleRoutesStore } from '../../../store/subsets.ts';
import type { DeviceState } from '../../../store/types.ts';
import type { Logger } from '../../../platform/logger.ts';
import { actorOf, requireRole, tokenOf } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { checkCsrf, CLEARED_COOKIE, openSession, sessionFor } from '../console-session.ts';
import { PROBLEM, Problem, problemHandler } from '../problem.ts';
import { projectFile } from '../../project-files.ts';

/**
 * Only this page's own files, from this origin: no inline script or style,
 * no framing, no form posting elsewhere, no outside request of any kind.
 */
const CONSOLE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', mjs: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml' };
const CONSOLE_DIR = projectFile('console/');
/** The console's files; Preact and htm come as htm's one-file standalone build, so no bundler and no import map. */
const ASSETS: Record<string, URL> = {
  'index.html': new URL('index.html', CONSOLE_DIR),
  'app.mjs': new URL('app.mjs', CONSOLE_DIR),
  'api.mjs': new URL('api.mjs', CONSOLE_DIR),
  'fleet.mjs': new URL('fleet.mjs', CONSOLE_DIR),
  'device.mjs': new URL('device.mjs', CONSOLE_DIR),
  'lineage.mjs': new URL('lineage.mjs', CONSOLE_DIR),
  'actions.mjs': new URL('actions.mjs', CONSOLE_DIR),
  'status.mjs': new URL('status.mjs', CONSOLE_DIR),
  'manufacturers.mjs': new URL('manufacturers.mjs', CONSOLE_DIR),
  'firmware.mjs': new URL('firmware.mjs', CONSOLE_DIR),
  'style.css': new URL('style.css', CONSOLE_DIR),
  'icon.svg': new URL('icon.svg', CONSOLE_DIR),
  'preact-htm.mjs': new URL(import.meta.resolve('htm/preact/standalone')),
};
const SEARCH_LIMIT = 100;
const STATES: readonly DeviceState[] = ['manufactured', 'active', 'suspended', 'quarantined', 'decommissioned'];

interface Asset { body: Buffer; type: string; etag: string }

function loadAssets(): Map<string, Asset> {
  return new Map(Object.entries(ASSETS).map(([name, url]) => {
    const body = readFileSync(fileURLToPath(url));
    const type = TYPES[name.split('.').pop()!]!;
    return [name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }];
  }));
}

export interface ConsoleDeps {
  store: ConsoleRoutesStore;
  audit: AuditLog;
  hierarchy: Hierarchy;
  publication: Pick<Publication, 'crl'>;
  clock: () => Date;
  logger: Logger;
}

function sendAsset(res: Response, ifNoneMatch: string | undefined, asset: Asset): void {
  res.set(CONSOLE_HEADERS).set('ETag', asset.etag);
  if (ifNoneMatch === asset.etag) res.status(304).end();
  else res.status(200).type(asset.type).send(asset.body);
}

const query = (value: unknown, check: (v: unknown) => string) => (value === undefined || value === '' ? undefined : check(value));

/**
 * The operator console (docs/operators/console.md): its page and files, the
 * session that stands in for a token in the browser, and the read models the
 * pages need beyond the role APIs. Every action the console takes goes to the
 * operator and audit APIs themselves, under the session.
 */
export function consoleRoutes(deps: ConsoleDeps): Router {
  const { store, audit, hierarchy, clock } = deps;
  const assets = loadAssets();
  const router = Router();
  const readers = requireRole(store, 'operator', 'auditor');
  const record = (res: Response, view: string, data: Record<string, unknown> = {}) => audit.recordAlone(store, { action: 'console.read', actor: actorOf(res), data: { view, ...data } });

  router.get(['/console', '/console/'], (req, res) => sendAsset(res, req.get('if-none-match'), assets.get('index.html')!));
  router.get('/console/assets/:file', (req, res, next) => {
    const asset = assets.get(req.params.file);
    if (!asset || req.params.file === 'index.html') return next();
    sendAsset(res, req.get('if-none-match'), asset);
  });

  router.post('/console/v1/session', ...jsonBody('4kb'), async (req, res) => {
    const { token } = bodyFields(req.body, ['token']);
    if (typeof token !== 'string' || token.length > 256) throw malformed('sign in with {"token": "<operator or auditor token>"}');
    const opened = await openSession(store, audit, token, clock());
    res.set('Set-Cookie', opened.cookie).set('Cache-Control', 'no-store').status(201)
      .json({ principal: opened.token.principal, role: opened.token.role, csrf: opened.csrf, expiresAt: opened.expiresAt.toISOString() });
  });
  router.get('/console/v1/session', async (req, res) => {
    const found = await sessionFor(store, req.headers, clock());
    if (!found) throw new Problem(401, PROBLEM.unauthorized, 'no console session: sign in with a token');
    res.set('Cache-Control', 'no-store').json({ principal: found.token.principal, role: found.token.role, csrf: found.session.csrf, expiresAt: found.session.expiresAt.toISOString() });
  });
  router.delete('/console/v1/session', async (req, res) => {
    const found = await sessionFor(store, req.headers, clock());
    if (found) {
      checkCsrf(req.method, req.headers, found.session);
      await audit.record(store, async (tx) => {
        await tx.sessions.delete(found.session.idSha256);
        return { value: undefined, events: [{ action: 'console.signed-out', actor: `token:${found.token.id}`, data: { principal: found.token.principal } }] };
      });
    }
    res.set('Set-Cookie', CLEARED_COOKIE).status(204).end();
  });

  router.get('/console/v1/fleet', readers, async (_req, res) => {
    await record(res, 'fleet');
    res.set('Cache-Control', 'no-store').json(await fleetOverview(store, clock()));
  });
  router.get('/console/v1/devices', readers, async (req, res) => {
    const { q, state, model, owner, ...rest } = req.query;
    if (Object.keys(rest).length > 0) throw malformed('search devices with q (a serial prefix), state, model and owner');
    const prefix = q === undefined ? '' : String(q);
    if (typeof q !== 'undefined' && (typeof q !== 'string' || !/^[A-Za-z0-9.-]{0,64}$/.test(prefix))) throw malformed('q is the start of a device serial: letters, digits, "." and "-"');
    if (state !== undefined && state !== '' && !STATES.includes(state as DeviceState)) throw malformed(`state is one of ${STATES.join(', ')}`);
    const modelName = query(model, checkModelName);
    const ownerName = query(owner, (v) => checkName('owner', v));
    const filter = { prefix, ...(state ? { state: String(state) } : {}), ...(modelName ? { model: modelName } : {}), ...(ownerName ? { owner: ownerName } : {}) };
    await record(res, 'devices', { filter });
    const devices = await store.devices.search(filter, SEARCH_LIMIT);
    res.set('Cache-Control', 'no-store').json({
      devices: devices.map((d) => ({ serial: d.serial, model: d.model, batch: d.batch, state: d.state, owner: d.owner, class: d.deviceClass, updatedAt: d.updatedAt.toISOString() })),
      truncated: devices.length === SEARCH_LIMIT,
    });
  });
  // The Firmware pages: the models with releases, then one model's releases with the devices on each.
  router.get('/console/v1/firmware', readers, async (_req, res) => {
    await record(res, 'firmware');
    res.set('Cache-Control', 'no-store').json(await firmwareModels(store));
  });
  router.get('/console/v1/firmware/:model', readers, async (req, res) => {
    const model = checkModelName(req.params.model);
    const overview = await firmwareOverview(store, model, clock());
    await record(res, 'firmware', { model });
    res.set('Cache-Control', 'no-store').json(overview);
  });
  router.get('/console/v1/status', readers, async (_req, res) => {
    const now = clock();
    const [head, checkpoint, verification, ocsp] = await Promise.all([
      store.audit.head(), store.checkpoints.latest(), store.audit.recentByActions(['audit.verified'], 1), store.ocsp.freshness(now),
    ]);
    const latest = checkpoint ? toCheckpoint(checkpoint) : undefined;
    const verified = verification[0] ? AuditLog.parse(verification[0]) : undefined;
    await record(res, 'status');
    res.set('Cache-Control', 'no-store').json({
      generatedAt: now.toISOString(),
      you: { principal: tokenOf(res).principal, role: tokenOf(res).role },
      audit: {
        events: head?.seq ?? 0,
        headAt: head ? AuditLog.parse(head).at : null,
        checkpoint: latest ? { seq: latest.seq, at: latest.at } : null,
        lastVerification: verified ? { at: verified.at, actor: verified.actor, ok: verified.data?.ok, events: verified.data?.events } : null,
      },
      crls: hierarchy.issuers.map((issuer) => {
        const crl = deps.publication.crl(issuer.slug)?.record;
        return {
          ca: issuer.slug, online: issuer.online,
          ...(crl ? { number: crl.number.toString(), thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString(), entries: crl.entries, fresh: crl.nextUpdate > now } : { fresh: false }),
        };
      }),
      ocsp: ocsp.map((row) => ({
        ca: hierarchy.byId(row.issuerId)?.slug ?? String(row.issuerId), certificates: row.certificates, waiting: row.waiting,
        oldestThisUpdate: row.oldestThisUpdate?.toISOString() ?? null, earliestNextUpdate: row.earliestNextUpdate?.toISOString() ?? null,
      })),
    });
  });
  router.use('/console', problemHandler(deps.logger));
  return router;
}
