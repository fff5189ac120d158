import { Router, type Response } from 'express';
import { notFound } from '../../../errors/domain-error.ts';
import {
  approveRelease, withdrawRelease, checkReleaseProposal, checkVersion, proposeRelease, releaseView, type ReleaseSigning,
} from '../../../registry/firmware/firmware-releases.ts';
import type { AuditLog } from '../../../registry/audit/audit-log.ts';
import { checkModelName, checkText } from '../../../registry/identifiers.ts';
import type { AuthStore, FirmwareReleaseAdminStore } from '../../../store/subsets.ts';
import type { Logger } from '../../../platform/logger.ts';
import { actorOf, requireRole, tokenOf } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { problemHandler } from '../problem.ts';

const BODY_LIMIT = '8kb';

export interface FirmwareReleaseDeps {
  store: FirmwareReleaseAdminStore & AuthStore;
  audit: AuditLog;
  signing: ReleaseSigning;
  /** The plain-HTTP base URL envelopes are published under. */
  baseUrl: string;
  clock: () => Date;
  logger: Logger;
}

/** Signed firmware releases (docs/operators/firmware.md): proposed by one operator, approved by another, then signed; role operator. */
export function firmwareReleaseRoutes(deps: FirmwareReleaseDeps): Router {
  const { store, audit, clock } = deps;
  const router = Router();
  const operator = requireRole(store, 'operator');
  const who = (res: Response) => ({ actor: actorOf(res), principal: tokenOf(res).principal });
  const view = (record: Parameters<typeof releaseView>[0]) => releaseView(record, deps.baseUrl);

  router.post('/operator/v1/models/:model/firmware-releases', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const release = checkReleaseProposal(req.params.model, bodyFields(req.body, ['version', 'digest', 'size', 'sequence', 'minSequence']));
    const record = await proposeRelease(store, audit, who(res), release, clock());
    res.status(201).location(`/operator/v1/models/${record.model}/firmware-releases/${record.version}`).json(view(record));
  });
  router.get('/operator/v1/models/:model/firmware-releases', operator, async (req, res) => {
    const model = checkModelName(req.params.model);
    if (!(await store.models.byName(model))) throw notFound(`no model ${model}`);
    res.json({ model, releases: (await store.firmwareReleases.byModel(model)).map(view) });
  });
  router.get('/operator/v1/models/:model/firmware-releases/:version', operator, async (req, res) => {
    const model = checkModelName(req.params.model);
    const version = checkVersion(req.params.version);
    const record = await store.firmwareReleases.find(model, version);
    if (!record) throw notFound(`model ${model} has no release ${version}`);
    res.json(view(record));
  });
  router.post('/operator/v1/models/:model/firmware-releases/:version/approve', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const model = checkModelName(req.params.model);
    const version = checkVersion(req.params.version);
    const { proposal } = bodyFields(req.body, ['proposal']);
    res.json(view(await approveRelease(store, audit, deps.signing, who(res), model, version, proposal, clock())));
  });
  router.post('/operator/v1/models/:model/firmware-releases/:version/withdraw', operator, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const model = checkModelName(req.params.model);
    const version = checkVersion(req.params.version);
    const reason = checkText('reason', bodyFields(req.body, ['reason']).reason, 1024, { multiline: true });
    res.json(view(await withdrawRelease(store, audit, who(res), model, version, reason, clock())));
  });
  router.use('/operator/v1/models', problemHandler(deps.logger));
  return router;
}
