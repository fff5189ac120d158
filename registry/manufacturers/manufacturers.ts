import * as x509 from '@peculiar/x509';
import { sha256Hex } from '../../ca/digest.ts';
import { certificatePem } from '../../ca/pem.ts';
import { checkCertificate, isKeyRefusal, type CheckedCertificate } from '../../pki/certificate-key.ts';
import { DomainError, conflict, forbidden, malformed, notFound } from '../../errors/domain-error.ts';
import { manufacturerScopeKey } from '../../store/batch-store.ts';
import type { CrlSource, ManufacturerConfig, ManufacturerRecord } from '../../store/manufacturer-store.ts';
import { LOCKS } from '../../store/locks.ts';
import type { ManufacturerAdminStore } from '../../store/subsets.ts';
import { REVOCATION_REASONS } from '../../store/types.ts';
import type { Audited, AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { NAME_PATTERN, checkModelName } from '../identifiers.ts';
import { checkProposalHash, proposalHash as canonicalHash } from '../two-person.ts';
import { checkReason } from '../lifecycle/revocation.ts';
import type { BatchProgress } from '../lifecycle/revocation-service.ts';
import type { Principal } from '../lifecycle/support-grants.ts';

/** Our own factory intermediate's name as a manufacturer (docs/operators/manufacturers.md): built in, not registered. */
export const SELF = 'self';
const MAX_CERTIFICATES = 8;
const MAX_MODELS = 256;
/** A CRL of about 400,000 entries (a manufacturer revoking whole batches): its DER, or its PEM. */
export const MAX_CRL_BYTES = 16 * 1024 * 1024;

export function checkManufacturerId(value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value) || value.length > 64) throw malformed('a manufacturer id is 1-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit');
  if (value === SELF) throw conflict('"self" is this CA\'s own factory: it is built in and cannot be registered');
  return value;
}

