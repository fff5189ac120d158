import { spkiOfIssuedCertificate } from '../../ca/certificate-der.ts';
import { sha256Hex } from '../../ca/digest.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import { validateBirthChain, type ValidatedBirth } from '../../pki/attestation/birth-chain.ts';
import type { AttestationChallenge, AttestationEvidence, CheckFailure } from '../../pki/attestation/format.ts';
import type { CheckedKey } from '../../pki/public-key.ts';
import type { CertificateStore } from '../../store/certificate-store.ts';
import type { ClaimStore } from '../../store/claim-store.ts';
import type { DeviceStore } from '../../store/device-store.ts';
import type { ManufacturerRecord, ManufacturerStore } from '../../store/manufacturer-store.ts';
import type { ModelStore } from '../../store/model-store.ts';
import type { FirmwareState } from '../../store/device-store.ts';
import type { GatewayStore } from '../../store/gateway-store.ts';
import type { CertificateRecord, DeviceClassRecord, DeviceRecord, FirmwareReport } from '../../store/types.ts';
import { updatePathDecision } from '../firmware/update-path.ts';
import { trustOf } from '../manufacturers/manufacturers.ts';
import { manufacturerAttested } from './manufacturer-attested.ts';

/** What the verifier reads and the one thing it writes (the counter, compare-and-set). */
export interface AttestationStore {
  certificates: Pick<CertificateStore, 'bySha256AndKeyHolders' | 'newestOfDevice'>;
  devices: Pick<DeviceStore, 'acceptSignCount'>;
  manufacturers: Pick<ManufacturerStore, 'find' | 'crlEntry'>;
  claims: Pick<ClaimStore, 'find' | 'birthOf'>;
  models: Pick<ModelStore, 'byName'>;
  gateways: Pick<GatewayStore, 'pathOf'>;
}

/** The certificate that attested: one of ours, or a birth certificate from another manufacturer. */
export interface AttestingCertificate {
  serial: string;
  kind: string;
  sha256: string;
}

/** A birth certificate of another manufacturer that passed check 1: recorded when the attestation is accepted. */
export interface OutsideBirth extends ValidatedBirth {
  manufacturer: string;
  keySha256: string;
}

export interface AttestationInput {
  device: DeviceRecord;
  deviceClass: DeviceClassRecord;
  /** What the device signed over, and this CA's identity. */
  challenge: AttestationChallenge;
  /** The statement, parsed by its format (pki/attestation/format.ts). */
  evidence: AttestationEvidence;
  /** The model's approved releases and the device's floor (check 5). */
  firmware: FirmwareState;
  /** Its birth key is proven to live in a TPM: it attests with `tpm` only (a restricted key could sign other formats' data through TPM2_Hash). */
  tpmBorn?: boolean;
  now: Date;
}

export interface Attested {
  /** The format that attested. */
  fmt: string;
  /** The new operational key, canonical; the order's CSR must carry it. */
  key: CheckedKey;
  /** The statement's counter (signCount), accepted only when it is above the last one. */
  signCount: number;
  /** x5c[0] was the birth certificate (not staged renewal by an operational one). */
  byBirthKey: boolean;
  attestingCertificate: AttestingCertificate;
  /** Set when x5c[0] is another manufacturer's birth certificate. */
  outsideBirth?: OutsideBirth;
  firmware: FirmwareReport | null;
}

/** A refusal that is also a clone signal (docs/device-makers/protocol.md): audited, and shown in the devices' histories. */
export interface CloneSignal {
  reason: string;
  /** Devices the signal concerns besides the one that attested. */
  otherDevices: string[];
  data: Record<string, unknown>;
}

/** A signed attestation on a withdrawn release: its class may suspend the device (onWithdrawnFirmware). */
export interface WithdrawnFirmware {
  version: string;
  digest: string;
}

export type AttestationOutcome =
  | { ok: true; attested: Attested }
  | { ok: false; error: AttestationError; clone?: CloneSignal; withdrawnFirmware?: WithdrawnFirmware };

const refusal = (check: string, detail: string, clone?: CloneSignal): Extract<AttestationOutcome, { ok: false }> => ({ ok: false, error: new AttestationError(check, detail), ...(clone ? { clone } : {}) });

/**
 * The `device-attest-01` checks of docs/device-makers/protocol.md but the counter (check 4),
 * one by one: every refusal names its check, and one that suggests a copy of
 * a device (another device's certificate, a key certified for another
 * device) carries a clone signal. The caller then takes the order's
 * `replaces` claim and advances the counter last (acceptSignCount), so a
 * refused attestation leaves the counter as it was.
 */
