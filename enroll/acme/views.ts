import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeOrderRecord } from '../../store/types.ts';
import { identifierOf } from './identifiers.ts';
import type { AcmeUrls } from './urls.ts';

/** draft-ietf-acme-device-attest: the challenge type devid-ca offers. */
export const DEVICE_ATTEST_01 = 'device-attest-01';

/** The JSON resources of RFC 8555 7.1, as clients see them. */
export function accountView(account: AcmeAccountRecord, urls: AcmeUrls): Record<string, unknown> {
  return { status: account.status, contact: account.contact, orders: urls.orders(account.id) };
}

export function orderView(order: AcmeOrderRecord, urls: AcmeUrls): Record<string, unknown> {
  return {
    status: order.status,
    expires: order.expiresAt.toISOString(),
    identifiers: [identifierOf(order)],
    authorizations: [urls.authorization(authorizationIdOf(order))],
    finalize: urls.finalize(order.id),
    ...(order.certificateSerial ? { certificate: urls.certificate(order.certificateSerial) } : {}),
    ...(order.error ? { error: order.error } : {}),
    ...(order.replacesCertId ? { replaces: order.replacesCertId } : {}),
  };
}

export function challengeView(authz: AcmeAuthorizationRecord, urls: AcmeUrls): Record<string, unknown> {
  return {
    type: DEVICE_ATTEST_01,
    url: urls.challenge(authz.id),
    status: authz.challengeStatus,
    token: authz.token,
    ...(authz.challengeValidatedAt ? { validated: authz.challengeValidatedAt.toISOString() } : {}),
    ...(authz.challengeError ? { error: authz.challengeError } : {}),
  };
}

export function authorizationView(authz: AcmeAuthorizationRecord, order: Pick<AcmeOrderRecord, 'identifier' | 'deviceSerial'>, urls: AcmeUrls): Record<string, unknown> {
  return {
    status: authz.status,
    expires: authz.expiresAt.toISOString(),
    identifier: identifierOf(order),
    challenges: [challengeView(authz, urls)],
  };
}

/** An order's one authorization shares the order's id with a suffix, so the order needs no second query to name it. */
export function authorizationIdOf(order: Pick<AcmeOrderRecord, 'id'>): string {
  return `${order.id}a`;
}
