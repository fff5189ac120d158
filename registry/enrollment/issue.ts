import type { Hierarchy } from '../../ca/hierarchy.ts';
import type { IssuanceService } from '../../ca/issuance.ts';
import { operationalProfile } from '../../ca/profiles.ts';
import { DomainError } from '../../errors/domain-error.ts';
import type { VerifiedCsr } from '../../pki/csr.ts';
import { LOCKS } from '../../store/locks.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import { StoreConflictError, type CertificateRecord } from '../../store/types.ts';
import type { AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { moveDevice } from '../lifecycle/device-states.ts';
import { basisProblem, predecessorOf } from './basis.ts';
import { checkCsr } from './csr-policy.ts';
import { enrollmentError } from './errors.ts';
import type { AttestationBasis, PendingEnrollment, Requester } from './types.ts';

/** What issuance is built from (the ACME front end's deps satisfy it). */
export interface IssueDeps {
  store: EnrollmentStore;
  audit: AuditLog;
  issuance: IssuanceService;
  hierarchy: Hierarchy;
  identity: { trustDomain: string; httpBaseUrl: string };
  predecessorOid?: string;
}

export interface IssueRequest {
  pending: PendingEnrollment;
  /** What the accepted attestation established (the front end kept it). */
  basis: AttestationBasis;
  /** The certificate request, base64url DER. */
  csr: string;
  /** CSR attribute types the front end checked itself (csr-policy.ts), such as EST's challengePassword. */
  frontEndAttributes?: readonly string[];
  requester: Requester;
  now: Date;
}

/** The front end's pending enrollment completed in the issuance transaction (it may throw to roll everything back). */
export type IssueRecorder<T> = (tx: EnrollmentStore, certificate: CertificateRecord) => Promise<T>;

/** Issued, or refused with the events the front end records with its refusal (a lineage fork). */
export type Issuance<T> = { ok: true; value: T } | { ok: false; error: DomainError; events: AuditEntry[] };

/** The unique index that keeps one operational key to one certificate. */
const ONE_KEY_INDEX = 'certificates_one_operational_key';

/**
 * An operational certificate for an attested pending enrollment
 * (docs/reference/certificates.md): the CSR carries the attested key and
 * names at most the device; under the device's lock what the attestation
 * rested on still holds; then the certificate (the class's TTL and
 * serverAuth, its predecessor), the device (active), its firmware lineage,
 * the front end's record and the audit event commit together.
 */
export async function issue<T>(deps: IssueDeps, request: IssueRequest, recorder: IssueRecorder<T>): Promise<Issuance<T>> {
  const { pending, basis, requester, now } = request;
  const serial = pending.serial;
  let csr: VerifiedCsr;
  try {
    csr = checkCsr(request.csr, basis.spki, serial, request.frontEndAttributes, pending.name);
  } catch (err) {
    if (err instanceof DomainError) return { ok: false, error: err, events: [] };
    throw err;
  }
  const actor = `device:${serial}`;
  try {
    return await deps.audit.record<Issuance<T>>(deps.store, async (tx) => {
      // A gateway's lock first, as everywhere (gateway-check.ts): revoking it waits for this certificate, then revokes it too.
      if (basis.gateway) await tx.lock(LOCKS.device(basis.gateway.serial));
      await tx.lock(LOCKS.device(serial));
      const { device, deviceClass } = await tx.devices.getWithClass(serial);
      // Under the device's lock: what the attestation rested on may have changed since (revocation, reprovisioning, a state change).
      const stale = await basisProblem(tx, basis, device, now);
      if (stale) return { value: { ok: false, error: stale, events: [] }, events: [] };
      const predecessor = await predecessorOf(tx, pending);
      // Staged trust escalation (docs/operators/gateways.md): an attested certificate after a mediated one raises the device.
      const raised = pending.replaces === null && basis.gateway?.assurance !== 'mediated' && await tx.gateways.newestIsMediated(serial);
      const issuer = deps.hierarchy.operational;
      const profile = operationalProfile({ issuer, spki: csr.publicKey.spki, baseUrl: deps.identity.httpBaseUrl, now }, {
        serial, ...(pending.name ? { name: pending.name } : {}), trustDomain: deps.identity.trustDomain, ttlMs: deviceClass.ttlSeconds * 1000, serverAuth: deviceClass.serverAuth,
        ...(predecessor ? { predecessorSha256: Buffer.from(predecessor.sha256, 'hex') } : {}), ...(deps.predecessorOid ? { predecessorOid: deps.predecessorOid } : {}),
        ...(basis.gateway?.assurance === 'mediated' ? { assurance: 'mediated' as const } : {}),
      });
      const certificate = await deps.issuance.issue(tx, { issuer, profile, deviceSerial: serial, predecessorSha256: predecessor?.sha256 ?? null });
      await moveDevice(tx, serial, 'enroll', 'device', now, device);
      if (basis.firmware) await tx.firmware.insert({ deviceSerial: serial, ...basis.firmware, certificateSerial: certificate.record.serial, attestedAt: now });
      // The floor of the device's next check 5 (it never goes back below a release it ran), and the release the console counts it on.
      if (basis.firmware) await tx.devices.recordFirmwareRelease(serial, basis.firmware.release ? { version: basis.firmware.version, sequence: basis.firmware.release.sequence } : null);
      // The gateway's part, beside the certificate (append-only): the mediator of its lineage, or the path of a relayed attestation.
      if (basis.gateway) {
        await tx.gateways.insertPath({
          certificateSerial: certificate.record.serial, deviceSerial: serial, gatewaySerial: basis.gateway.serial,
          gatewayCertificateSha256: basis.gateway.certificateSha256, assurance: basis.gateway.assurance, createdAt: now,
        });
      }
      const value = await recorder(tx, certificate.record);
      return {
        value: { ok: true, value },
        events: [{
          action: predecessor === null || predecessor.kind === 'birth' ? 'device.enrolled' : 'device.renewed', actor, device: serial,
          data: {
            order: pending.id, ...requester.data, certificateSerial: certificate.record.serial, certificateSha256: certificate.record.sha256,
            issuer: issuer.slug, notAfter: certificate.record.notAfter.toISOString(), class: deviceClass.name,
            predecessorSerial: predecessor?.serial ?? null, predecessorSha256: predecessor?.sha256 ?? null, predecessorKind: predecessor?.kind ?? 'none',
            ...(pending.replaces ? { replaces: pending.replaces } : {}), ...(basis.firmware ? { firmware: basis.firmware } : {}),
            ...(basis.gateway ? {
              assurance: basis.gateway.assurance,
              [basis.gateway.assurance === 'mediated' ? 'mediator' : 'gateway']: { serial: basis.gateway.serial, certificateSha256: basis.gateway.certificateSha256 },
            } : {}),
          },
        }, ...(raised ? [{
          action: 'device.assurance-raised', actor, device: serial,
          data: { from: 'mediated', to: 'attested', certificateSerial: certificate.record.serial, attestedBy: basis.attestedBy, ...(basis.gateway ? { gateway: basis.gateway.serial } : {}) },
        }] : [])],
      };
    });
  } catch (err) {
    if (!(err instanceof StoreConflictError)) throw err;
    // Another device's enrollment certified this key first (the device locks are per device: the index settles it).
    if (err.constraint === ONE_KEY_INDEX) return { ok: false, error: enrollmentError.badCsr('the key is certified for another device: every operational certificate has a key of its own'), events: [] };
    // The unique index on predecessors: another enrollment issued the successor first (a lineage fork).
    return {
      ok: false, error: enrollmentError.alreadyReplaced('another order already issued the successor of this certificate'),
      events: [{ action: 'device.lineage-fork', actor, device: serial, data: { order: pending.id, reason: 'a second successor was refused by the database' } }],
    };
  }
}
