import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../ca/digest.ts';
import { DomainError } from '../../errors/domain-error.ts';
import type { VerifiedCsr } from '../../pki/csr.ts';
import { LOCKS } from '../../store/locks.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import { StoreNotFoundError, type CertificateRecord } from '../../store/types.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { updatePathDecision } from '../firmware/update-path.ts';
import { mayEnroll } from '../lifecycle/device-states.ts';
import { enrollmentError } from './errors.ts';
import { gatewayProblem } from './gateway-check.ts';
import { issue, type IssueDeps } from './issue.ts';
import type { AttestationBasis, CertificateEnrollment, CertificateRequestCommon, EnrollmentLog, GatewayPath } from './types.ts';

/**
 * What a relayed attestation established (relayed-attestation.ts): checked
 * in the gateway's transaction by `attest`, it becomes the basis of a direct
 * (attested) certificate with the gateway as its path.
 */
export interface RelayedAttestation {
  /** Runs the attestation's checks under the device's lock; the basis it proved, or the refusal and its events. */
  check(tx: EnrollmentStore, gateway: GatewayPath): Promise<{ basis: AttestationBasis; events: AuditEntry[] } | { error: DomainError; events: AuditEntry[] }>;
}

export interface GatewayEnrollmentRequest extends CertificateRequestCommon {
  /** The gateway's certificate it authenticated with (its exact DER is ours: looked up by the caller). */
  gateway: CertificateRecord;
  /** The device the CSR names. */
  serial: string;
  csrVerified: VerifiedCsr;
  /** The device's attestation the CSR carries, when it has one (relayed); else the device is mediated. */
  relayed?: RelayedAttestation;
}

type Checked = { retry?: CertificateRecord; basis?: AttestationBasis; events?: AuditEntry[] } | { error: DomainError; events: AuditEntry[] };

const forbidden = (detail: string) => new DomainError('forbidden', detail);

/**
 * A gateway enrolls a device behind it (RFC 7030 3.7, docs/operators/gateways.md):
 * the gateway is active, of a gateway class that mediates the device's
 * model, authenticated by its newest live operational certificate, and
 * named in the device's declaration; the device's class allows EST and the
 * device may enroll. With a relayed attestation the certificate is
 * `attested` (the gateway its path); without one only a device without a
 * factory key is enrolled, `mediated` (the gateway its mediator). Every
 * refusal is audited, on the device when it exists, else on the gateway.
 */
export async function enrollThroughGateway(deps: IssueDeps & { log: EnrollmentLog }, request: GatewayEnrollmentRequest): Promise<CertificateEnrollment> {
  const { gateway: presented, serial, now } = request;
  const gatewaySerial = presented.deviceSerial!;
  const relayed = request.relayed !== undefined;
  const path: GatewayPath = { serial: gatewaySerial, certificateSha256: presented.sha256, assurance: relayed ? 'attested' : 'mediated' };
  const id = `gw-${randomBytes(12).toString('base64url')}`;
  const actor = `device:${gatewaySerial}`;
  let known = false;
  const refusalEvent = (error: DomainError): AuditEntry => ({
    action: 'device.enrollment-refused', actor, device: known ? serial : gatewaySerial,
    data: {
      order: id, ...request.requester.data, basis: 'gateway', gateway: gatewaySerial, gatewayCertificateSerial: presented.serial, device: serial,
      assurance: path.assurance, reason: error.detail, kind: error.kind, ...(error.code ? { code: error.code } : {}),
    },
  });
  const key = request.csrVerified.publicKey.spki;
  const checked = await deps.audit.record<Checked>(deps.store, async (tx) => {
    const found = await check(tx, request, path, key, (k) => { known = k; });
    return 'error' in found ? { value: found, events: [...found.events, refusalEvent(found.error)] } : { value: found, events: found.events ?? [] };
  });
  if ('error' in checked) return { ok: false, error: checked.error };
  if (checked.retry) return { ok: true, certificate: checked.retry, reissued: true };
  const basis: AttestationBasis = checked.basis ?? { spki: key, attestedBy: null, firmware: null, gateway: path };
  const issued = await issue(deps, {
    pending: { id, serial, replaces: null },
    basis,
    csr: request.csr, frontEndAttributes: request.frontEndAttributes,
    requester: { actor, data: { ...request.requester.data, basis: 'gateway', gateway: gatewaySerial, gatewayCertificate: presented.serial } },
    now,
  }, async (_tx, certificate) => certificate);
  if (!issued.ok) {
    await deps.audit.recordAlone(deps.store, ...issued.events, refusalEvent(issued.error));
    return { ok: false, error: issued.error };
  }
  return { ok: true, certificate: issued.value, reissued: false };
}

