import { sha256Hex } from '../../ca/digest.ts';
import type { DomainError } from '../../errors/domain-error.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { CertificateRecord, DeviceRecord } from '../../store/types.ts';
import { mayEnroll } from '../lifecycle/device-states.ts';
import { enrollmentError } from './errors.ts';
import { gatewayProblem } from './gateway-check.ts';
import type { AttestationBasis, PendingEnrollment } from './types.ts';

/**
 * Why an accepted attestation may not become a certificate now: the device
 * may no longer enroll (suspended, quarantined, decommissioned), or the
 * certificate its attestation rested on was revoked, replaced by a
 * reprovisioning, or superseded; or the attested key was certified
 * meanwhile by another enrollment. Checked inside the issuance transaction,
 * under the device's lock, so no operator action can fall between the
 * check and the certificate.
 */
export async function basisProblem(tx: EnrollmentStore, basis: AttestationBasis, device: DeviceRecord, now: Date): Promise<DomainError | undefined> {
  const refused = (detail: string) => enrollmentError.basisChanged(`device ${device.serial}: ${detail}; attest again`);
  if (!mayEnroll(device.state)) return enrollmentError.basisChanged(`device ${device.serial} is ${device.state}: enrollment and renewal are refused`);
  if (device.reprovisionAllowed) return refused('it is being reprovisioned and waits for its new birth certificate');
  if (basis.gateway) {
    const gateway = await gatewayProblem(tx, basis.gateway, now);
    if (gateway) return enrollmentError.basisChanged(gateway);
    // A mediated certificate rests on the gateway alone: no attestation, only the key rule below.
    if (basis.gateway.assurance === 'mediated') {
      const keyHolders = await tx.certificates.devicesWithKey(sha256Hex(basis.spki));
      return keyHolders.length > 0 ? enrollmentError.badCsr('the key is already certified: every operational certificate has a key of its own') : undefined;
    }
  }
  if (!basis.attestedBy) return refused('the order does not record the certificate its attestation rested on');
  // One round trip for the certificate that attested and whoever holds a certificate for the attested key.
  const { certificate: attesting, keyHolders } = await tx.certificates.bySha256AndKeyHolders(basis.attestedBy, sha256Hex(basis.spki));
  if (attesting) {
    if (attesting.deviceSerial !== device.serial) return refused('the attesting certificate is not this device\'s');
    if (attesting.revokedAt) return refused(`the ${attesting.kind} certificate ${attesting.serial} that attested was revoked`);
    if (attesting.kind === 'birth' && attesting.keySha256 !== device.factoryKeySha256) return refused('its birth certificate changed since it attested');
    if (attesting.kind === 'operational' && attesting.notAfter <= now) return refused(`the operational certificate that attested expired at ${attesting.notAfter.toISOString()}`);
  } else {
    const [birth, claim] = await Promise.all([tx.claims.birthOf(device.serial), tx.claims.find(device.serial)]);
    // Claimed by (manufacturer, serial) (apple, android-key): the leaf that attested was made for this one key, and nothing of it is recorded.
    if (claim?.birthCertificateSha256 !== null) {
      if (birth?.sha256 !== basis.attestedBy) return refused('the birth certificate that attested is no longer the device\'s');
      if (birth.revokedAt) return refused(`its manufacturer revoked the birth certificate ${birth.serialHex}`);
    }
    if (!claim || claim.supersededAt) return refused('its claim was superseded (reprovisioned)');
  }
  // One key, one certificate: another enrollment of this device (or of another) may have certified it since the attestation.
  if (keyHolders.length > 0) return enrollmentError.badCsr('the key is already certified: every operational certificate has a key of its own');
  return undefined;
}

/**
 * The certificate the new one succeeds: the claimed `replaces`, else the
 * newest operational certificate, else the birth certificate (ours, or the
 * other manufacturer's one the device attested with); null for the first
 * certificate of a device claimed by (manufacturer, serial), which has no
 * certificate before it.
 */
export async function predecessorOf(tx: EnrollmentStore, pending: PendingEnrollment): Promise<Pick<CertificateRecord, 'serial' | 'sha256' | 'kind'> | null> {
  if (pending.replaces) return (await tx.certificates.find(pending.replaces))!;
  const previous = await tx.certificates.newestOfDeviceByKinds(pending.serial, ['operational', 'birth']);
  if (previous) return previous;
  const outside = await tx.claims.birthOf(pending.serial);
  return outside ? { serial: outside.serialHex, sha256: outside.sha256, kind: 'birth' } : null;
}