/** PEM CERTIFICATE blocks to DER; anything else in the text is refused. */
export function pemCertificates(text: string, field: string): Buffer[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0 || text.replace(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g, '').trim() !== '') throw malformed(`${field} must be PEM certificates`);
  return blocks.map((block) => Buffer.from(block.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64'));
}

/**
 * What a manufacturer's trust covers now: its active certificates (DER), and
 * the SHA-256 of every certificate it no longer covers (withdrawn, or left
 * out by a change), which no path may go through even when a device sends
 * it in x5c.
 */
export function trustOf(record: ManufacturerRecord): ManufacturerTrust {
  return {
    anchors: (record.active?.certificates ?? []).map((b64) => Buffer.from(b64, 'base64')),
    withdrawn: new Set(record.retired.map(fingerprint)),
  };
}

export interface ManufacturerTrust {
  anchors: Buffer[];
  withdrawn: ReadonlySet<string>;
}

/** SHA-256 of a certificate kept as base64 DER: how the API, the audit log and withdrawals name it. */
const fingerprint = (b64: string): string => sha256Hex(Buffer.from(b64, 'base64'));

const selfSigned = (c: CheckedCertificate) => issued(c, c);
/** Whether `issuer` issued `c`: names, key identifiers, keyCertSign, and the signature under the issuer's checked key. */
const issued = (c: CheckedCertificate, issuer: CheckedCertificate) => c.cert.checkIssued(issuer.cert) && c.cert.verify(issuer.key.key);

/** A stored certificate that is a root; one whose key is refused (stored by an older version) is none. */
function storedRoot(b64: string): boolean {
  try {
    return selfSigned(checkCertificate(Buffer.from(b64, 'base64')));
  } catch {
    return false;
  }
}

/**
 * Checks a manufacturer's certificates: at least one self-signed root, and
 * every other one a CA that chains to a root of the set (so the set is
 * the manufacturer's own hierarchy, not a collection of strangers).
 */
function checkCertificates(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_CERTIFICATES) throw malformed(`certificates is a list of 1 to ${MAX_CERTIFICATES} PEM certificates: the root and any intermediates`);
  const ders = value.map((pem, i) => {
    if (typeof pem !== 'string' || pem.length > 16_384) throw malformed(`certificates[${i}] must be one PEM certificate`);
    const blocks = pemCertificates(pem, `certificates[${i}]`);
    if (blocks.length !== 1) throw malformed(`certificates[${i}] must be one PEM certificate`);
    return blocks[0]!;
  });
  const parsed = ders.map((der, i) => {
    try {
      return checkCertificate(der);
    } catch (err) {
      if (isKeyRefusal(err)) throw malformed(`certificates[${i}] has a public key that is refused: ${err.detail}`);
      throw malformed(`certificates[${i}] is not an X.509 certificate`);
    }
  });
  if (new Set(ders.map((d) => sha256Hex(d))).size !== ders.length) throw malformed('certificates lists one certificate twice');
  parsed.forEach(({ cert }, i) => {
    if (!cert.ca) throw malformed(`certificates[${i}] (${cert.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
  });
  if (!parsed.some(selfSigned)) throw malformed('certificates must include the manufacturer\'s root (self-signed)');
  const chainsToRoot = (c: CheckedCertificate, depth: number): boolean => {
    if (selfSigned(c)) return true;
    if (depth >= MAX_CERTIFICATES) return false;
    return parsed.some((issuer) => issuer !== c && issued(c, issuer) && chainsToRoot(issuer, depth + 1));
  };
  parsed.forEach((c, i) => {
    if (!chainsToRoot(c, 0)) throw malformed(`certificates[${i}] (${c.cert.subject.replace(/\n/g, ', ')}) does not chain to a root of the set`);
  });
  return ders.map((d) => d.toString('base64'));
}

function checkCrlSource(value: unknown): CrlSource {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw malformed('crl is {"url": "http://..."}, {"pem": "-----BEGIN X509 CRL-----..."} or null');
  const keys = Object.keys(value);
  const { url, pem } = value as { url?: unknown; pem?: unknown };
  if (keys.length === 1 && typeof url === 'string') {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw malformed('crl.url is not a URL');
    }
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || url.length > 2048 || parsed.username || parsed.password) throw malformed('crl.url is an http or https URL of at most 2048 characters, without credentials');
    return { url: parsed.toString() };
  }
  if (keys.length === 1 && typeof pem === 'string') {
    if (pem.length > MAX_CRL_BYTES) throw malformed(`crl.pem is larger than ${MAX_CRL_BYTES} bytes`);
    return { pem };
  }
  throw malformed('crl is {"url": "http://..."}, {"pem": "-----BEGIN X509 CRL-----..."} or null');
}

export function checkManufacturerConfig(body: { certificates?: unknown; models?: unknown; crl?: unknown }): ManufacturerConfig {
  const certificates = checkCertificates(body.certificates);
  if (!Array.isArray(body.models) || body.models.length === 0 || body.models.length > MAX_MODELS) throw malformed(`models is a list of 1 to ${MAX_MODELS} model names`);
  const models = [...new Set(body.models.map((m) => checkModelName(m)))];
  if (body.crl === undefined) throw malformed('crl is required: {"url"}, {"pem"} or null (the manufacturer publishes no revocation)');
  return { certificates, models, crl: checkCrlSource(body.crl) };
}

/** A certificate as the API shows it: who it is, its fingerprint, until when, and the PEM to check it. */
function certificateView(b64: string) {
  const der = Buffer.from(b64, 'base64');
  const c = new x509.X509Certificate(der);
  return { subject: c.subject, sha256: sha256Hex(der), notAfter: c.notAfter.toISOString(), pem: certificatePem(der) };
}

/** A CRL source as the API shows it: the URL, or the SHA-256 of the uploaded PEM (so two uploads can be told apart). */
function crlView(crl: CrlSource) {
  return crl === null ? null : 'url' in crl ? { url: crl.url } : { pem: 'uploaded', sha256: sha256Hex(crl.pem) };
}

const sameCrlSource = (a: CrlSource, b: CrlSource) => JSON.stringify(a) === JSON.stringify(b);

function configView(config: ManufacturerConfig | null) {
  if (!config) return null;
  return { certificates: config.certificates.map(certificateView), models: config.models, crl: crlView(config.crl) };
}

/**
 * What approving the pending change does, field by field, against the
 * configuration in force (none for a new manufacturer): the approver reads
 * this, so a change that only drops the CRL (revocation no longer checked)
 * shows as plainly as a new root. Keyed by every field of the
 * configuration, so a field added later cannot be left out of it.
 */
export function pendingDiff(active: ManufacturerConfig | null, proposed: ManufacturerConfig) {
  const before = active?.certificates ?? [];
  const models = active?.models ?? [];
  const crl = active?.crl ?? null;
  return {
    certificates: {
      added: proposed.certificates.filter((c) => !before.includes(c)).map(certificateView),
      // Retired by the approval: never trusted again under this id.
      removed: before.filter((c) => !proposed.certificates.includes(c)).map(certificateView),
      unchanged: proposed.certificates.filter((c) => before.includes(c)).map(fingerprint),
    },
    models: {
      added: proposed.models.filter((m) => !models.includes(m)),
      removed: models.filter((m) => !proposed.models.includes(m)),
      unchanged: proposed.models.filter((m) => models.includes(m)),
    },
    crl: { before: crlView(crl), after: crlView(proposed.crl), changed: !sameCrlSource(crl, proposed.crl) },
  } satisfies Record<keyof ManufacturerConfig, unknown>;
}

/** A manufacturer as the operator API, the CLI and the console show it. */
export function manufacturerView(record: ManufacturerRecord, extra: { claimed?: number; withdrawal?: BatchProgress; withdrawals?: Record<string, BatchProgress> } = {}) {
  return {
    id: record.id, status: record.status, active: configView(record.active), retiredCertificates: record.retired.map(fingerprint),
    pending: record.proposed ? {
      ...configView(record.proposed), diff: pendingDiff(record.active, record.proposed), sha256: proposalHash(record.proposed), proposedBy: record.proposedBy, proposedAt: record.proposedAt?.toISOString() ?? null,
    } : null,
    approvedBy: record.approvedBy, approvedAt: record.approvedAt?.toISOString() ?? null,
    withdrawn: record.withdrawnAt ? { by: record.withdrawnBy, at: record.withdrawnAt.toISOString(), reason: record.withdrawReason } : null,
    crl: {
      number: record.crl.number, thisUpdate: record.crl.thisUpdate?.toISOString() ?? null, nextUpdate: record.crl.nextUpdate?.toISOString() ?? null,
      checkedAt: record.crl.checkedAt?.toISOString() ?? null, error: record.crl.error,
    },
    ...(extra.claimed !== undefined ? { claimedDevices: extra.claimed } : {}),
    ...(extra.withdrawal ? { withdrawal: extra.withdrawal } : {}),
    ...(extra.withdrawals && Object.keys(extra.withdrawals).length > 0 ? { certificateWithdrawals: extra.withdrawals } : {}),
  };
}

const event = (action: string, who: Principal, id: string, data: Record<string, unknown> = {}): AuditEntry =>
  ({ action, actor: who.actor, data: { manufacturer: id, principal: who.principal, ...data } });

/**
 * PUT /operator/v1/manufacturers/<id>: a new manufacturer, or a change to
 * one, waits for a second operator (201 for a new one); the active
 * configuration, if any, stays in force meanwhile. Every model must be
 * declared. A withdrawn manufacturer stays withdrawn.
 */
export async function proposeManufacturer(store: ManufacturerAdminStore, audit: AuditLog, who: Principal, id: string, config: ManufacturerConfig, now: Date) {
  return audit.record(store, async (tx) => {
    for (const model of config.models) {
      if (!(await tx.models.byName(model))) throw notFound(`no model ${model}: declare it with PUT /operator/v1/models/${model} first`);
    }
    const result = await tx.manufacturers.propose(id, config, who.principal, now);
    if (!result) throw conflict(`manufacturer ${id} was withdrawn: register its new hierarchy under a new id`);
    const fingerprints = config.certificates.map(fingerprint);
    return {
      value: result,
      events: [event('manufacturer.proposed', who, id, { certificates: fingerprints, models: config.models, crl: config.crl === null ? null : 'url' in config.crl ? { url: config.crl.url } : { pem: sha256Hex(config.crl.pem) } })],
    };
  });
}

/** SHA-256 of a proposal's canonical JSON: what the approver saw, named in the approval. */
export function proposalHash(config: ManufacturerConfig): string {
  return canonicalHash(config);
}

/** Where an approver reads the hash to name: the same on every surface. */
const WHERE_THE_HASH_IS = 'pending.sha256 in GET /operator/v1/manufacturers/<id> (or "devid-ca manufacturer show <id>"), beside pending.diff, the change it names';

/** The `proposal` an approval must name: 64 lowercase hex digits. */
export function checkProposal(value: unknown): string {
  return checkProposalHash(value, WHERE_THE_HASH_IS);
}

/** Why this approval may not go through, if it may not: the proposer, a change that is not the one named, a withdrawn certificate brought back. */
function approvalRefusal(record: ManufacturerRecord, who: Principal, proposal: string): DomainError | undefined {
  if (!record.proposed || !record.proposedAt) return conflict(`manufacturer ${record.id} has no change waiting for approval`);
  if (record.proposedBy === who.principal) return forbidden(`${who.principal} proposed this change: another operator must approve it`);
  if (proposalHash(record.proposed) !== proposal) return conflict(`the change waiting for approval is not proposal ${proposal}: it changed meanwhile; read it again (${WHERE_THE_HASH_IS})`);
  const back = record.proposed.certificates.find((c) => record.retired.includes(c));
  if (back) return conflict(`the change would trust again the withdrawn certificate ${fingerprint(back)}: register the manufacturer anew under another id`);
  return undefined;
}

/**
 * POST /operator/v1/manufacturers/<id>/approve {"proposal"}: by another
 * person than the one who proposed it; the proposal comes into force.
 * `proposal` (the hash the API, the CLI and the console show beside the
 * change) is required: the change approved is the one the approver read,
 * not one swapped in meanwhile. A proposal may not bring back a withdrawn
 * certificate. Approvals and refused approvals are both audited with the
 * hash named.
 */
export async function approveManufacturer(store: ManufacturerAdminStore, audit: AuditLog, who: Principal, id: string, now: Date, expected: unknown): Promise<ManufacturerRecord> {
  const proposal = checkProposal(expected);
  const outcome = await audit.record(store, async (tx): Promise<Audited<ManufacturerRecord | DomainError>> => {
    const record = await tx.manufacturers.findForUpdate(id);
    if (!record) throw notFound(`no manufacturer ${id}`);
    const refusal = approvalRefusal(record, who, proposal);
    if (refusal) {
      const pending = record.proposed ? proposalHash(record.proposed) : null;
      return { value: refusal, events: [event('manufacturer.approval-refused', who, id, { proposal, pending, reason: refusal.detail })] };
    }
    const proposed = record.proposed!;
    const diff = pendingDiff(record.active, proposed);
    if (diff.crl.changed) await tx.manufacturers.resetCrl(id);
    const retired = [...record.retired, ...(record.active?.certificates ?? []).filter((c) => !proposed.certificates.includes(c) && !record.retired.includes(c))];
    const approved = (await tx.manufacturers.approve(id, record.proposedAt!, who.principal, now, retired))!;
    const changes = {
      certificatesAdded: diff.certificates.added.map((c) => c.sha256), certificatesRemoved: diff.certificates.removed.map((c) => c.sha256),
      modelsAdded: diff.models.added, modelsRemoved: diff.models.removed, crl: { before: diff.crl.before, after: diff.crl.after },
    };
    return { value: approved, events: [event('manufacturer.approved', who, id, { proposal, proposedBy: record.proposedBy, proposedAt: record.proposedAt!.toISOString(), changes })] };
  });
  if (outcome instanceof DomainError) throw outcome;
  return outcome;
}

/**
 * POST /operator/v1/manufacturers/<id>/withdraw {"reason", "certificate"?}:
 * manufacturing compromise. The whole manufacturer, or one of its
 * intermediates (by SHA-256): attestations through it are refused at once,
 * then every device it vouched for is quarantined and its operational
 * certificates revoked, as a batch revocation (the caller resumes the job
 * under the returned key; a stopped server resumes it at start). Taking trust away
 * needs one operator (as a batch revocation); giving it needs two.
 */
export async function withdrawManufacturer(
  store: ManufacturerAdminStore, audit: AuditLog, who: Principal, id: string, body: { reason?: unknown; certificate?: unknown }, now: Date,
): Promise<{ key: string; record: ManufacturerRecord }> {
  const reason = checkReason(body.reason);
  const certificate = body.certificate;
  if (certificate !== undefined && (typeof certificate !== 'string' || !/^[0-9a-f]{64}$/.test(certificate))) throw malformed('certificate is the SHA-256 (64 lowercase hex digits) of one of the manufacturer\'s intermediates');
  const key = manufacturerScopeKey(id, certificate as string | undefined);
  const record = await audit.record(store, async (tx) => {
    const current = await tx.manufacturers.findForUpdate(id);
    if (!current) throw notFound(`no manufacturer ${id}`);
    // The job is declared with the withdrawal, so a stop between them cannot leave devices unquarantined (resumed at start).
    await tx.lock(LOCKS.batch(key));
    await tx.batches.declare({ batch: key, reason: REVOCATION_REASONS[reason], actor: who.actor, requestedAt: now });
    if (certificate === undefined) {
      const withdrawn = await tx.manufacturers.withdraw(id, who.principal, reason, now);
      if (!withdrawn) throw conflict(`manufacturer ${id} is withdrawn already`);
      return { value: withdrawn, events: [event('manufacturer.withdrawn', who, id, { reason, path: 'manufacturing' })] };
    }
    if (current.status !== 'active' || !current.active) throw conflict(`manufacturer ${id} is ${current.status}: withdraw it whole`);
    const remaining = current.active.certificates.filter((b64) => fingerprint(b64) !== certificate);
    if (remaining.length === current.active.certificates.length) throw notFound(`manufacturer ${id} has no active certificate ${certificate}`);
    if (!remaining.some(storedRoot)) throw conflict('that is the manufacturer\'s root: withdraw the manufacturer whole');
    const gone = current.active.certificates.filter((b64) => !remaining.includes(b64));
    // A pending change loses the withdrawn certificate too, so approving it cannot bring the certificate back.
    const proposed = current.proposed ? { ...current.proposed, certificates: current.proposed.certificates.filter((b64) => !gone.includes(b64)) } : null;
    await tx.manufacturers.narrow(id, { ...current.active, certificates: remaining }, proposed, [...current.retired, ...gone], now);
    return { value: (await tx.manufacturers.find(id))!, events: [event('manufacturer.certificate-withdrawn', who, id, { certificate, reason, path: 'manufacturing' })] };
  });
  return { key, record };
}
