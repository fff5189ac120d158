import { caSlug } from '../../ca/issuer.ts';
import { certificatePem } from '../../ca/pem.ts';
import type { HistoryStore } from '../../store/subsets.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { lineageOf, type Lineage } from './lineage.ts';
import { grantView } from '../lifecycle/support-grants.ts';

/** The release a firmware step ran (docs/auditors/audit-log.md#firmware-in-the-export). */
export interface FirmwareStep {
  version: string;
  sequence: number;
  manifestSha256: string | null;
  signer: string | null;
  legacy: boolean;
}

export interface DeviceHistory {
  device: {
    serial: string; model: string; batch: string; line: string; deviceClass: string | null;
    owner: string | null; state: string; manufacturer: string; createdAt: string; updatedAt: string;
  };
  /** For a device born elsewhere: the operator's claim on it (docs/operators/manufacturers.md). */
  claim: { manufacturer: string; birthCertificateSha256: string | null; source: string; manifestSha256: string | null; claimedBy: string; claimedAt: string; supersededAt: string | null } | null;
  /** Signed ownership statements across companies, exported and imported, oldest first. */
  ownershipStatements: Array<{ direction: string; at: string; sha256: string; statement: unknown }>;
  /** Every audit event of the device, in chain (time) order. */
  events: Array<{ seq: number; at: string; action: string; actor: string; data: Record<string, unknown> }>;
  /** Every owner, in order: who recorded the transfer and on what evidence. */
  ownership: Array<{ from: string | null; to: string; at: string; principal: string; evidence: string }>;
  /**
   * Every firmware version and digest the device attested, in order; a step
   * check 5 mapped to a release names it: its version, sequence, manifest
   * hash and signer (the firmware signer certificate's serial), or `legacy`
   * for a former allowlist entry (unsigned: no manifest, no signer).
   */
  firmware: Array<{ version: string; digest: string; certificateSerial: string | null; attestedAt: string; release?: FirmwareStep }>;
  /** Every certificate of the device, oldest first, with its predecessor link. */
  certificates: Array<{
    serial: string; kind: string; issuer: string; issuerSerial: string; sha256: string; predecessorSha256: string | null;
    notBefore: string; notAfter: string; revokedAt: string | null; revocationReason: number | null; pem: string;
    /** Operational certificates: `attested` or `mediated` (its certificate policy, docs/operators/gateways.md). */
    assurance?: 'attested' | 'mediated';
    /** The gateway that vouched for a mediated certificate, by the certificate it authenticated with. */
    mediator?: { serial: string; certificateSha256: string };
    /** The gateway that relayed the attestation of an attested one. */
    gateway?: { serial: string; certificateSha256: string };
  }>;
  /** Every vendor support grant of the device, oldest first. */
  supportGrants: Array<ReturnType<typeof grantView>>;
  /** The certificates as a graph along predecessor links, with refused successors and clone signals. */
  lineage: Lineage;
}

/** The device's full story (docs/auditors/audit-log.md), or undefined for an unknown serial. */
export async function deviceHistory(store: HistoryStore, serial: string): Promise<DeviceHistory | undefined> {
  const device = await store.devices.find(serial);
  if (!device) return undefined;
  const events = (await store.audit.byDevice(serial)).map((row) => {
    const event = AuditLog.parse(row);
    return { seq: event.seq, at: event.at, action: event.action, actor: event.actor, data: event.data ?? {} };
  });
  const issuers = new Map((await store.caCertificates.all()).map((r) => [r.id, r]));
  const paths = await store.gateways.pathsOfDevice(serial);
  const certificates = (await store.certificates.byDevice(serial)).map((c): DeviceHistory['certificates'][number] => {
    const issuer = issuers.get(c.issuerId)!;
    const path = paths.get(c.serial);
    const via = path ? { serial: path.gatewaySerial, certificateSha256: path.gatewayCertificateSha256 } : undefined;
    return {
      serial: c.serial,
      kind: c.kind,
      // The issuing CA by its slug (operational-2 after a rollover) and certificate serial: the CA row, not a name.
      issuer: caSlug(issuer.role, issuer.generation),
      issuerSerial: issuer.serial,
      sha256: c.sha256,
      predecessorSha256: c.predecessorSha256,
      notBefore: c.notBefore.toISOString(),
      notAfter: c.notAfter.toISOString(),
      revokedAt: c.revokedAt?.toISOString() ?? null,
      revocationReason: c.revocationReason,
      pem: certificatePem(c.der),
      ...(c.kind === 'operational' ? { assurance: path?.assurance ?? 'attested' } : {}),
      ...(via ? { [path!.assurance === 'mediated' ? 'mediator' : 'gateway']: via } : {}),
    };
  });
  // A device born elsewhere: its outside birth certificate heads its lineage, issued by its manufacturer.
  const outside = await store.claims.birthOf(serial);
  if (outside) {
    certificates.unshift({
      serial: outside.serialHex, kind: 'birth', issuer: `manufacturer:${outside.manufacturer}`, issuerSerial: outside.issuerSha256, sha256: outside.sha256, predecessorSha256: null,
      notBefore: outside.notBefore.toISOString(), notAfter: outside.notAfter.toISOString(), revokedAt: outside.revokedAt?.toISOString() ?? null,
      revocationReason: outside.revocationReason, pem: certificatePem(outside.der),
    });
  }
  const claim = await store.claims.find(serial);
  return {
    claim: claim ? {
      manufacturer: claim.manufacturer, birthCertificateSha256: claim.birthCertificateSha256, source: claim.source, manifestSha256: claim.manifestSha256,
      claimedBy: claim.claimedBy, claimedAt: claim.claimedAt.toISOString(), supersededAt: claim.supersededAt?.toISOString() ?? null,
    } : null,
    ownershipStatements: (await store.claims.statements(serial)).map((r) => ({ direction: r.direction, at: r.at.toISOString(), sha256: r.sha256, statement: JSON.parse(r.statement) as unknown })),
    device: {
      serial: device.serial, model: device.model, batch: device.batch, line: device.line, deviceClass: device.deviceClass,
      owner: device.owner, state: device.state, manufacturer: device.manufacturer, createdAt: device.createdAt.toISOString(), updatedAt: device.updatedAt.toISOString(),
    },
    events,
    ownership: (await store.ownership.byDevice(serial)).map((o) => ({ from: o.from, to: o.to, at: o.at.toISOString(), principal: o.principal, evidence: o.evidence })),
    firmware: await firmwareSteps(store, serial),
    certificates,
    supportGrants: (await store.support.byDevice(serial)).map(grantView),
    lineage: lineageOf({ certificates, events }),
  };
}

