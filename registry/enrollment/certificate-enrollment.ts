import { randomBytes } from 'node:crypto';
import { spkiOfIssuedCertificate } from '../../ca/certificate-der.ts';
import { sha256Hex } from '../../ca/digest.ts';
import { DomainError } from '../../errors/domain-error.ts';
import { verifyCsr, type VerifiedCsr } from '../../pki/csr.ts';
import { LOCKS } from '../../store/locks.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import { StoreNotFoundError, type CertificateRecord, type DeviceClassRecord, type DeviceRecord, type FirmwareReport } from '../../store/types.ts';
import type { AttestationChallenge, AttestationEvidence } from '../../pki/attestation/format.ts';
import { attest } from './attest.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { updatePathDecision } from '../firmware/update-path.ts';
import { mayEnroll } from '../lifecycle/device-states.ts';
import { namedSerial } from './csr-policy.ts';
import { enrollmentError } from './errors.ts';
import { enrollThroughGateway, type RelayedAttestation } from './gateway-enrollment.ts';
import { issue, type IssueDeps } from './issue.ts';
import { replaceRefusal } from './replaces.ts';
import type { AttestationBasis, CertificateEnrollment, EnrollmentLog, Requester } from './types.ts';

/**
 * An enrollment a device authenticates with one of its certificates (its key
 * proved by the channel: a TLS client certificate), in place of an
 * attestation: `birth` is a first enrollment (or a factory re-attestation)
 * by the birth certificate, `operational` a re-enrollment by the device's
 * newest operational certificate.
 */
export interface CertificateEnrollmentRequest {
  basis: 'birth' | 'operational';
  /** DER of the certificate the device authenticated with. */
  certificate: Buffer;
  /** The CSR, base64url DER. */
  csr: string;
  /** CSR attribute types the front end checks itself (EST: challengePassword), and its check: why it refuses the CSR, or undefined. */
  frontEndAttributes: readonly string[];
  frontEndCheck: (csr: VerifiedCsr) => string | undefined;
  /** The device class the request was addressed to, when the protocol names one (EST's label). */
  className?: string;
  /** Whether the device's class lets it use this protocol; the refusal's reason when not. */
  classRefusal: (deviceClass: DeviceClassRecord) => string | undefined;
  /** Who asks, for the audit log: the protocol and what it names of the request. */
  requester: Pick<Requester, 'data'>;
  now: Date;
  /**
   * The device's own attestation in its CSR (EST: id-aa-attestation), with
   * what it is bound to: the firmware evidence a model with releases needs
   * (check 5). A DomainError when it is malformed; undefined without one.
   */
  evidence?: (csr: VerifiedCsr) => { evidence: AttestationEvidence; challenge: AttestationChallenge } | DomainError | undefined;
  /** A gateway's CSR for a device behind it: the device's relayed attestation the CSR carries, if any (EST: id-aa-attestation). */
  relayed?: (csr: VerifiedCsr, serial: string) => RelayedAttestation | undefined;
}

export type { CertificateEnrollment };

/** A retry's certificate, or why the device is refused and the events that record it (every refusal of an authenticated device is audited). */
type Checked = { retry?: CertificateRecord; firmware?: FirmwareReport | null; events?: AuditEntry[] } | { error: DomainError; events: AuditEntry[] };

const forbidden = (detail: string) => new DomainError('forbidden', detail);

/**
 * The registration authority for a device that authenticated with its
 * certificate: the certificate is one this CA issued (its exact DER is in
 * the certificate table, which only the issuance pipeline writes, so no
 * chain needs building and no default CA list plays a part) and fits the
 * request; then in the device's audited transaction its class, state and
 * certificate are checked, a retry with the same key gets the certificate
 * already issued, a second successor of one certificate is a lineage fork,
 * and issuance is `issue` (issue.ts), as ACME's finalize, whose basis is the
 * authenticating certificate. A refusal of a device that proved its key
 * is audited with its reason; one of an unknown certificate, or of a class
 * that does not allow the protocol, is only logged.
 */
