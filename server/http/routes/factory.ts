import { Router, type Response } from 'express';
import type { BirthCertificateFields, FactoryPrincipal, FactoryService } from '../../../enroll/factory.ts';
import { malformed } from '../../../errors/domain-error.ts';
import type { AuthStore } from '../../../store/subsets.ts';
import type { Logger } from '../../../platform/logger.ts';
import { requireRole, tokenOf } from '../auth.ts';
import { bodyFields, jsonBody } from '../body.ts';
import { devidProblems, problemDocument, problemHandler, toProblem } from '../problem.ts';

/** A birth-certificate request is a CSR and a few names: 64 KiB is ample. */
const BODY_LIMIT = '64kb';
/** A batch holds at most this many requests (and 2 MiB). */
const MAX_BATCH = 100;
/** Items of a batch in flight at once: enough to overlap database round trips. */
const BATCH_CONCURRENCY = 4;

const BIRTH_FIELDS = ['serial', 'model', 'batch', 'csr', 'tpmActivation'] as const;
const TPM_CHALLENGE_FIELDS = ['serial', 'model', 'manufacturer', 'ekCertificate', 'akPublic'] as const;

function birthFields(body: unknown): BirthCertificateFields {
  return bodyFields(body, BIRTH_FIELDS);
}

/** POST /factory/v1/birth-certificates (docs/operators/factory.md), and its batch form. */
export function factoryRoutes(store: AuthStore, factory: FactoryService, logger: Logger): Router {
  const router = Router();
  const principal = (res: Response): FactoryPrincipal => {
    const token = tokenOf(res);
    return { tokenId: token.id, line: token.line!, models: token.models };
  };
  const factoryRole = requireRole(store, 'factory');

  router.post('/factory/v1/birth-certificates', factoryRole, ...jsonBody(BODY_LIMIT), async (req, res) => {
    const { status, ...body } = await factory.requestBirthCertificate(principal(res), birthFields(req.body));
    res.status(status).json(body);
  });

  router.post('/factory/v1/tpm-challenges', factoryRole, ...jsonBody(BODY_LIMIT), async (req, res) => {
    res.status(201).json(await factory.tpmChallenge(principal(res), bodyFields(req.body, TPM_CHALLENGE_FIELDS)));
  });

  /**
   * Many devices in one request for a busy line: each item is all-or-nothing
   * on its own and gets its own result, in order: the 200/201 body with its
   * status, or a problem document.
   */
  router.post('/factory/v1/birth-certificates/batch', factoryRole, ...jsonBody('2mb'), async (req, res) => {
    const { requests: items } = bodyFields(req.body, ['requests']);
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BATCH) {
      throw malformed(`the body must be {"requests": [...]} with 1 to ${MAX_BATCH} birth-certificate requests`);
    }
    const who = principal(res);
    const results: unknown[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) {
        try {
          results[i] = await factory.requestBirthCertificate(who, birthFields(items[i]));
        } catch (err) {
          const problem = toProblem(err, devidProblems, logger, { path: req.path, item: i });
          results[i] = { status: problem.status, problem: problemDocument(problem) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, items.length) }, worker));
    res.status(200).json({ results });
  });
  router.use('/factory', problemHandler(logger));
  return router;
}
