import { randomBytes } from 'node:crypto';
import type { AuditEntry } from '../../registry/audit-log.ts';
import { cloneSignalEvents } from '../../registry/clone-signals.ts';
import { mayEnroll } from '../../registry/device-states.ts';
import { SERIAL_PATTERN } from '../../registry/identifiers.ts';
import type { Store } from '../../store/store.ts';
import type { AcmeAuthorizationRecord, AcmeOrderRecord, CertificateRecord, DeviceRecord } from '../../store/types.ts';
import { certificateByCertId } from './cert-id.ts';
import { accountOf, type AcmeCall, type AcmeHandler } from './context.ts';
import { jsonPayload } from './jws.ts';
import { AcmeProblem, acmeProblem, rateLimited } from './problems.ts';
import { AUTHORIZATION_MOVES, ORDER_LIFETIME_MS, ORDER_MOVES } from './states.ts';
import { PERMANENT_IDENTIFIER, authorizationIdOf, orderView } from './views.ts';

/**
 * The device an order is for: known, with a live birth certificate, in a
 * state that may enroll (docs/device-makers/protocol.md, docs/operators/lifecycle.md). While other manufacturers are
 * registered, an unknown serial may order too (null): its attestation then
 * shows whether a genuine device that is not ours tried to enroll
 * (docs/operators/manufacturers.md). A device born elsewhere has its birth certificate checked
 * at the attestation.
 */
export async function enrollableDevice(store: Pick<Store, 'devices' | 'certificates' | 'manufacturers'>, serial: string): Promise<DeviceRecord | null> {
  const device = await store.devices.find(serial);
  if (!device) {
    if (await store.manufacturers.anyActive()) return null;
    throw new AcmeProblem('rejectedIdentifier', 400, `no device ${serial} has a birth certificate from this CA`);
  }
  if (!mayEnroll(device.state)) throw new AcmeProblem('rejectedIdentifier', 400, `device ${serial} is ${device.state}: enrollment and renewal are refused`);
  if (device.manufacturer !== 'self') return device;
  const birth = await store.certificates.newestOfDevice(serial, 'birth');
  if (!birth || birth.revokedAt || birth.keySha256 !== device.factoryKeySha256) {
    throw new AcmeProblem('rejectedIdentifier', 400, `device ${serial} has no live birth certificate`);
  }
  return device;
}

/** A refusal decided inside a transaction: its problem, and the events to record with it. */
export interface Refusal {
  problem: AcmeProblem;
  events: AuditEntry[];
}

/**
 * RFC 9773 `replaces`: the certificate must be this device's newest
 * operational certificate, with no successor and no live claim by another
 * order. Anything else is refused; a second claim or a successor is a
 * lineage fork (409 alreadyReplaced), another device's certificate a clone
 * signal: both with events for the audit log, which the caller records.
 */
export async function replaceRefusal(tx: Store, replaced: CertificateRecord, device: DeviceRecord, orderId: string | null, actor: string, now: Date): Promise<Refusal | undefined> {
  if (replaced.kind !== 'operational') return { problem: acmeProblem.malformed('replaces must name an operational certificate'), events: [] };
  if (replaced.deviceSerial !== device.serial) {
    return {
      problem: acmeProblem.malformed(`replaces names a certificate of another device, not of ${device.serial}`),
      events: cloneSignalEvents([device.serial, replaced.deviceSerial!], actor, {
        reason: "an order for this device names another device's certificate in replaces", orderFor: device.serial, certificateOf: replaced.deviceSerial, certificateSerial: replaced.serial,
      }),
    };
  }
  const newest = await tx.certificates.newestOfDevice(device.serial, 'operational');
  const claims = (await tx.acme.liveClaims(replaced.serial, now)).filter((o) => o.id !== orderId);
  const successor = newest?.serial !== replaced.serial || (await tx.certificates.hasSuccessor(replaced.sha256));
  if (!successor && claims.length === 0) return undefined;
  const detail = successor ? `certificate ${replaced.serial} already has a successor` : `certificate ${replaced.serial} is claimed by another order`;
  return {
    problem: acmeProblem.alreadyReplaced(detail),
    events: [{
      action: 'device.lineage-fork', actor, device: device.serial,
      data: { replaces: replaced.serial, reason: detail, ...(orderId ? { order: orderId } : {}), claimedBy: claims.map((o) => o.id) },
    }],
  };
}