export async function verifyAttestation(store: AttestationStore, input: AttestationInput): Promise<AttestationOutcome> {
  const { device, deviceClass, evidence } = input;
  // The class names the formats its devices attest with: a device of a class that expects a TPM may not attest with a software key's format.
  if (!deviceClass.attestationFormats.includes(evidence.fmt)) {
    return refusal('format', `device class ${deviceClass.name} accepts attestation formats ${deviceClass.attestationFormats.join(', ')}, not ${evidence.fmt}`);
  }
  if (input.tpmBorn && evidence.fmt !== 'tpm') {
    return refusal('format', `device ${device.serial}'s birth key was proven to live in a TPM (credential activation): it attests with tpm only, not ${evidence.fmt}`);
  }
  const keySha256 = sha256Hex(evidence.key.spki);
  // One round trip for x5c[0]'s certificate and the devices the attested key is certified for (read now, used after check 3).
  const { certificate, keyHolders: holders } = await store.certificates.bySha256AndKeyHolders(sha256Hex(evidence.chain[0]!), keySha256);
  const attesting = await attestingCertificate(store, input, certificate);
  if ('ok' in attesting) return attesting;
  const { byBirthKey, outsideBirth } = attesting;

  // Check 3: alg fits x5c[0]'s key, the signature verifies, rpIdHash and credId match.
  const proof = proofProblem(input, attesting.spki);
  if (proof) return refusal(proof.check, proof.detail);

  // The attested key is new: not the birth key, not any key the device (or another device) has had certified.
  const others = holders.filter((serial) => serial !== device.serial);
  if (others.length > 0) {
    return refusal('attested key', 'the attested key is certified for another device', {
      reason: 'attested key certified for another device', otherDevices: others, data: { keySha256, holders: others },
    });
  }
  if (holders.length > 0) return refusal('attested key', 'the attested key was certified for this device before: every renewal needs a new key');
  if (outsideBirth?.keySha256 === keySha256) return refusal('attested key', 'the attested key is the device\'s birth key');

  // A statement the format cannot judge now (a TPM clock that may have gone back): refused before the counter, never a clone signal.
  if (evidence.retryProblem) return refusal(evidence.retryProblem.check, evidence.retryProblem.detail);
  // Check 4's policy part; the compare-and-set comes last (acceptSignCount).
  if (evidence.counter === 0 && deviceClass.counterRequired) return refusal('check 4 (signCount)', `device class ${deviceClass.name} requires a signature counter`);
  // Check 5: the model's signed releases (no rollback) or its allowlist; the firmware is recorded at issuance, with its release.
  const firmware = updatePathDecision(input.firmware, evidence.firmware, input.now);
  // Check 3 held: the report is the device's own word, so a withdrawn release may suspend it (attest.ts).
  if (!firmware.ok) return { ...refusal('check 5 (firmware)', firmware.detail), ...(firmware.withdrawn ? { withdrawnFirmware: firmware.withdrawn } : {}) };
  return {
    ok: true,
    attested: {
      fmt: evidence.fmt, key: evidence.key, signCount: evidence.counter, byBirthKey, attestingCertificate: attesting.certificate, ...(outsideBirth ? { outsideBirth } : {}), firmware: firmware.firmware,
    },
  };
}

/**
 * Check 3 whole, by the format: the signature by the key of x5c[0] verifies,
 * and the statement is bound to this CA and to the attested key. Until it
 * holds, nothing in the attestation is the device's word: no clone signal
 * may rest on it.
 */
function proofProblem(input: Pick<AttestationInput, 'evidence' | 'challenge'>, spki: Buffer): CheckFailure | undefined {
  return input.evidence.signatureProblem(spki, input.challenge) ?? input.evidence.bindingProblem(input.challenge);
}

type Attesting = { certificate: AttestingCertificate; spki: Buffer; byBirthKey: boolean; outsideBirth?: OutsideBirth };

/**
 * Check 1 (and 2): x5c[0] is this device's birth certificate (ours, or for a
 * device born elsewhere the claimed one, chaining to its manufacturer), or
 * under staged renewal its newest operational certificate.
 */
