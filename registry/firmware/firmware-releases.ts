import { DomainError, conflict, forbidden, malformed, notFound } from '../../errors/domain-error.ts';
import type { SignedEnvelope } from '../../ca/suit.ts';
import type { CaStore } from '../../store/ca-store.ts';
import type { FirmwareReleaseContent, FirmwareReleaseRecord } from '../../store/firmware-release-store.ts';
import type { FirmwareSignerRecord } from '../../store/firmware-signer-store.ts';
import type { FirmwareReleaseAdminStore } from '../../store/subsets.ts';
import type { Audited, AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { checkModelName } from '../identifiers.ts';
import type { Principal } from '../lifecycle/support-grants.ts';
import { checkProposalHash, proposalHash } from '../two-person.ts';

/** A version names a release in URLs (/firmware/<model>/<version>.suit): semantic versions and the like. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/;

/** Signs a release's SUIT envelope with the model's signer (ca/firmware-release-signer.ts). */
export interface ReleaseSigning {
  sign(signer: FirmwareSignerRecord, release: FirmwareReleaseContent, caCertificates: Pick<CaStore, 'all'>): Promise<SignedEnvelope>;
}

export function checkVersion(value: unknown): string {
  if (typeof value !== 'string' || !VERSION_PATTERN.test(value)) throw malformed('version must be 1-64 characters: a letter or digit, then letters, digits, ".", "+", "_" or "-"');
  return value;
}

function checkUint(field: string, value: unknown, minimum = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) throw malformed(`${field} must be an integer from ${minimum} to ${Number.MAX_SAFE_INTEGER}`);
  return value;
}

/** The body of POST /operator/v1/models/<model>/firmware-releases, checked: every field, and nothing else. */
export function checkReleaseProposal(model: unknown, body: Record<string, unknown>): FirmwareReleaseContent {
  const { version, digest, size, sequence, minSequence, ...rest } = body;
  const unknownField = Object.keys(rest)[0];
  if (unknownField !== undefined) throw malformed(`unknown field ${JSON.stringify(unknownField.slice(0, 64))}: a release is {"version", "digest", "size", "sequence", "minSequence"?}`);
  if (typeof digest !== 'string' || !/^[0-9a-fA-F]{64}$/.test(digest)) throw malformed('digest must be the SHA-256 of the image: 64 hex digits');
  const release = {
    model: checkModelName(model),
    version: checkVersion(version),
    digest: digest.toLowerCase(),
    size: checkUint('size', size, 1),
    sequence: checkUint('sequence', sequence),
    minSequence: minSequence === undefined ? null : checkUint('minSequence', minSequence),
  };
  if (release.minSequence !== null && release.minSequence > release.sequence) throw malformed('minSequence may not be above the release\'s own sequence');
  return release;
}

/** The release as hashed for its proposal: RFC 8785 JSON of these fields, minSequence left out when absent. */
export function releaseProposalHash(release: FirmwareReleaseContent): string {
  const { model, version, digest, size, sequence, minSequence } = release;
  return proposalHash(minSequence === null ? { model, version, digest, size, sequence } : { model, version, digest, size, sequence, minSequence });
}

const WHERE_THE_HASH_IS = 'the "proposal" of GET /operator/v1/models/<model>/firmware-releases/<version>';

const event = (action: string, who: Principal, release: FirmwareReleaseContent, data: Record<string, unknown> = {}): AuditEntry =>
  ({ action, actor: who.actor, data: { model: release.model, version: release.version, principal: who.principal, ...data } });

/**
 * Proposes a release (docs/operators/firmware.md): its sequence number must
 * be above every other release of the model, proposed or approved, so the
 * numbers a model's devices see only go up. The model row is locked, so two
 * proposals of one model are taken one after the other.
 */
export async function proposeRelease(store: FirmwareReleaseAdminStore, audit: AuditLog, who: Principal, release: FirmwareReleaseContent, now: Date): Promise<FirmwareReleaseRecord> {
  return audit.record(store, async (tx) => {
    if (!(await tx.models.byNameForUpdate(release.model))) throw notFound(`no model ${release.model}`);
    if (await tx.firmwareReleases.findForUpdate(release.model, release.version)) throw conflict(`model ${release.model} has a release ${release.version} already`);
    const highest = await tx.firmwareReleases.highestSequence(release.model);
    if (highest !== undefined && release.sequence <= highest) throw conflict(`sequence ${release.sequence} is not above ${highest}, the highest of model ${release.model}'s releases: sequence numbers only go up`);
    const proposal = releaseProposalHash(release);
    await tx.firmwareReleases.insert({ ...release, proposal, proposedBy: who.principal, proposedAt: now });
    const record = (await tx.firmwareReleases.findForUpdate(release.model, release.version))!;
    return { value: record, events: [event('firmware.release-proposed', who, release, { proposal, digest: release.digest, size: release.size, sequence: release.sequence, minSequence: release.minSequence })] };
  });
}

