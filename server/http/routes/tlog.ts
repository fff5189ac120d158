import { Router, type RequestHandler } from 'express';
import { malformed, notFound } from '../../../errors/domain-error.ts';
import type { AuditLog } from '../../../registry/audit/audit-log.ts';
import { parseIndexAndWidth, parseTilePath } from '../../../registry/tlog/tile-path.ts';
import type { TransparencyLog } from '../../../registry/tlog/transparency-log.ts';
import type { Logger } from '../../../platform/logger.ts';
import type { DeviceStore } from '../../../store/device-store.ts';
import type { AuditedStore, AuditWrites, AuthStore, DeviceProofStore, TlogReadStore } from '../../../store/subsets.ts';
import { checkSerial } from '../../../registry/identifiers.ts';
import { deviceProof } from '../../../registry/tlog/device-proof.ts';
import { withCosignatures } from '../../../registry/tlog/cosignature.ts';
import { actorOf, requireRole } from '../auth.ts';
import { problemHandler } from '../problem.ts';

/** A checkpoint is re-read within seconds of a new one (one is signed within 10 s of new events). */
const CHECKPOINT_MAX_AGE_S = 5;
/** A full tile never changes; a partial one of a given width neither, but it may stop being served once its tile fills. */
const FULL_TILE_CACHE = 'public, max-age=31536000, immutable';
const PARTIAL_TILE_CACHE = 'public, max-age=3600';

/** The log, or why it is disabled (a token without Ed25519, a changed key or origin): said at start-up and in each answer. */
export type TlogState = { log: TransparencyLog } | { disabled: string };

/**
 * tlog-tiles paths put slashes inside their index (`x001/x234/067.p/5`):
 * under `mount`, the rest of the path becomes one segment, so one `:tile`
 * route takes it whole (and the route list stays plain for the OpenAPI check).
 */
function restAsOneSegment(): RequestHandler {
  return (req, _res, next) => {
    const path = req.url.split('?')[0]!;
    if (path.length > 1) req.url = `/${encodeURIComponent(path.slice(1))}`;
    next();
  };
}

function logOf(state: TlogState): TransparencyLog {
  if ('disabled' in state) throw notFound(`the Merkle audit log is disabled: ${state.disabled}`);
  return state.log;
}

/** The public half on the plain-HTTP listener: checkpoint, verifier key, hash tiles (docs/auditors/audit-log.md). */
export function tlogPublicRoutes(store: TlogReadStore, state: TlogState, logger: Logger): Router {
  const router = Router();
  router.get('/log/checkpoint', async (_req, res) => {
    logOf(state);
    const checkpoint = await store.tlog.latestCheckpoint();
    if (!checkpoint) throw notFound('the log has no checkpoint yet');
    // The witnesses' cosignatures follow the log's own signature (C2SP tlog-cosignature); a client ignores keys it does not know.
    const cosignatures = await store.tlog.cosignaturesAt(checkpoint.size);
    res.type('text/plain; charset=utf-8').set('Cache-Control', `public, max-age=${CHECKPOINT_MAX_AGE_S}`).send(withCosignatures(checkpoint.note, cosignatures.map((c) => c.signature)));
  });
  router.get('/log/key', (_req, res) => {
    res.type('text/plain; charset=utf-8').set('Cache-Control', 'public, max-age=3600').send(`${logOf(state).logKey.verifierKey}\n`);
  });
  router.use('/log/tile', restAsOneSegment());
  router.get('/log/tile/:tile', async (req, res) => {
    const log = logOf(state);
    const tile = parseTilePath(req.params.tile);
    if (!tile) throw malformed('a hash tile is /log/tile/<L>/<N>[.p/<W>], N in the x001/x234/067 form, W from 1 to 255');
    const hashes = await log.tile(store, tile.level, tile.index, tile.width);
    if (!hashes) throw notFound('the published tree has no such tile');
    res.type('application/octet-stream').set('Cache-Control', tile.width === 256 ? FULL_TILE_CACHE : PARTIAL_TILE_CACHE).send(hashes);
  });
  router.use('/log', problemHandler(logger));
  return router;
}

/** What the HTTPS half reads, and the read events it records. */
export type TlogAuditorStore = TlogReadStore & DeviceProofStore & AuthStore & AuditedStore<AuditWrites> & { devices: Pick<DeviceStore, 'find'> };

/** `?size=<N>`: a tree size in decimal, without leading zeros. */
function treeSize(query: Record<string, unknown>): number | undefined {
  const { size, ...rest } = query;
  if (Object.keys(rest).length > 0) throw malformed('the only query parameter is size');
  if (size === undefined) return undefined;
  if (typeof size !== 'string' || !/^(0|[1-9]\d{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw malformed('size is a tree size in decimal (a published checkpoint\'s)');
  return Number(size);
}

/**
 * The entries (the events themselves) on HTTPS, for auditors and operators,
 * and each device's entries with their inclusion proofs: reading either is an audited action.
 */
export function tlogAuditorRoutes(store: TlogAuditorStore, audit: AuditLog, state: TlogState, logger: Logger): Router {
  const router = Router();
  router.get('/audit/v1/devices/:serial/proof', requireRole(store, 'auditor', 'operator'), async (req, res) => {
    logOf(state);
    const serial = checkSerial(req.params.serial);
    const size = treeSize(req.query as Record<string, unknown>);
    if (!(await store.devices.find(serial))) throw notFound(`no device ${serial}`);
    const proof = await deviceProof(store, serial, size);
    if (!proof) throw notFound(size === undefined ? 'the log has no checkpoint yet' : `no checkpoint was published at size ${size}`);
    await audit.recordAlone(store, { action: 'audit.device-proof-read', actor: actorOf(res), data: { serial, size: proof.size } });
    res.set('Cache-Control', 'private, no-store').json(proof);
  });
  router.use('/log/tile/entries', restAsOneSegment());
  router.get('/log/tile/entries/:bundle', requireRole(store, 'auditor', 'operator'), async (req, res) => {
    const log = logOf(state);
    const raw: unknown = req.params.bundle;
    const bundle = typeof raw === 'string' ? parseIndexAndWidth(raw) : undefined;
    if (!bundle) throw malformed('an entry bundle is /log/tile/entries/<N>[.p/<W>], N in the x001/x234/067 form, W from 1 to 255');
    const bytes = await log.entryBundle(store, bundle.index, bundle.width);
    if (!bytes) throw notFound('the published tree has no such entry bundle');
    await audit.recordAlone(store, { action: 'audit.log-entries-read', actor: actorOf(res), data: { index: bundle.index, width: bundle.width } });
    res.type('application/octet-stream').set('Cache-Control', 'private, no-store').send(bytes);
  });
  router.use(['/log', '/audit'], problemHandler(logger));
  return router;
}
