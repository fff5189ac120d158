import type { AcmeAuthorizationRecord, AcmeOrderRecord } from '../../store/types.ts';
import type { AcmeCall, AcmeHandler } from './context.ts';
import { jsonPayload } from './jws.ts';
import { liveOwnOrder } from './order.ts';
import { acmeProblem } from './problems.ts';
import { AUTHORIZATION_MOVES, ORDER_MOVES } from './states.ts';
import { authorizationView } from './views.ts';

/** An authorization of the requesting account, with its order (expired ones moved on first). */
export async function ownAuthorization(call: AcmeCall, id: string): Promise<{ authz: AcmeAuthorizationRecord; order: AcmeOrderRecord }> {
  const found = await call.deps.store.acme.authorizationWithOrder(id);
  if (!found) throw acmeProblem.notFound('authorization');
  const order = await liveOwnOrder(call, found.order);
  // An order that expired just now took its pending authorization with it: read that move.
  const authz = order.status === 'invalid' && found.authz.status === 'pending' ? (await call.deps.store.acme.authorization(id))! : found.authz;
  return { authz, order };
}

/**
 * POST /acme/authz/<id> (RFC 8555 7.5, 7.5.2): POST-as-GET reads it;
 * {"status": "deactivated"} gives it up, and its order with it.
 */
export const authorizationPost: AcmeHandler = async (call) => {
  const { authz, order } = await ownAuthorization(call, call.params.id!);
  const payload = jsonPayload(call.jws!);
  if (!payload) return { status: 200, body: authorizationView(authz, order, call.urls) };
  if (payload.status !== 'deactivated') throw acmeProblem.malformed('the only change a client may make to an authorization is {"status": "deactivated"}');
  const deactivated = await call.deps.store.transaction(async (tx) => {
    const move = AUTHORIZATION_MOVES.deactivated;
    const next = await tx.acme.moveAuthorization(authz.id, move.from, move.to, move.challenge, call.now);
    if (!next) throw acmeProblem.malformed(`the authorization is ${authz.status}`);
    const error = acmeProblem.unauthorized('the client deactivated the authorization').document();
    await tx.acme.moveOrder(order.id, ORDER_MOVES.invalidated.from, ORDER_MOVES.invalidated.to, call.now, { error });
    return next;
  });
  return { status: 200, body: authorizationView(deactivated, order, call.urls) };
};
