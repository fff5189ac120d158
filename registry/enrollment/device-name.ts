import type { DeviceName } from '../../ca/profiles.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import { birthIdentity } from '../../pki/attestation/birth-chain.ts';
import type { AttestationEvidence } from '../../pki/attestation/format.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { DeviceRecord } from '../../store/types.ts';
import type { Attested } from './attestation-checks.ts';
import { enrollmentError } from './errors.ts';

type NameStore = Pick<EnrollmentStore, 'certificates' | 'claims' | 'models'>;

/** The HardwareModuleName of a birth certificate (RFC 4108), or null when it carries none. */
function hardwareModuleOf(der: Buffer): { hwType: string; serial: string } | null {
  try {
    const identity = birthIdentity(der);
    return identity.hwType === null ? null : { hwType: identity.hwType, serial: identity.serial };
  } catch (err) {
    if (err instanceof AttestationError) return null;
    throw err;
  }
}

/** The device's birth certificate as recorded (ours, or another manufacturer's once it attested), or undefined before it is known. */
async function recordedBirth(store: NameStore, device: DeviceRecord): Promise<Buffer | undefined> {
  if (device.manufacturer === 'self') return (await store.certificates.newestOfDevice(device.serial, 'birth'))?.der;
  return (await store.claims.birthOf(device.serial))?.der;
}

/**
 * Whether this CA accepts the way an order names a device
 * (docs/device-makers/protocol.md#identifiers), before anything is
 * attested: a permanent-identifier's assigner must be the CA's assigner
 * OID (DEVID_ASSIGNER_OID); a hardware-module's hwType must be that of the
 * device's birth certificate, where it is known now (a device born
 * elsewhere that never attested is checked at its attestation). Throws
 * rejectedIdentifier.
 */
export async function checkDeviceName(store: NameStore, device: DeviceRecord | null, serial: string, name: DeviceName, assignerOid: string | undefined): Promise<void> {
  if (name.type === 'permanent-identifier') {
    if (name.assigner === undefined) return;
    if (assignerOid === undefined) throw enrollmentError.rejectedIdentifier('this CA names no assigner for its device identifiers: order the serial alone');
    if (name.assigner !== assignerOid) throw enrollmentError.rejectedIdentifier(`the assigner of this CA's device identifiers is ${assignerOid}, not ${name.assigner}`);
    return;
  }
  if (!device) return;
  // A device claimed by serial (apple, android-key) has no birth certificate: its manufacturer's service makes a leaf per key.
  if (device.manufacturer !== 'self' && (await store.claims.find(device.serial))?.birthCertificateSha256 === null) {
    throw enrollmentError.rejectedIdentifier(`device ${serial} is claimed by serial, without a birth certificate to name a hardware module: order a permanent-identifier`);
  }
  const der = await recordedBirth(store, device);
  let hwType: string | null;
  if (der) hwType = hardwareModuleOf(der)?.hwType ?? null;
  else hwType = (await store.models.byName(device.model))?.hwType ?? null;
  if (hwType === null) throw enrollmentError.rejectedIdentifier(`device ${serial}'s birth certificate has no HardwareModuleName: order a permanent-identifier`);
  if (hwType !== name.hwType) throw enrollmentError.rejectedIdentifier(`device ${serial}'s birth certificate names hardware type ${hwType}, not ${name.hwType}`);
}

/**
 * draft-ietf-acme-device-attest-09 section 5 step 3 for a hardware-module
 * order: the birth certificate the attestation rests on (x5c[0], or under
 * staged renewal the device's recorded one) carries the HardwareModuleName
 * ordered. A leaf made fresh by a manufacturer's attestation service (apple,
 * android-key) carries none. Returns the refusal, or undefined.
 */
export async function hardwareModuleProblem(
  store: NameStore, device: DeviceRecord, evidence: AttestationEvidence, attested: Attested, name: Extract<DeviceName, { type: 'hardware-module' }>,
): Promise<AttestationError | undefined> {
  const fail = (detail: string) => new AttestationError('identifier', detail);
  if (evidence.identity?.kind === 'manufacturer-serial') {
    return fail(`a ${evidence.fmt} attestation names the device by its manufacturer's attestation service, without a birth certificate: order a permanent-identifier`);
  }
  const der = attested.outsideBirth?.der ?? (attested.byBirthKey ? evidence.chain[0] : await recordedBirth(store, device));
  const module = der ? hardwareModuleOf(der) : null;
  if (!module) return fail(`device ${device.serial}'s birth certificate has no HardwareModuleName`);
  if (module.hwType !== name.hwType || module.serial !== device.serial) {
    return fail(`the birth certificate names hardware module ${module.serial}/${module.hwType}, not the ordered ${device.serial}/${name.hwType}`);
  }
  return undefined;
}
