import { sha256, sha256Hex } from '../../ca/digest.ts';
import type { AuditEntry } from '../../registry/audit-log.ts';
import { cloneSignalEvents } from '../../registry/clone-signals.ts';
import { mayEnroll, moveDevice } from '../../registry/device-states.ts';
import { LOCKS } from '../../store/locks.ts';
import type { Store } from '../../store/store.ts';
import { StoreNotFoundError, type AcmeAuthorizationRecord, type AcmeOrderRecord, type DeviceClassRecord } from '../../store/types.ts';
import { AttestationError, MAX_ATTESTATION_OBJECT } from '../../pki/attestation/attestation-object.ts';
import { trustOf } from '../../registry/manufacturers.ts';
import { validateBirthChain, type ValidatedBirth } from '../../pki/attestation/birth-chain.ts';
import { acceptSignCount, parseDeviceAttestation, signatureProblem, verifyDeviceAttestation, type AttestationOutcome, type ParsedAttestation } from '../attestation/device-attest.ts';
import { ownAuthorization } from './authorization.ts';
import { accountOf, type AcmeCall, type AcmeDeps, type AcmeHandler, type AcmeReply } from './context.ts';
import { jsonPayload } from './jws.ts';
import { replaceRefusal, type Refusal } from './order.ts';
import { AcmeProblem, acmeProblem } from './problems.ts';
import { AUTHORIZATION_MOVES, ORDER_MOVES } from './states.ts';
import { challengeView } from './views.ts';

/** The challenge, with a link up to its authorization (RFC 8555 7.5.1). */
function reply(call: AcmeCall, authz: AcmeAuthorizationRecord): AcmeReply {
  return { status: 200, body: challengeView(authz, call.urls), links: [{ url: call.urls.authorization(authz.id), rel: 'up' }] };
}

/**
 * POST /acme/chall/<id> with {"attObj": base64url(CBOR)} (docs/device-makers/protocol.md,
 * draft-ietf-acme-device-attest): verifies the attestation at once. A
 * malformed object is bad input (400, nothing written). On success the
 * authorization is valid, the order ready and bound to the attested key, a
 * `replaces` claim taken and the counter advanced; on a failed check the
 * challenge, authorization and order become invalid with a
 * badAttestationStatement naming the check (also the answer), and clone
 * signals are audited (and the device suspended when its class says so).
 * POST-as-GET reads the challenge.
 */