export async function enrollWithCertificate(deps: IssueDeps & { log: EnrollmentLog }, request: CertificateEnrollmentRequest): Promise<CertificateEnrollment> {
  const { basis, now } = request;
  const presented = await deps.store.certificates.bySha256(sha256Hex(request.certificate));
  // An operational certificate with a CSR for another device: a gateway enrolling a device behind it (gateway-enrollment.ts).
  if (presented?.deviceSerial && presented.kind === 'operational') {
    const forOther = gatewayCsr(request, presented.deviceSerial);
    if (forOther) {
      const { relayed, ...common } = request;
      const attestation = relayed?.(forOther.csr, forOther.serial);
      return enrollThroughGateway(deps, { ...common, gateway: presented, serial: forOther.serial, csrVerified: forOther.csr, ...(attestation ? { relayed: attestation } : {}) });
    }
  }
  if (!presented?.deviceSerial || presented.kind !== basis) {
    deps.log.info({ basis, presented: presented?.kind ?? 'unknown' }, `certificate enrollment refused: the certificate is not a device's ${basis} certificate`);
    const which = basis === 'birth' ? 'the device\'s birth certificate from this CA' : 'the device\'s newest operational certificate';
    return { ok: false, error: forbidden(`the client certificate must be ${which}`) };
  }
  const serial = presented.deviceSerial;
  // A class that does not allow the protocol (or is not the one the request names) is refused before anything is written:
  // with the protocol off for a class, its devices cannot fill the audit log through it. Checked again under the lock.
  const classProblem = await deps.store.devices.getWithClass(serial).then(({ deviceClass }) => classRefusal(request, serial, deviceClass), (err: unknown) => {
    if (err instanceof StoreNotFoundError) return `no device ${serial}`;
    throw err;
  });
  if (classProblem) {
    deps.log.info({ device: serial, basis }, 'certificate enrollment refused: the class does not allow it');
    return { ok: false, error: forbidden(classProblem) };
  }
  const id = `cert-${randomBytes(12).toString('base64url')}`;
  const actor = `device:${serial}`;
  const refusalEvent = (error: DomainError): AuditEntry => ({
    action: 'device.enrollment-refused', actor, device: serial,
    data: { order: id, ...request.requester.data, basis, certificateSerial: presented.serial, reason: error.detail, kind: error.kind, ...(error.code ? { code: error.code } : {}) },
  });
  const csr = checkedCsr(request);
  if (csr instanceof DomainError) {
    await deps.audit.recordAlone(deps.store, refusalEvent(csr));
    return { ok: false, error: csr };
  }
  const key = csr.publicKey.spki;
  const evidence = request.evidence?.(csr);
  if (evidence instanceof DomainError) {
    await deps.audit.recordAlone(deps.store, refusalEvent(evidence));
    return { ok: false, error: evidence };
  }
  const checked = await deps.audit.record<Checked>(deps.store, async (tx) => {
    const found = await check(tx, request, presented, key, id, evidence && { ...evidence, log: deps.log });
    return 'error' in found ? { value: found, events: [...found.events, refusalEvent(found.error)] } : { value: found, events: found.events ?? [] };
  });
  if ('error' in checked) return { ok: false, error: checked.error };
  if (checked.retry) return { ok: true, certificate: checked.retry, reissued: true };
  const issued = await issue(deps, {
    pending: { id, serial, replaces: basis === 'operational' ? presented.serial : null },
    basis: { spki: key, attestedBy: presented.sha256, firmware: checked.firmware ?? null },
    csr: request.csr, frontEndAttributes: request.frontEndAttributes,
    requester: { actor, data: { ...request.requester.data, basis, clientCertificate: presented.serial } },
    now,
  }, async (tx, certificate) => {
    // The birth key was proved now: check 6 (factory re-attestation) counts from here, as after an ACME attestation by the birth key.
    if (basis === 'birth') await tx.devices.markFactoryAttested(serial, now);
    return certificate;
  });
  if (!issued.ok) {
    await deps.audit.recordAlone(deps.store, ...issued.events, refusalEvent(issued.error));
    return { ok: false, error: issued.error };
  }
  return { ok: true, certificate: issued.value, reissued: false };
}

/** The CSR and the serial it names, when that is another device than the client certificate's; a CSR that does not verify is the direct path's to refuse. */
function gatewayCsr(request: CertificateEnrollmentRequest, clientSerial: string): { csr: VerifiedCsr; serial: string } | undefined {
  let csr: VerifiedCsr;
  try {
    csr = verifyCsr(request.csr);
  } catch {
    return undefined;
  }
  const serial = namedSerial(csr);
  return serial !== undefined && serial !== clientSerial ? { csr, serial } : undefined;
}

/** The CSR verified and passed by the front end's check (EST: the channel binding), or the badCSR that refuses it; issue checks its names. */
function checkedCsr(request: CertificateEnrollmentRequest): VerifiedCsr | DomainError {
  let csr: VerifiedCsr;
  try {
    csr = verifyCsr(request.csr);
  } catch (err) {
    if (err instanceof DomainError) return enrollmentError.badCsr(err.detail);
    throw err;
  }
  const problem = request.frontEndCheck(csr);
  return problem === undefined ? csr : enrollmentError.badCsr(problem);
}

/** Why the device's class refuses the request: not the class the request names, or one that does not allow the protocol. */
function classRefusal(request: CertificateEnrollmentRequest, serial: string, deviceClass: DeviceClassRecord): string | undefined {
  if (request.className !== undefined && request.className !== deviceClass.name) return `device ${serial} is of class ${deviceClass.name}, not ${request.className}`;
  return request.classRefusal(deviceClass);
}

/**
 * Under the device's lock: the class the request names and allows the
 * protocol, the device may enroll, the authenticating certificate is live
 * and current, the key is new; a retry of an enrollment already issued
 * (same certificate, same key) is answered with its certificate.
 */
