import { sha256Hex } from '../../ca/digest.ts';
import type { DomainError } from '../../errors/domain-error.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import { LOCKS } from '../../store/locks.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import { StoreNotFoundError, type DeviceClassRecord } from '../../store/types.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { cloneSignalEvents } from '../reports/clone-signals.ts';
import { mayEnroll, moveDevice } from '../lifecycle/device-states.ts';
import { acceptSignCount, verifyAttestation, type AttestationOutcome } from './attestation-checks.ts';
import { hardwareModuleProblem } from './device-name.ts';
import { enrollmentError } from './errors.ts';
import { replaceRefusal } from './replaces.ts';
import type { AttestRequest, AttestationBasis, EnrollmentLog } from './types.ts';
import { refuseUnclaimed } from './unclaimed.ts';

/**
 * Where the front end keeps its pending enrollment, written in the RA's
 * transaction: `accepted` binds it to the basis (false: it is no longer
 * pending), `refused` stores the refusal; it is called before a clone
 * signal suspends the device, which ends the device's other pending
 * enrollments.
 */
export interface AttestRecorder<T> {
  accepted(tx: EnrollmentStore, basis: AttestationBasis): Promise<{ value: T; events: AuditEntry[] }>;
  refused(tx: EnrollmentStore, error: DomainError): Promise<T>;
}

export type Attestation<T> = { value: T; error?: DomainError; events: AuditEntry[] };

/**
 * The attestation of a pending enrollment, decided in the caller's audited
 * transaction under the device's lock (docs/device-makers/protocol.md):
 * the device may enroll, its class accepts the format, the checks pass, a
 * `replaces` claim is taken and the counter advanced last; a device born
 * elsewhere has its birth certificate recorded. A refusal is returned with
 * its events (clone signals, lineage forks) and, by the class's policy, the
 * device suspended.
 */
export async function attest<T>(tx: EnrollmentStore, log: EnrollmentLog, request: AttestRequest, recorder: AttestRecorder<T>): Promise<Attestation<T>> {
  const { pending, evidence, challenge, now } = request;
  await tx.lock(LOCKS.device(pending.serial));
  // One query for the device, its class and its model's firmware allowlist; no device at all is an enrollment for a serial nobody claimed.
  const found = await tx.devices.getForAttestation(pending.serial).catch((err: unknown) => {
    if (err instanceof StoreNotFoundError) return undefined;
    throw err;
  });
  if (!found) {
    const refusal = await refuseUnclaimed(tx, log, request);
    return { value: await recorder.refused(tx, refusal.error), error: refusal.error, events: refusal.events };
  }
  const { device, deviceClass, firmware, tpmBorn } = found;
  const refuse = (outcome: Extract<AttestationOutcome, { ok: false }>) => refuseAttestation(tx, log, request, deviceClass, outcome, recorder);
  if (!mayEnroll(device.state)) return refuse(stateRefusal(`device ${device.serial} is ${device.state}: enrollment and renewal are refused`));
  const verified = await verifyAttestation(tx, { device, deviceClass, challenge, evidence, firmware, tpmBorn, now });
  if (!verified.ok) return refuse(verified);
  // draft-ietf-acme-device-attest-09 section 5 step 3: the birth certificate attested names the hardware module ordered.
  if (pending.name?.type === 'hardware-module') {
    const problem = await hardwareModuleProblem(tx, device, evidence, verified.attested, pending.name);
    if (problem) return refuse({ ok: false, error: problem });
  }
  // The claim before the counter: of two enrollments racing to replace one certificate, the second is a fork whatever its count.
  if (pending.replaces) {
    const replaced = (await tx.certificates.find(pending.replaces))!;
    const refusal = await replaceRefusal(tx, replaced, device, pending.id, `device:${device.serial}`, now);
    if (refusal) return { value: await recorder.refused(tx, refusal.error), error: refusal.error, events: refusal.events };
  }
  const counted = await acceptSignCount(tx, device, verified.attested, now);
  if (!counted.ok) return refuse(counted);
  const { attested } = counted;
  const outside = attested.outsideBirth;
  if (outside) {
    // One birth key, one device: a key another device already showed is a clone signal.
    const holder = await tx.devices.serialWithFactoryKey(outside.keySha256);
    if (holder !== undefined && holder !== device.serial) {
      return refuse({
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
  const basis: AttestationBasis = { spki: attested.key.spki, attestedBy: attested.attestingCertificate.sha256, firmware: attested.firmware };
  const { value, events } = await recorder.accepted(tx, basis);
  return {
    value,
    events: [...events, {
      action: 'device.attested', actor: `device:${device.serial}`, device: device.serial,
      data: {
        order: pending.id, ...request.requester.data, fmt: attested.fmt, signCount: attested.signCount, byBirthKey: attested.byBirthKey,
        attestingCertificate: attested.attestingCertificate.serial, ...(outside ? { manufacturer: outside.manufacturer, birthSha256: outside.identity.sha256 } : {}),
        keySha256: sha256Hex(attested.key.spki), keyType: attested.key.keyType,
        ...(attested.firmware ? { firmware: attested.firmware } : {}), ...(pending.replaces ? { replaces: pending.replaces } : {}),
      },
    }],
  };
}

const stateRefusal = (detail: string): Extract<AttestationOutcome, { ok: false }> => ({ ok: false, error: new AttestationError('device state', detail) });

/**
 * A failed check: badAttestation naming it; a clone signal is audited for
 * every device it concerns, and suspends the device when its class says so;
 * so does a signed attestation on a withdrawn release (onWithdrawnFirmware).
 * Both rest on an attestation whose signature verified (check 3): nothing
 * an unauthenticated request sends changes the device's state.
 */
async function refuseAttestation<T>(
  tx: EnrollmentStore, log: EnrollmentLog, request: AttestRequest, deviceClass: DeviceClassRecord, outcome: Extract<AttestationOutcome, { ok: false }>, recorder: AttestRecorder<T>,
): Promise<Attestation<T>> {
  const { pending, requester, now } = request;
  const { check, detail } = outcome.error;
  const error = enrollmentError.badAttestation(check, detail);
  const events: AuditEntry[] = [];
  if (outcome.clone) {
    events.push(...cloneSignalEvents([pending.serial, ...outcome.clone.otherDevices], requester.actor, {
      reason: outcome.clone.reason, check, detail, order: pending.id, ...requester.data, ...outcome.clone.data,
    }));
  }
  log.info({ device: pending.serial, order: pending.id, check }, 'attestation refused');
  const value = await recorder.refused(tx, error);
  // Suspension (which also ends the device's other pending enrollments) after this one took its own refusal.
  if (outcome.clone && deviceClass.onCloneSignal === 'suspend') {
    const suspended = await moveDevice(tx, pending.serial, 'clone-suspend', 'system', now).catch(() => undefined);
    if (suspended) events.push({ action: 'device.suspended', actor: 'system', device: pending.serial, data: { reason: 'clone signal', class: deviceClass.name, from: suspended.from } });
  }
  const withdrawn = outcome.withdrawnFirmware;
  if (withdrawn && deviceClass.onWithdrawnFirmware === 'suspend') {
    const suspended = await moveDevice(tx, pending.serial, 'firmware-suspend', 'system', now).catch(() => undefined);
    if (suspended) {
      events.push({
        action: 'device.suspended', actor: 'system', device: pending.serial,
        data: { reason: 'withdrawn firmware', class: deviceClass.name, from: suspended.from, order: pending.id, firmware: withdrawn },
      });
    }
  }
  return { value, error, events };
}