export const challengePost: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const { authz, order } = await ownAuthorization(call, call.params.id!);
  const payload = jsonPayload(call.jws!);
  if (!payload) return reply(call, authz);
  if (authz.challengeStatus === 'valid' && order.status !== 'invalid') return reply(call, authz);
  if (authz.challengeStatus !== 'pending' || order.status !== 'pending') throw acmeProblem.malformed(`the challenge is ${authz.challengeStatus} and its order ${order.status}`);
  const attestation = parseAttestation(payload.attObj);
  const account = accountOf(call);
  const keyAuthorization = `${authz.token}.${account.thumbprint}`;

  const outcome = await deps.audit.record(deps.store, async (tx) => {
    await tx.lock(LOCKS.device(order.deviceSerial));
    // One query for the device and its class; no device at all is an order for a serial nobody claimed.
    const found = await tx.devices.getWithClass(order.deviceSerial).catch((err: unknown) => {
      if (err instanceof StoreNotFoundError) return undefined;
      throw err;
    });
    if (!found) return refuseUnclaimed(deps, tx, call, authz, order, attestation, keyAuthorization);
    const { device, deviceClass } = found;
    const verified: AttestationOutcome = mayEnroll(device.state)
      ? await verifyDeviceAttestation(tx, { device, deviceClass, keyAuthorization, rpIdHash: sha256(deps.identity.publicHost), attestation, firmwareAllowed: await tx.firmware.allowed(device.model), now })
      : { ok: false, error: new AttestationError('device state', `device ${device.serial} is ${device.state}: enrollment and renewal are refused`) };
    if (!verified.ok) return refuseAttestation(deps, tx, call, authz, order, deviceClass, verified);
    // The claim before the counter: of two orders racing to replace one certificate, the second is a fork whatever its count.
    if (order.replaces) {
      const replaced = (await tx.certificates.find(order.replaces))!;
      const refusal = await replaceRefusal(tx, replaced, device, order.id, `device:${device.serial}`, now);
      if (refusal) return invalidate(tx, call, authz, order, refusal);
    }
    const counted = await acceptSignCount(tx, device, verified.attested, now);
    if (!counted.ok) return refuseAttestation(deps, tx, call, authz, order, deviceClass, counted);
    const { attested } = counted;
    const outside = attested.outsideBirth;
    if (outside) {
      // One birth key, one device: a key another device already showed is a clone signal.
      const holder = await tx.devices.serialWithFactoryKey(outside.keySha256);
      if (holder !== undefined && holder !== device.serial) {
        return refuseAttestation(deps, tx, call, authz, order, deviceClass, {
          ok: false, error: new AttestationError('check 1 (x5c[0])', `the birth key of x5c[0] is the birth key of device ${holder}`),
          clone: { reason: 'birth key of another device', otherDevices: [holder], data: { keySha256: outside.keySha256 } },
        });
      }
      await tx.devices.bindFactoryKey(device.serial, outside.keySha256);
      await tx.claims.recordBirth({
        sha256: outside.identity.sha256, deviceSerial: device.serial, manufacturer: outside.manufacturer, der: outside.der, serialHex: outside.identity.serialHex,
        issuerSha256: outside.issuerSha256, path: outside.path, pathDer: outside.pathDer, notBefore: outside.notBefore, notAfter: outside.notAfter, firstAttestedAt: now,
      });
    }
    const move = ORDER_MOVES.attested;
    const ready = await tx.acme.moveOrder(order.id, move.from, move.to, now, {
      attestedSpki: attested.key.spki, attestedBy: attested.attestingCertificate.sha256, replacesClaimed: order.replaces !== null,
      ...(attested.firmware ? { firmware: attested.firmware } : {}),
    });
    if (!ready) throw acmeProblem.malformed('the order is no longer pending');
    const validated = AUTHORIZATION_MOVES.validated;
    const valid = (await tx.acme.moveAuthorization(authz.id, validated.from, validated.to, validated.challenge, now))!;
    // The account matters from its first accepted attestation: only then is it in the audit log.
    const accountEvents: AuditEntry[] = !account.recorded && (await tx.acme.markRecorded(account.id))
      ? [{ action: 'acme.account-created', actor: `acme:${account.id}`, data: { account: account.id, thumbprint: account.thumbprint, createdAt: account.createdAt.toISOString() } }]
      : [];
    return {
      value: { authz: valid, order: ready, problem: undefined as AcmeProblem | undefined },
      events: [...accountEvents, {
        action: 'device.attested', actor: `device:${device.serial}`, device: device.serial,
        data: {
          order: order.id, account: account.id, signCount: attested.signCount, byBirthKey: attested.byBirthKey,
          attestingCertificate: attested.attestingCertificate.serial, ...(outside ? { manufacturer: outside.manufacturer, birthSha256: outside.identity.sha256 } : {}), keySha256: sha256Hex(attested.key.spki), keyType: attested.key.keyType,
          ...(attested.firmware ? { firmware: attested.firmware } : {}), ...(order.replaces ? { replaces: order.replaces } : {}),
        },
      }],
    };
  });
  if (outcome.problem) throw outcome.problem;
  return reply(call, outcome.authz);
};

/** The attestation object, parsed before anything is written: a malformed one is bad input (400), the challenge stays pending. */
function parseAttestation(value: unknown): ParsedAttestation {
  const maxText = Math.ceil((MAX_ATTESTATION_OBJECT * 4) / 3);
  if (typeof value !== 'string' || value.length === 0 || value.length > maxText || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw acmeProblem.malformed(`device-attest-01 needs {"attObj": base64url of at most ${MAX_ATTESTATION_OBJECT} bytes of CBOR}`);
  }
  try {
    return parseDeviceAttestation(Buffer.from(value, 'base64url'));
  } catch (err) {
    if (err instanceof AttestationError) throw acmeProblem.malformed(`the attestation object is malformed: ${err.message}`);
    throw err;
  }
}

type ChallengeOutcome = { authz: AcmeAuthorizationRecord; order: AcmeOrderRecord; problem: AcmeProblem | undefined };