async function attestingCertificate(
  store: AttestationStore, input: AttestationInput, attesting: CertificateRecord | undefined,
): Promise<Attesting | Extract<AttestationOutcome, { ok: false }>> {
  const { device, deviceClass, now, evidence } = input;
  // A leaf made fresh for this key proves (manufacturer, serial), never a certificate of ours: staged renewal does not apply.
  if (evidence.identity?.kind === 'manufacturer-serial') {
    const found = await manufacturerAttested(store, input, evidence.identity);
    return 'ok' in found ? found : { ...found, byBirthKey: true };
  }
  if (!attesting && device.manufacturer !== 'self') return outsideBirthCertificate(store, input);
  if (!attesting || attesting.deviceSerial === null) return refusal('check 1 (x5c[0])', 'is not a device certificate this CA issued');
  if (attesting.deviceSerial !== device.serial) {
    const detail = `x5c[0] is the certificate of device ${attesting.deviceSerial}, not of ${device.serial}`;
    // Anyone can copy another device's (public) certificate: only a valid signature by its key makes this a clone signal.
    if (proofProblem(input, spkiOfIssuedCertificate(attesting.der))) return refusal('check 2 (serial)', detail);
    return refusal('check 2 (serial)', detail, {
      reason: "attestation with another device's certificate", otherDevices: [attesting.deviceSerial],
      data: { attestedFor: device.serial, certificateOf: attesting.deviceSerial, certificateSerial: attesting.serial },
    });
  }
  if (attesting.revokedAt) return refusal('check 1 (x5c[0])', `the ${attesting.kind} certificate ${attesting.serial} is revoked`);
  const found = { certificate: attesting, spki: spkiOfIssuedCertificate(attesting.der) };
  if (attesting.kind === 'birth') {
    if (attesting.keySha256 !== device.factoryKeySha256) return refusal('check 1 (x5c[0])', 'is not the device\'s current birth certificate');
    return { ...found, byBirthKey: true };
  }
  if (attesting.kind !== 'operational') return refusal('check 1 (x5c[0])', `a ${attesting.kind} certificate cannot attest`);
  if (!deviceClass.stagedRenewal) return refusal('check 1 (x5c[0])', `device class ${deviceClass.name} does not allow staged renewal: attest with the birth key`);
  // A gateway vouched for a mediated certificate's key, the device proved nothing with it: only a birth key raises it (docs/operators/gateways.md).
  if ((await store.gateways.pathOf(attesting.serial))?.assurance === 'mediated') return refusal('check 1 (x5c[0])', `the operational certificate ${attesting.serial} is mediated: attest with a birth certificate`);
  const newest = await store.certificates.newestOfDevice(device.serial, 'operational');
  if (newest?.serial !== attesting.serial) return refusal('check 1 (x5c[0])', 'is not the device\'s newest operational certificate');
  if (attesting.notAfter <= now) return refusal('check 1 (x5c[0])', `the operational certificate expired at ${attesting.notAfter.toISOString()}`);
  const every = deviceClass.factoryReattestEverySeconds * 1000;
  if (!device.factoryAttestedAt || now.getTime() - device.factoryAttestedAt.getTime() >= every) {
    return refusal('check 6 (factory re-attestation)', `the device last attested with its birth key ${device.factoryAttestedAt?.toISOString() ?? 'never'}; class ${deviceClass.name} requires it every ${deviceClass.factoryReattestEverySeconds} s`);
  }
  return { ...found, byBirthKey: false };
}

/**
 * Check 1 for a device born elsewhere (docs/operators/manufacturers.md): x5c[0] is the
 * birth certificate claimed for it, chains to its manufacturer's active
 * anchor, names the device (check 2), is of a model the manufacturer may
 * vouch for, and is not on the manufacturer's CRL, which must be current.
 */