async function check(
  tx: EnrollmentStore, request: CertificateEnrollmentRequest, presented: CertificateRecord, key: Buffer, id: string,
  evidence?: { evidence: AttestationEvidence; challenge: AttestationChallenge; log: EnrollmentLog },
): Promise<Checked> {
  const serial = presented.deviceSerial!;
  const refuse = (error: DomainError, events: AuditEntry[] = []): Checked => ({ error, events });
  await tx.lock(LOCKS.device(serial));
  const found = await tx.devices.getForAttestation(serial).catch((err: unknown) => {
    if (err instanceof StoreNotFoundError) return undefined;
    throw err;
  });
  if (!found) return refuse(forbidden(`no device ${serial}`));
  const { device, deviceClass, firmware: firmwareState } = found;
  const notAllowed = classRefusal(request, serial, deviceClass);
  if (notAllowed) return refuse(forbidden(notAllowed));
  if (!mayEnroll(device.state)) return refuse(enrollmentError.rejectedIdentifier(`device ${serial} is ${device.state}: enrollment and renewal are refused`));
  if (device.reprovisionAllowed) return refuse(forbidden(`device ${serial} is being reprovisioned and waits for its new birth certificate`));
  if (presented.revokedAt) return refuse(forbidden(`the ${presented.kind} certificate ${presented.serial} is revoked`));
  if (request.basis === 'birth' && presented.keySha256 !== device.factoryKeySha256) return refuse(forbidden('the client certificate is not the device\'s current birth certificate'));
  // Every rotation has a new key (RFC 7030 4.2.2's renewal with the same key is refused).
  if (sha256Hex(key) === presented.keySha256 || key.equals(spkiOfIssuedCertificate(presented.der))) return refuse(enrollmentError.badCsr('the CSR carries the key of the client certificate: every enrollment needs a new key'));
  const retry = await retryOf(tx, presented, device, sha256Hex(key), request.now);
  if (retry) return { retry };
  // The device's own attestation (its firmware evidence): every check of a direct one, bound to this session; else no
  // firmware is reported, and a model with a firmware policy (releases or an allowlist) is refused here.
  let attested: { firmware: FirmwareReport | null; events: AuditEntry[] } = { firmware: null, events: [] };
  if (evidence) {
    const decided = await attest<AttestationBasis | undefined>(tx, evidence.log, {
      pending: { id, serial, replaces: null }, evidence: evidence.evidence, challenge: evidence.challenge, now: request.now,
      requester: { actor: `device:${serial}`, data: request.requester.data },
    }, { accepted: async (_tx, basis) => ({ value: basis, events: [] }), refused: async () => undefined });
    if (decided.error || !decided.value) return refuse(decided.error ?? forbidden('the attestation was refused'), decided.events);
    if (!decided.value.spki.equals(key)) return refuse(enrollmentError.badCsr('the CSR key is not the key its attestation attests'), decided.events);
    attested = { firmware: decided.value.firmware, events: decided.events };
  } else {
    const firmware = updatePathDecision(firmwareState, null, request.now);
    if (!firmware.ok) return refuse(enrollmentError.badAttestation('check 5 (firmware)', `${firmware.detail}; over EST the CSR carries the attestation (id-aa-attestation)`));
  }
  if (request.basis === 'birth') return attested;
  // A successor of this certificate already exists (another key): a lineage fork, as ACME's `replaces`.
  const fork = await replaceRefusal(tx, presented, device, id, `device:${serial}`, request.now);
  if (fork) return refuse(fork.error, fork.events);
  if (presented.notAfter <= request.now) return refuse(forbidden(`the operational certificate expired at ${presented.notAfter.toISOString()}`));
  const every = deviceClass.factoryReattestEverySeconds * 1000;
  if (!device.factoryAttestedAt || request.now.getTime() - device.factoryAttestedAt.getTime() >= every) {
    return refuse(forbidden(`check 6 (factory re-attestation): the device last proved its birth key ${device.factoryAttestedAt?.toISOString() ?? 'never'}; class ${deviceClass.name} requires it every ${deviceClass.factoryReattestEverySeconds} s: enroll with the birth certificate`));
  }
  return attested;
}

/**
 * The certificate an earlier request with this certificate and this key got
 * (the answer was lost): the device's live, newest operational certificate
 * of that key, succeeding the client certificate (a re-enrollment) or any
 * certificate (an enrollment by the birth certificate, which proves the
 * device as much as it did then). Nothing is issued again.
 */
async function retryOf(tx: EnrollmentStore, presented: CertificateRecord, device: DeviceRecord, keySha256: string, now: Date): Promise<CertificateRecord | undefined> {
  const issued = await tx.certificates.operationalWithKey(keySha256);
  if (!issued || issued.deviceSerial !== device.serial || issued.revokedAt || issued.notAfter <= now) return undefined;
  if (presented.kind === 'operational' && issued.predecessorSha256 !== presented.sha256) return undefined;
  const newest = await tx.certificates.newestOfDevice(device.serial, 'operational');
  return newest?.serial === issued.serial ? issued : undefined;
}