/** Orders an account may have pending or ready at once: an account proves nothing until it attests, so what it may store is bounded. */
export const MAX_LIVE_ORDERS = 16;

/** POST /acme/new-order (RFC 8555 7.4, RFC 9773 `replaces`): one permanent-identifier, one authorization, one challenge. */
export const newOrder: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const account = accountOf(call);
  const payload = jsonPayload(call.jws!);
  if (!payload) throw acmeProblem.malformed('newOrder needs a payload with identifiers');
  const identifiers = payload.identifiers;
  if (!Array.isArray(identifiers) || identifiers.length !== 1) throw acmeProblem.malformed('an order names exactly one identifier');
  const identifier = identifiers[0] as { type?: unknown; value?: unknown };
  if (typeof identifier !== 'object' || identifier === null) throw acmeProblem.malformed('an identifier is {"type", "value"}');
  if (identifier.type !== PERMANENT_IDENTIFIER) throw new AcmeProblem('unsupportedIdentifier', 400, `only "${PERMANENT_IDENTIFIER}" identifiers are issued here`);
  if (typeof identifier.value !== 'string' || !SERIAL_PATTERN.test(identifier.value)) throw new AcmeProblem('rejectedIdentifier', 400, 'the identifier value must be a device serial');
  if (payload.notBefore !== undefined || payload.notAfter !== undefined) throw acmeProblem.malformed('the validity comes from the device class: notBefore and notAfter are not accepted');
  const serial = identifier.value;
  const actor = `acme:${account.id}`;
  const device = await enrollableDevice(deps.store, serial);
  let replaced: CertificateRecord | undefined;
  if (payload.replaces !== undefined) {
    if (!device) throw acmeProblem.malformed(`device ${serial} has no certificate to replace`);
    replaced = await certificateByCertId(payload.replaces, deps.hierarchy, deps.store.certificates);
    // An order proves nothing (anyone may name a public certID): it is refused, but writes no clone or fork event.
    // The attestation checks `replaces` again, and records a fork once the device has proved itself.
    const refusal = await replaceRefusal(deps.store, replaced, device, null, actor, now);
    if (refusal) throw refusal.problem;
  }
  if (await deps.store.acme.liveOrderCount(account.id, now) >= MAX_LIVE_ORDERS) {
    throw rateLimited(`an account may hold ${MAX_LIVE_ORDERS} pending or ready orders at once: finish or let some expire`, 60);
  }
  const id = randomBytes(16).toString('base64url');
  const expiresAt = new Date(now.getTime() + ORDER_LIFETIME_MS);
  const order: AcmeOrderRecord = {
    id, accountId: account.id, deviceSerial: serial, status: 'pending', expiresAt,
    replaces: replaced?.serial ?? null, replacesCertId: replaced ? (payload.replaces as string) : null, replacesClaimed: false,
    attestedSpki: null, attestedBy: null, firmware: null, certificateSerial: null, error: null, createdAt: now, updatedAt: now,
  };
  const authz: AcmeAuthorizationRecord = {
    id: authorizationIdOf(order), orderId: id, status: 'pending', expiresAt, token: randomBytes(32).toString('base64url'),
    challengeStatus: 'pending', challengeValidatedAt: null, challengeError: null, createdAt: now,
  };
  await deps.store.acme.insertOrder(order, authz);
  return { status: 201, body: orderView(order, call.urls), location: call.urls.order(id) };
};

/**
 * An order of the requesting account (404 for anyone else's), moved to
 * `invalid` when it expired while pending or ready: that releases its claim.
 */
export async function ownOrder(call: AcmeCall, id: string): Promise<AcmeOrderRecord> {
  const { store } = call.deps;
  const order = await store.acme.order(id);
  if (!order || order.accountId !== accountOf(call).id) throw acmeProblem.notFound('order');
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