/** Why this approval may not go through: approved already, the proposer approving, a hash that is not this release's. */
function approvalRefusal(record: FirmwareReleaseRecord, who: Principal, proposal: string): DomainError | undefined {
  if (record.approvedAt) return conflict(`release ${record.version} of model ${record.model} was approved already, by ${record.approvedBy}`);
  if (record.proposedBy === who.principal) return forbidden(`${who.principal} proposed this release: another operator must approve it`);
  if (record.proposal !== proposal || releaseProposalHash(record) !== proposal) return conflict(`release ${record.version} of model ${record.model} is not proposal ${proposal}: read it again (${WHERE_THE_HASH_IS})`);
  return undefined;
}

/**
 * POST .../firmware-releases/<version>/approve {"proposal"}: by another
 * person than the proposer, naming the proposal's hash; the release is then
 * signed with the model's signer and its envelope recorded in the same
 * transaction. Approvals and refused approvals are both audited.
 */
export async function approveRelease(
  store: FirmwareReleaseAdminStore, audit: AuditLog, signing: ReleaseSigning, who: Principal, model: string, version: string, expected: unknown, now: Date,
): Promise<FirmwareReleaseRecord> {
  const proposal = checkProposalHash(expected, WHERE_THE_HASH_IS);
  const outcome = await audit.record(store, async (tx): Promise<Audited<FirmwareReleaseRecord | DomainError>> => {
    const record = await tx.firmwareReleases.findForUpdate(model, version);
    if (!record) throw notFound(`model ${model} has no release ${version}`);
    const refusal = approvalRefusal(record, who, proposal);
    if (refusal) return { value: refusal, events: [event('firmware.release-approval-refused', who, record, { proposal, pending: record.proposal, reason: refusal.detail })] };
    const signer = await tx.firmwareSigners.ofModel(model);
    if (!signer) throw conflict(`model ${model} has no firmware signer yet: run "devid-ca ca firmware-signer ${model}"`);
    if ((await tx.certificates.find(signer.certificateSerial))?.revokedAt) {
      throw conflict(`the firmware signer of model ${model} (certificate ${signer.certificateSerial}) is revoked: make a new one with "devid-ca ca firmware-signer ${model}"`);
    }
    const signed = await signing.sign(signer, record, tx.caCertificates);
    const approval = { approvedBy: who.principal, approvedAt: now, signerCertificateSerial: signer.certificateSerial, envelope: signed.envelope, manifestSha256: signed.manifestSha256 };
    if (!(await tx.firmwareReleases.approve(model, version, approval))) throw conflict(`release ${version} of model ${model} was approved meanwhile`);
    return {
      value: { ...record, ...approval },
      events: [event('firmware.release-approved', who, record, { proposal, proposedBy: record.proposedBy, sequence: record.sequence, manifestSha256: signed.manifestSha256, signer: signer.certificateSerial })],
    };
  });
  if (outcome instanceof DomainError) throw outcome;
  return outcome;
}

/**
 * POST .../firmware-releases/<version>/withdraw {"reason"}: the release stays
 * published (device histories name it) but check 5 refuses it from now on,
 * and renewalInfo asks the devices whose certificate was issued on it to
 * renew now, which they can only do on an approved release. Audited.
 */
export async function withdrawRelease(store: FirmwareReleaseAdminStore, audit: AuditLog, who: Principal, model: string, version: string, reason: string, now: Date): Promise<FirmwareReleaseRecord> {
  return audit.record(store, async (tx) => {
    const record = await tx.firmwareReleases.findForUpdate(model, version);
    if (!record) throw notFound(`model ${model} has no release ${version}`);
    if (!record.approvedAt) throw conflict(`release ${version} of model ${model} is not approved: there is nothing to withdraw`);
    if (record.withdrawnAt) throw conflict(`release ${version} of model ${model} was withdrawn already, at ${record.withdrawnAt.toISOString()}`);
    const withdrawal = { withdrawnBy: who.principal, withdrawnAt: now, reason };
    if (!(await tx.firmwareReleases.withdraw(model, version, withdrawal))) throw conflict(`release ${version} of model ${model} was withdrawn meanwhile`);
    return {
      value: { ...record, ...withdrawal, withdrawReason: reason },
      events: [event('firmware.release-withdrawn', who, record, { reason, sequence: record.sequence, manifestSha256: record.manifestSha256 })],
    };
  });
}

/** A release as the API shows it; `baseUrl` is the plain-HTTP base its envelope is published under. */
export function releaseView(record: FirmwareReleaseRecord, baseUrl: string) {
  return {
    model: record.model, version: record.version, digest: record.digest, size: record.legacy ? null : record.size, sequence: record.sequence, minSequence: record.minSequence,
    proposal: record.proposal, status: record.withdrawnAt ? 'withdrawn' : record.approvedAt ? 'approved' : 'proposed',
    proposedBy: record.proposedBy, proposedAt: record.proposedAt.toISOString(),
    approvedBy: record.approvedBy, approvedAt: record.approvedAt?.toISOString() ?? null,
    signer: record.signerCertificateSerial, manifestSha256: record.manifestSha256,
    envelope: record.approvedAt && !record.legacy ? `${baseUrl}/firmware/${record.model}/${record.version}.suit` : null,
    withdrawnAt: record.withdrawnAt?.toISOString() ?? null, withdrawReason: record.withdrawReason, legacy: record.legacy,
  };
}