/** Marks the challenge, its authorization and its order invalid with the problem; the events go with it. */
async function invalidate(tx: Store, call: AcmeCall, authz: AcmeAuthorizationRecord, order: AcmeOrderRecord, refusal: Refusal, stored = refusal.problem) {
  const document = stored.document();
  const refused = AUTHORIZATION_MOVES.refused;
  const invalidAuthz = (await tx.acme.moveAuthorization(authz.id, refused.from, refused.to, refused.challenge, call.now, document)) ?? authz;
  const invalidOrder = (await tx.acme.moveOrder(order.id, ORDER_MOVES.invalidated.from, ORDER_MOVES.invalidated.to, call.now, { error: document })) ?? order;
  // The refusal is stored on the challenge and answered as a problem document: badAttestationStatement naming the check, or a 409 fork.
  return { value: { authz: invalidAuthz, order: invalidOrder, problem: refusal.problem } as ChallengeOutcome, events: refusal.events };
}

/**
 * An attestation for a serial no device record has (docs/operators/manufacturers.md): when
 * x5c chains to an active manufacturer, names the serial and its signature
 * verifies, a genuine device that is not ours tried to enroll (grey-market
 * or stolen): refused and audited with the evidence. Otherwise it is an
 * unknown chain, refused and logged.
 */
async function refuseUnclaimed(deps: AcmeDeps, tx: Store, call: AcmeCall, authz: AcmeAuthorizationRecord, order: AcmeOrderRecord, attestation: ParsedAttestation, keyAuthorization: string) {
  for (const manufacturer of await tx.manufacturers.all()) {
    if (manufacturer.status !== 'active' || !manufacturer.active) continue;
    let birth: ValidatedBirth;
    try {
      const { anchors, withdrawn } = trustOf(manufacturer);
      birth = validateBirthChain(attestation.x5c, anchors, call.now, withdrawn);
    } catch {
      continue;
    }
    if (birth.identity.serial !== order.deviceSerial || signatureProblem(attestation, birth.identity.keySpki, keyAuthorization)) continue;
    const problem = new AcmeProblem('badAttestationStatement', 400, `check 1 (claim): device ${order.deviceSerial} of manufacturer ${manufacturer.id} is not claimed by this operator`);
    return invalidate(tx, call, authz, order, {
      problem,
      events: [{
        action: 'device.unclaimed-attestation', actor: `acme:${accountOf(call).id}`, device: order.deviceSerial,
        data: { manufacturer: manufacturer.id, birthCertificateSha256: birth.identity.sha256, birthSerial: birth.identity.serialHex, order: order.id, account: accountOf(call).id },
      }],
    });
  }
  deps.logger.info({ device: order.deviceSerial, order: order.id }, 'attestation of an unknown device refused');
  return invalidate(tx, call, authz, order, { problem: new AcmeProblem('badAttestationStatement', 400, `check 1 (chain): x5c[0] does not chain to a registered manufacturer, or does not name device ${order.deviceSerial}`), events: [] });
}

async function refuseAttestation(
  deps: AcmeDeps, tx: Store, call: AcmeCall, authz: AcmeAuthorizationRecord, order: AcmeOrderRecord, deviceClass: DeviceClassRecord,
  outcome: Extract<AttestationOutcome, { ok: false }>,
) {
  const { check, detail } = outcome.error;
  const problem = new AcmeProblem('badAttestationStatement', 400, `${check}: ${detail}`);
  const events: AuditEntry[] = [];
  if (outcome.clone) {
    const actor = `acme:${accountOf(call).id}`;
    events.push(...cloneSignalEvents([order.deviceSerial, ...outcome.clone.otherDevices], actor, {
      reason: outcome.clone.reason, check, detail, order: order.id, account: accountOf(call).id, ...outcome.clone.data,
    }));
  }
  deps.logger.info({ device: order.deviceSerial, order: order.id, check }, 'attestation refused');
  const refused = await invalidate(tx, call, authz, order, { problem, events });
  // Suspension (which also ends the device's other orders) after this order took its own refusal.
  if (outcome.clone && deviceClass.onCloneSignal === 'suspend') {
    const suspended = await moveDevice(tx, order.deviceSerial, 'clone-suspend', 'system', call.now).catch(() => undefined);
    if (suspended) events.push({ action: 'device.suspended', actor: 'system', device: order.deviceSerial, data: { reason: 'clone signal', class: deviceClass.name, from: suspended.from } });
  }
  return refused;
}
