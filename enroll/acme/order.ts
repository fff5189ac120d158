import { randomBytes } from 'node:crypto';
import { checkOrder } from '../../registry/enrollment/check-order.ts';
import { SERIAL_PATTERN } from '../../registry/identifiers.ts';
import type { AcmeAuthorizationRecord, AcmeOrderRecord } from '../../store/types.ts';
import { certificateByCertId } from './cert-id.ts';
import { accountOf, type AcmeCall, type AcmeHandler } from './context.ts';
import { parseOrderedIdentifier } from './identifiers.ts';
import { jsonPayload } from './jws.ts';
import { AcmeProblem, acmeProblem, rateLimited } from './problems.ts';
import { AUTHORIZATION_MOVES, ORDER_LIFETIME_MS, ORDER_MOVES } from './states.ts';
import { authorizationIdOf, orderView } from './views.ts';

/** Orders an account may have pending or ready at once: an account proves nothing until it attests, so what it may store is bounded. */
export const MAX_LIVE_ORDERS = 16;

/**
 * POST /acme/new-order (RFC 8555 7.4, RFC 9773 `replaces`): one identifier
 * (a permanent-identifier or hardware-module of draft-ietf-acme-device-attest-09),
 * one authorization, one challenge.
 */
export const newOrder: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const account = accountOf(call);
  const payload = jsonPayload(call.jws!);
  if (!payload) throw acmeProblem.malformed('newOrder needs a payload with identifiers');
  const identifiers = payload.identifiers;
  if (!Array.isArray(identifiers) || identifiers.length !== 1) throw acmeProblem.malformed('an order names exactly one identifier');
  const identifier = parseOrderedIdentifier(identifiers[0]);
  if (payload.notBefore !== undefined || payload.notAfter !== undefined) throw acmeProblem.malformed('the validity comes from the device class: notBefore and notAfter are not accepted');
  // draft-09's ABNF admits any octets but "/"; the devices here have serials of a narrower alphabet.
  if (!SERIAL_PATTERN.test(identifier.serial)) throw new AcmeProblem('rejectedIdentifier', 400, `the identifier must name a device serial (${SERIAL_PATTERN.source})`);
  const serial = identifier.serial;
  const certId = payload.replaces;
  // An order proves nothing (anyone may name a public certID): a refused `replaces` writes no clone or fork event.
  const { replaced } = await checkOrder(
    deps.store, serial, certId === undefined ? undefined : () => certificateByCertId(certId, deps.hierarchy, deps.store.certificates), now,
    { name: identifier.name, assignerOid: deps.assignerOid },
  );
  const id = randomBytes(16).toString('base64url');
  const expiresAt = new Date(now.getTime() + ORDER_LIFETIME_MS);
  const order: AcmeOrderRecord = {
    id, accountId: account.id, deviceSerial: serial, status: 'pending', expiresAt,
    replaces: replaced?.serial ?? null, replacesCertId: replaced ? (payload.replaces as string) : null, replacesClaimed: false,
    attestedSpki: null, attestedBy: null, firmware: null, certificateSerial: null, error: null, createdAt: now, updatedAt: now,
    identifier: { type: identifier.type, value: identifier.value },
  };
  const authz: AcmeAuthorizationRecord = {
    id: authorizationIdOf(order), orderId: id, status: 'pending', expiresAt, token: randomBytes(32).toString('base64url'),
    challengeStatus: 'pending', challengeValidatedAt: null, challengeError: null, createdAt: now,
  };
  // The quota is counted in the insert's own statement.
  if (!(await deps.store.acme.insertOrder(order, authz, MAX_LIVE_ORDERS))) {
    throw rateLimited(`an account may hold ${MAX_LIVE_ORDERS} pending or ready orders at once: finish or let some expire`, 60);
  }
  return { status: 201, body: orderView(order, call.urls), location: call.urls.order(id) };
};

/**
 * An order of the requesting account (404 for anyone else's), moved to
 * `invalid` when it expired while pending or ready: that releases its claim.
 */
export async function ownOrder(call: AcmeCall, id: string): Promise<AcmeOrderRecord> {
  return liveOwnOrder(call, await call.deps.store.acme.order(id));
}

/** ownOrder of an order already read (undefined: there is none). */
export async function liveOwnOrder(call: AcmeCall, order: AcmeOrderRecord | undefined): Promise<AcmeOrderRecord> {
  const { store } = call.deps;
  if (!order || order.accountId !== accountOf(call).id) throw acmeProblem.notFound('order');
  const id = order.id;
  if (order.expiresAt > call.now || !(ORDER_MOVES.invalidated.from as readonly string[]).includes(order.status)) return order;
  return store.transaction(async (tx) => {
    const error = new AcmeProblem('malformed', 400, 'the order expired').document();
    const expired = await tx.acme.moveOrder(id, ORDER_MOVES.invalidated.from, ORDER_MOVES.invalidated.to, call.now, { error });
    const authz = AUTHORIZATION_MOVES.expired;
    await tx.acme.moveAuthorization(authorizationIdOf(order), authz.from, authz.to, authz.challenge, call.now);
    return expired ?? (await tx.acme.order(id))!;
  });
}

/** POST-as-GET /acme/order/<id> (RFC 8555 7.1.3). */
export const orderGet: AcmeHandler = async (call) => {
  const order = await ownOrder(call, call.params.id!);
  return { status: 200, body: orderView(order, call.urls), ...(order.status === 'processing' ? { headers: { 'Retry-After': '1' } } : {}) };
};
