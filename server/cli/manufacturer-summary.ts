import * as x509 from '@peculiar/x509';
import { sha256Hex } from '../../ca/digest.ts';
import { pendingDiff, proposalHash } from '../../registry/manufacturers/manufacturers.ts';
import type { CrlSource, ManufacturerRecord } from '../../store/manufacturer-store.ts';

/** One anchor for a person: subject, fingerprint, validity. */
export function anchorLines(b64: string): string {
  const der = Buffer.from(b64, 'base64');
  const c = new x509.X509Certificate(new Uint8Array(der));
  return `    ${c.subject}\n      sha256 ${sha256Hex(der)}\n      valid  ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()}\n`;
}

const crlSourceText = (crl: CrlSource) => (crl === null ? 'publishes no CRL' : 'url' in crl ? crl.url : `uploaded file (sha256 ${sha256Hex(crl.pem)})`);

/** `manufacturer show` for a person: what the JSON says, without the PEM. */
export function manufacturerSummary(record: ManufacturerRecord, claimed: number): string {
  const lines = [`manufacturer ${record.id}`];
  const approved = record.approvedAt ? ` (approved by ${record.approvedBy} at ${record.approvedAt.toISOString()})` : '';
  lines.push(`  status   ${record.status}${approved}`);
  if (record.withdrawnAt) lines.push(`  withdrawn by ${record.withdrawnBy} at ${record.withdrawnAt.toISOString()}, reason ${record.withdrawReason}`);
  if (record.active) {
    lines.push('  anchors');
    lines.push(...record.active.certificates.map((b64) => anchorLines(b64).trimEnd()));
    const crl = record.crl;
    const state = crl.thisUpdate ? `CRL number ${crl.number ?? '-'} of ${crl.thisUpdate.toISOString()}, next update ${crl.nextUpdate?.toISOString() ?? '-'}` : 'no CRL read yet';
    lines.push(`  CRL      ${crlSourceText(record.active.crl)}${record.active.crl === null ? '' : `: ${state}`}${crl.error ? ` (last read failed: ${crl.error})` : ''}`);
    lines.push(`  models   ${record.active.models.join(', ')}`);
  } else {
    lines.push('  anchors  none in force (never approved)');
  }
  lines.push(`  claimed  ${claimed} device(s)`);
  if (record.retired.length) lines.push(`  retired  ${record.retired.map((b64) => sha256Hex(Buffer.from(b64, 'base64'))).join(', ')}`);
  if (record.proposed) {
    const diff = pendingDiff(record.active, record.proposed);
    const sha = proposalHash(record.proposed);
    lines.push(`  pending change ${sha}, proposed by ${record.proposedBy ?? '-'} at ${record.proposedAt?.toISOString() ?? '-'}`);
    for (const c of diff.certificates.added) lines.push(`    + certificate ${c.subject}  sha256 ${c.sha256}  until ${c.notAfter}`);
    for (const c of diff.certificates.removed) lines.push(`    - certificate ${c.subject}  sha256 ${c.sha256}  until ${c.notAfter}`);
    for (const m of diff.models.added) lines.push(`    + model ${m}`);
    for (const m of diff.models.removed) lines.push(`    - model ${m}`);
    if (diff.crl.changed) lines.push(`    CRL ${crlSourceText(record.active?.crl ?? null)} -> ${crlSourceText(record.proposed.crl)}`);
    lines.push(`    another operator approves it with: devid-ca manufacturer approve ${record.id} --proposal ${sha}`);
  }
  return `${lines.join('\n')}\n`;
}