async function outsideBirthCertificate(store: AttestationStore, input: AttestationInput): Promise<Attesting | Extract<AttestationOutcome, { ok: false }>> {
  const { device, now, evidence } = input;
  const claim = await store.claims.find(device.serial);
  if (!claim) return refusal('check 1 (claim)', `device ${device.serial} is not claimed`);
  if (claim.supersededAt) return refusal('check 1 (claim)', `device ${device.serial} was reprovisioned ${claim.supersededAt.toISOString()}: its manufacturer's birth certificate attests no more`);
  if (claim.birthCertificateSha256 === null) {
    return refusal('check 1 (claim)', `device ${device.serial} is claimed by serial, without a birth certificate: it attests with a format whose leaf its manufacturer's attestation service makes (apple, android-key), not with ${evidence.fmt}`);
  }
  const sha256 = sha256Hex(evidence.chain[0]!);
  if (sha256 !== claim.birthCertificateSha256) return refusal('check 1 (claim)', `x5c[0] (SHA-256 ${sha256}) is not the birth certificate claimed for device ${device.serial}`);
  const manufacturer = await store.manufacturers.find(claim.manufacturer);
  if (manufacturer?.status !== 'active' || !manufacturer.active) return refusal('check 1 (anchor)', `manufacturer ${claim.manufacturer} is ${manufacturer?.status ?? 'not registered'}`);
  let birth: ValidatedBirth;
  try {
    const { anchors, withdrawn } = trustOf(manufacturer);
    birth = validateBirthChain(evidence.chain, anchors, now, withdrawn);
  } catch (err) {
    if (err instanceof AttestationError) return refusal(err.check, err.detail);
    throw err;
  }
  // What the format asks of a certificate this CA did not issue (tpm: WebAuthn 8.3.1's AK certificate).
  const leafProblem = evidence.outsideLeafProblem?.(evidence.chain[0]!);
  if (leafProblem) return refusal(leafProblem.check, leafProblem.detail);
  if (birth.identity.serial !== device.serial) {
    return refusal('check 2 (serial)', `x5c[0] names device ${birth.identity.serial}, not ${device.serial}`);
  }
  const model = await store.models.byName(device.model);
  if (!manufacturer.active.models.includes(device.model) || !model) return refusal('check 1 (model)', `manufacturer ${manufacturer.id} may not vouch for model ${device.model}`);
  if (birth.identity.hwType !== null && birth.identity.hwType !== model.hwType) {
    return refusal('check 1 (model)', `x5c[0] has hwType ${birth.identity.hwType}, model ${model.name} is ${model.hwType}`);
  }
  const revoked = await outsideRevocation(store, manufacturer, birth, now);
  if (revoked) return refusal('check 1 (revocation)', revoked);
  const keySha256 = sha256Hex(birth.identity.keySpki);
  if (device.factoryKeySha256 !== null && device.factoryKeySha256 !== keySha256) return refusal('check 1 (x5c[0])', 'is not the device\'s birth key');
  return {
    certificate: { serial: birth.identity.serialHex, kind: 'birth', sha256 }, spki: birth.identity.keySpki, byBirthKey: true,
    outsideBirth: { ...birth, manufacturer: manufacturer.id, keySha256 },
  };
}

/** Why the manufacturer's revocation refuses the birth certificate, or undefined. Without a current CRL, fail closed. */
async function outsideRevocation(store: AttestationStore, manufacturer: ManufacturerRecord, birth: ValidatedBirth, now: Date): Promise<string | undefined> {
  if ((await store.claims.birthOf(birth.identity.serial))?.revokedAt) return `the birth certificate was revoked by manufacturer ${manufacturer.id}`;
  if (manufacturer.active!.crl === null) return undefined;
  const crl = manufacturer.crl;
  if (!crl.thisUpdate) return `no CRL of manufacturer ${manufacturer.id} has been read yet${crl.error ? ` (${crl.error})` : ''}`;
  if (crl.nextUpdate && crl.nextUpdate < now) return `the CRL of manufacturer ${manufacturer.id} is out of date since ${crl.nextUpdate.toISOString()}${crl.error ? ` (${crl.error})` : ''}`;
  // The CRL in force covers the certificates of one issuer: a birth certificate from another has no revocation information, so it fails closed.
  if (crl.issuerSha256 !== birth.issuerSha256) return `the CRL of manufacturer ${manufacturer.id} is not issued by the CA that issued this birth certificate: its revocation cannot be checked`;
  if (await store.manufacturers.crlEntry(manufacturer.id, birth.identity.serialHex)) {
    return `the birth certificate (serial ${birth.identity.serialHex}) is on the CRL of manufacturer ${manufacturer.id}`;
  }
  return undefined;
}

/**
 * Check 4, last: the counter strictly increases, by compare-and-set, so of
 * two concurrent attestations with one count only one passes; 0 only for a
 * device that never sent a non-zero count. A refusal is a clone signal.
 */
export async function acceptSignCount(store: AttestationStore, device: DeviceRecord, attested: Attested, now: Date): Promise<AttestationOutcome> {
  if (await store.devices.acceptSignCount(device.serial, attested.signCount, attested.byBirthKey ? now : null)) return { ok: true, attested };
  return refusal('check 4 (signCount)', `signCount ${attested.signCount} is not above the last accepted one`, {
    reason: 'signCount did not increase', otherDevices: [], data: { signCount: attested.signCount, lastAccepted: device.signCount },
  });
}