/** Under the gateway's then the device's lock: every rule of a gateway enrollment, the relayed attestation's checks, or a retry. */
async function check(tx: EnrollmentStore, request: GatewayEnrollmentRequest, path: GatewayPath, key: Buffer, seen: (known: boolean) => void): Promise<Checked> {
  const refuse = (error: DomainError, events: AuditEntry[] = []): Checked => ({ error, events });
  const gatewayRefusal = await gatewayProblem(tx, path, request.now);
  // Refused here, the event still goes to the device named, when there is one.
  if (gatewayRefusal) {
    seen((await tx.devices.find(request.serial)) !== undefined);
    return refuse(forbidden(gatewayRefusal));
  }
  const { deviceClass: gatewayClass } = await tx.devices.getWithClass(path.serial);
  const { serial } = request;
  await tx.lock(LOCKS.device(serial));
  const found = await tx.devices.getForAttestation(serial).catch((err: unknown) => {
    if (err instanceof StoreNotFoundError) return undefined;
    throw err;
  });
  if (!found) return refuse(forbidden(`no device ${serial}`));
  seen(true);
  const { device, deviceClass, firmware } = found;
  if (!gatewayClass.gateway!.models.includes(device.model)) return refuse(forbidden(`gateway ${path.serial} (class ${gatewayClass.name}) does not mediate model ${device.model}`));
  if (!(await tx.gateways.gatewaysOf(serial)).includes(path.serial)) return refuse(forbidden(`device ${serial} is not declared with gateway ${path.serial}: an operator names its gateways (POST /operator/v1/devices)`));
  if (request.className !== undefined && request.className !== deviceClass.name) return refuse(forbidden(`device ${serial} is of class ${deviceClass.name}, not ${request.className}`));
  const notAllowed = request.classRefusal(deviceClass);
  if (notAllowed) return refuse(forbidden(notAllowed));
  if (!mayEnroll(device.state)) return refuse(enrollmentError.rejectedIdentifier(`device ${serial} is ${device.state}: enrollment and renewal are refused`));
  if (device.reprovisionAllowed) return refuse(forbidden(`device ${serial} is being reprovisioned and waits for its new birth certificate`));
  const retry = await retryOf(tx, serial, sha256Hex(key), request.now);
  if (retry) return { retry };
  if (request.relayed) {
    const relayed = await request.relayed.check(tx, path);
    return 'error' in relayed ? refuse(relayed.error, relayed.events) : { basis: relayed.basis, events: relayed.events };
  }
  // A device with a factory key proves it: mediation stands in only for a device that has none.
  const claim = await tx.claims.find(serial);
  if (device.factoryKeySha256 !== null || claim) {
    return refuse(forbidden(`device ${serial} has a factory key: it attests through the gateway (POST nonce, then the attestation in the CSR), it is not mediated`));
  }
  const decision = updatePathDecision(firmware, null, request.now);
  if (!decision.ok) return refuse(enrollmentError.badAttestation('check 5 (firmware)', `${decision.detail}; a mediated device reports no firmware`));
  return {};
}

/** The live, newest certificate of this device and key: a retry whose answer was lost gets it again. */
async function retryOf(tx: EnrollmentStore, serial: string, keySha256: string, now: Date): Promise<CertificateRecord | undefined> {
  const issued = await tx.certificates.operationalWithKey(keySha256);
  if (!issued || issued.deviceSerial !== serial || issued.revokedAt || issued.notAfter <= now) return undefined;
  const newest = await tx.certificates.newestOfDevice(serial, 'operational');
  return newest?.serial === issued.serial ? issued : undefined;
}
