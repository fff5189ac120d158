import type { AuditEntry } from '../../registry/audit/audit-log.ts';
import { issue } from '../../registry/enrollment/issue.ts';
import type { AcmeOrderRecord } from '../../store/types.ts';
import { accountOf, type AcmeCall, type AcmeHandler } from './context.ts';
import { pendingOf } from './identifiers.ts';
import { jsonPayload } from './jws.ts';
import { ownOrder } from './order.ts';
import { AcmeProblem, acmeProblem, domainProblem } from './problems.ts';
import { ORDER_MOVES } from './states.ts';
import { orderView } from './views.ts';

/** Marks the order invalid with the problem (releasing its claim), then refuses with it. */
async function refuse(call: AcmeCall, order: AcmeOrderRecord, problem: AcmeProblem, events: AuditEntry[] = []): Promise<never> {
  await call.deps.audit.record(call.deps.store, async (tx) => {
    await tx.acme.moveOrder(order.id, ORDER_MOVES.invalidated.from, ORDER_MOVES.invalidated.to, call.now, { error: problem.document() });
    return { value: undefined, events };
  });
  throw problem;
}

/**
 * POST /acme/order/<id>/finalize {"csr"} (RFC 8555 7.4): the registration
 * authority issues (registry/enrollment/issue.ts) for what the order's
 * attestation established; the order becomes valid in the same
 * transaction. A refusal (badCSR, the basis changed, a fork) makes the
 * order invalid.
 */
export const finalize: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const order = await ownOrder(call, call.params.id!);
  if (order.status !== 'ready') throw acmeProblem.orderNotReady(order.status);
  const payload = jsonPayload(call.jws!);
  if (!payload || typeof payload.csr !== 'string') throw acmeProblem.malformed('finalize needs {"csr": base64url DER}');
  const account = accountOf(call);
  const issued = await issue(deps, {
    pending: pendingOf(order),
    basis: { spki: order.attestedSpki!, attestedBy: order.attestedBy, firmware: order.firmware },
    csr: payload.csr,
    requester: { actor: `acme:${account.id}`, data: { account: account.id } },
    now,
  }, async (tx, certificate) => {
    const move = ORDER_MOVES.issued;
    const valid = await tx.acme.moveOrder(order.id, move.from, move.to, now, { certificateSerial: certificate.serial });
    if (!valid) throw acmeProblem.orderNotReady('no longer ready');
    return valid;
  });
  if (!issued.ok) return refuse(call, order, domainProblem(issued.error), issued.events);
  return { status: 200, body: orderView(issued.value, call.urls), location: call.urls.order(order.id) };
};
