import { X509Certificate, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../ca/digest.ts';
import { conflict, forbidden, malformed, notFound } from '../errors/domain-error.ts';
import { AttestationError } from '../pki/attestation/attestation-object.ts';
import { validateEndorsementPath } from '../pki/attestation/birth-chain.ts';
import { TPMA_OBJECT } from '../pki/attestation/tpm/constants.ts';
import { makeCredential } from '../pki/attestation/tpm/make-credential.ts';
import { parsePublicArea, type PublicArea } from '../pki/attestation/tpm/public-area.ts';
import { checkModelName, checkName, checkSerial } from '../registry/identifiers.ts';
import { trustOf } from '../registry/manufacturers/manufacturers.ts';
import type { TpmChallengeStore, TpmRedeemStore } from '../store/subsets.ts';
import type { TpmActivationRecord } from '../store/tpm-activation-store.ts';

/** The factory line asking (enroll/factory.ts's FactoryPrincipal). */
interface Line {
  line: string;
  /** null: every model. */
  models: string[] | null;
}

/** How long a line has to run TPM2_ActivateCredential and ask for the birth certificate. */
export const TPM_CHALLENGE_LIFETIME_MS = 10 * 60 * 1000;
/** Open challenges a line may hold at once: each is a row until it expires. */
export const MAX_OPEN_CHALLENGES = 10_000;
const MAX_EK_CERTIFICATE = 8 * 1024;
const MAX_PUBLIC_AREA = 1024;
const ID = /^[A-Za-z0-9_-]{22}$/;

/** What an attestation key must be: restricted to signing what the TPM made, and never able to leave its TPM. */
const AK_ATTRIBUTES: Array<[string, number]> = [
  ['fixedTPM', TPMA_OBJECT.fixedTPM], ['fixedParent', TPMA_OBJECT.fixedParent], ['sensitiveDataOrigin', TPMA_OBJECT.sensitiveDataOrigin],
  ['restricted', TPMA_OBJECT.restricted], ['sign', TPMA_OBJECT.sign],
];

export interface TpmChallengeFields {
  serial?: unknown;
  model?: unknown;
  manufacturer?: unknown;
  ekCertificate?: unknown;
  akPublic?: unknown;
}

export interface TpmChallenge {
  id: string;
  /** TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET, base64: the inputs of TPM2_ActivateCredential. */
  credentialBlob: string;
  encryptedSecret: string;
  expiresAt: string;
}

/** A redemption a birth request carries: the challenge and the credential TPM2_ActivateCredential gave back. */
export interface TpmActivationProof {
  id: string;
  credential: Buffer;
}

function base64Field(name: string, value: unknown, max: number): Buffer {
  if (typeof value !== 'string' || value.length === 0 || value.length > Math.ceil((max * 4) / 3) + 4 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
    throw malformed(`${name} must be base64 of at most ${max} bytes`);
  }
  return Buffer.from(value, 'base64');
}

/** The AK's TPMT_PUBLIC, parsed and held to AK_ATTRIBUTES. */
function attestationKey(bytes: Buffer): PublicArea {
  let area: PublicArea;
  try {
    area = parsePublicArea(bytes);
  } catch (err) {
    if (err instanceof AttestationError) throw malformed(`akPublic: ${err.message}`);
    throw err;
  }
  const missing = AK_ATTRIBUTES.filter(([, bit]) => (area.objectAttributes & bit) === 0).map(([name]) => name);
  if (missing.length > 0) throw malformed(`akPublic is not an attestation key that stays in its TPM: it lacks ${missing.join(', ')}`);
  if ((area.objectAttributes & TPMA_OBJECT.decrypt) !== 0) throw malformed('akPublic must be a signing key, not a decryption key');
  return area;
}

/**
 * POST /factory/v1/tpm-challenges (docs/operators/factory.md#tpm-credential-activation):
 * before a TPM-resident attestation key gets its birth certificate, the CA
 * proves it lives in the TPM whose endorsement key a registered TPM maker
 * certified: it makes a credential (TPM2_MakeCredential) for that EK and
 * the AK's Name, which only TPM2_ActivateCredential in that TPM, with that
 * AK loaded, can recover. Writes the challenge only; nothing about the
 * device changes until the birth redeems it.
 */
export async function createTpmChallenge(store: TpmChallengeStore, principal: Line, fields: TpmChallengeFields, now: Date): Promise<TpmChallenge> {
  const serial = checkSerial(fields.serial);
  const modelName = checkModelName(fields.model);
  const manufacturerId = checkName('manufacturer', fields.manufacturer);
  const ekCertificate = base64Field('ekCertificate', fields.ekCertificate, MAX_EK_CERTIFICATE);
  const ak = attestationKey(base64Field('akPublic', fields.akPublic, MAX_PUBLIC_AREA));
  if (principal.models && !principal.models.includes(modelName)) throw forbidden(`this factory token may not request certificates for model ${modelName}`);
  if (!(await store.models.byName(modelName))) throw malformed(`unknown model ${modelName}`);
  const manufacturer = await store.manufacturers.find(manufacturerId);
  if (manufacturer?.status !== 'active' || !manufacturer.active) throw malformed(`no active manufacturer ${manufacturerId} vouches for TPMs`);
  if (!manufacturer.active.models.includes(modelName)) throw forbidden(`manufacturer ${manufacturerId} is not registered for model ${modelName}`);
  try {
    // The maker's trust as every other path sees it: its active certificates, none it withdrew.
    const trust = trustOf(manufacturer);
    validateEndorsementPath([ekCertificate], trust.anchors, now, trust.withdrawn);
  } catch (err) {
    if (err instanceof AttestationError) throw malformed(`ekCertificate: ${err.detail}`);
    throw err;
  }
  const ekKey = new X509Certificate(ekCertificate).publicKey;
  if (ekKey.asymmetricKeyType !== 'rsa' || (ekKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw malformed('ekCertificate: the endorsement key must be RSA of 2048 bits or more (the TCG default EK template)');
  }
  if ((await store.tpmActivations.openOfLine(principal.line, now)) >= MAX_OPEN_CHALLENGES) {
    throw conflict(`line ${principal.line} holds ${MAX_OPEN_CHALLENGES} open TPM challenges: redeem some or let them expire`);
  }
  const credential = randomBytes(32);
  const made = makeCredential(ekKey, ak.name, credential);
  const record: TpmActivationRecord = {
    id: randomBytes(16).toString('base64url'), deviceSerial: serial, model: modelName, line: principal.line, manufacturer: manufacturerId,
    ekCertificate, ekSha256: sha256Hex(ekCertificate), akName: ak.name, akSpki: ak.key.spki, credentialSha256: sha256Hex(credential),
    expiresAt: new Date(now.getTime() + TPM_CHALLENGE_LIFETIME_MS), createdAt: now, redeemedAt: null, certificateSerial: null,
  };
  await store.tpmActivations.insert(record);
  return {
    id: record.id, credentialBlob: made.credentialBlob.toString('base64'), encryptedSecret: made.encryptedSecret.toString('base64'), expiresAt: record.expiresAt.toISOString(),
  };
}

/** The `tpmActivation` member of a birth request, checked: {"id", "credential": base64 of the 32 bytes ActivateCredential returned}. */
export function checkActivationProof(value: unknown): TpmActivationProof | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('tpmActivation must be {"id", "credential"}');
  const { id, credential, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw malformed('tpmActivation has only "id" and "credential"');
  if (typeof id !== 'string' || !ID.test(id)) throw malformed('tpmActivation.id is the id of a TPM challenge');
  const bytes = base64Field('tpmActivation.credential', credential, 64);
  return { id, credential: bytes };
}

/**
 * In the birth's transaction, under the device's lock: the challenge is this
 * line's, for this serial and model, unexpired, not redeemed yet; the
 * credential is the one made (compared in constant time); and the CSR's key
 * is the AK the challenge was made for. Any failure is a 403 that says which.
 */
export async function verifyActivation(
  tx: TpmRedeemStore, principal: Line, request: { serial: string; model: string }, proof: TpmActivationProof, spki: Buffer, now: Date,
): Promise<TpmActivationRecord> {
  const challenge = await tx.tpmActivations.findForUpdate(proof.id);
  if (!challenge || challenge.line !== principal.line) throw notFound(`no TPM challenge ${proof.id} of line ${principal.line}`);
  if (challenge.deviceSerial !== request.serial || challenge.model !== request.model) throw forbidden(`TPM challenge ${proof.id} was made for another device`);
  if (challenge.redeemedAt) throw forbidden(`TPM challenge ${proof.id} was redeemed already`);
  if (challenge.expiresAt <= now) throw forbidden(`TPM challenge ${proof.id} expired at ${challenge.expiresAt.toISOString()}: ask for a new one`);
  const presented = createHash('sha256').update(proof.credential).digest();
  if (!timingSafeEqual(presented, Buffer.from(challenge.credentialSha256, 'hex'))) {
    throw forbidden('the credential is not the one TPM2_ActivateCredential recovers in that TPM: the attestation key is not proven to live there');
  }
  if (!challenge.akSpki.equals(spki)) throw forbidden('the CSR key is not the attestation key the TPM challenge was made for');
  return challenge;
}
