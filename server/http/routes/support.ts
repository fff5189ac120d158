import { Router } from 'express';
import { checkGrantId, issueSupportCertificate, type SupportIssuanceDeps } from '../../../registry/lifecycle/support-grants.ts';
import type { Logger } from '../../../platform/logger.ts';
import type { AuthStore } from '../../../store/subsets.ts';
import { actorOf, requireRole, tokenOf } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { problemHandler } from '../problem.ts';

/** A CSR and nothing else. */
const BODY_LIMIT = '64kb';

/** The vendor API (docs/operators/lifecycle.md): a support certificate for an approved grant, inside its window. */
export function supportRoutes(deps: SupportIssuanceDeps & { store: AuthStore; clock: () => Date; logger: Logger }): Router {
  const router = Router();
  router.post('/support/v1/grants/:id/certificate', requireRole(deps.store, 'vendor'), ...jsonBody(BODY_LIMIT), async (req, res) => {
    const id = checkGrantId(req.params.id);
    const { csr } = bodyFields(req.body, ['csr']);
    const issued = await issueSupportCertificate(deps, { actor: actorOf(res), vendor: tokenOf(res).vendor }, id, typeof csr === 'string' ? csr : '', deps.clock());
    res.status(201).json({ certificate: issued.pem, chain: issued.chainPem, serial: issued.serial, notAfter: issued.notAfter.toISOString() });
  });
  router.use('/support', problemHandler(deps.logger));
  return router;
}