/**
 * The firmware lineage, each step with the release check 5 mapped it to
 * (recorded with it: its sequence and manifest hash), and that release's
 * signer, read by the manifest hash. A step without a manifest is on a
 * legacy release; steps from before signed releases name none.
 */
async function firmwareSteps(store: HistoryStore, serial: string): Promise<DeviceHistory['firmware']> {
  const steps = await store.firmware.byDevice(serial);
  const hashes = [...new Set(steps.flatMap((f) => (f.release?.manifestSha256 ? [f.release.manifestSha256] : [])))];
  const signers = new Map((await store.firmwareReleases.byManifests(hashes)).map((r) => [r.manifestSha256!, r.signerCertificateSerial]));
  return steps.map((f) => ({
    version: f.version, digest: f.digest, certificateSerial: f.certificateSerial, attestedAt: f.attestedAt.toISOString(),
    ...(f.release ? {
      release: {
        version: f.version, sequence: f.release.sequence, manifestSha256: f.release.manifestSha256,
        signer: f.release.manifestSha256 ? signers.get(f.release.manifestSha256) ?? null : null, legacy: f.release.manifestSha256 === null,
      },
    } : {}),
  }));
}

/** RFC 5280 CRLReason names by code (7 is unused). */
const REASON_NAMES: Record<number, string> = {
  0: 'unspecified', 1: 'keyCompromise', 2: 'cACompromise', 3: 'affiliationChanged', 4: 'superseded', 5: 'cessationOfOperation',
  6: 'certificateHold', 8: 'removeFromCRL', 9: 'privilegeWithdrawn', 10: 'aACompromise',
};

/** A revocation reason code as its RFC 5280 name (an unknown code as its number). */
export function revocationReasonName(code: number | null): string {
  if (code === null) return 'unspecified';
  return REASON_NAMES[code] ?? String(code);
}

/** The same story for a person: one line per event, then the certificates. */
export function formatHistory(history: DeviceHistory): string {
  const d = history.device;
  const lines = [`device ${d.serial}  model ${d.model}  manufacturer ${d.manufacturer}  batch ${d.batch}  line ${d.line}  state ${d.state}  owner ${d.owner ?? '-'}`];
  if (history.claim) lines.push(`claimed ${history.claim.claimedAt} by ${history.claim.claimedBy} (${history.claim.source})  ${history.claim.birthCertificateSha256 === null ? 'by serial' : `birth certificate sha256 ${history.claim.birthCertificateSha256}`}`);
  lines.push('', 'events:');
  for (const e of history.events) {
    const data = Object.entries(e.data).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
    lines.push(`  #${e.seq}  ${e.at}  ${e.action}  by ${e.actor}  ${data}`);
  }
  lines.push('', 'owners:');
  for (const o of history.ownership) lines.push(`  ${o.at}  ${o.from ?? '-'} -> ${o.to}  recorded by ${o.principal}  evidence: ${o.evidence}`);
  lines.push('', 'firmware:');
  for (const f of history.firmware) {
    const release = !f.release ? '' : f.release.legacy ? `  legacy release ${f.release.version} (unsigned)`
      : `  release ${f.release.version} sequence ${f.release.sequence} manifest ${f.release.manifestSha256 ?? '-'} signer ${f.release.signer ?? '-'}`;
    lines.push(`  ${f.attestedAt}  ${f.version}  ${f.digest}  certificate ${f.certificateSerial ?? '-'}${release}`);
  }
  lines.push('', 'certificates:');
  for (const c of history.certificates) {
    const revoked = c.revokedAt ? `  REVOKED ${c.revokedAt} reason ${revocationReasonName(c.revocationReason)}` : '';
    const assurance = c.assurance ? `  ${c.assurance}${c.mediator ? ` by gateway ${c.mediator.serial}` : ''}${c.gateway ? ` through gateway ${c.gateway.serial}` : ''}` : '';
    lines.push(`  ${c.kind.padEnd(11)} ${c.serial}  by ${c.issuer}  ${c.notBefore} .. ${c.notAfter}  sha256 ${c.sha256}  predecessor ${c.predecessorSha256 ?? '-'}${assurance}${revoked}`);
  }
  return `${lines.join('\n')}\n`;
}
