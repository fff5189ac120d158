import { html, useState } from './preact-htm.mjs';
import { ActionButton, REASONS } from './actions.mjs';
import { enc, useResource, when } from './api.mjs';
import { LineageGraph } from './lineage.mjs';

const LABELS = {
  'device.manufactured': 'born (birth certificate)',
  'device.enrolled': 'enrolled (first operational certificate)',
  'device.renewed': 'renewed',
  'certificate.revoked': 'certificate revoked',
  'device.attested': 'attested',
  'device.transferred': 'ownership transferred',
  'device.clone-suspected': 'CLONE SIGNAL',
  'device.lineage-fork': 'LINEAGE FORK refused',
  'device.decommissioned': 'decommissioned',
  'device.quarantined': 'quarantined',
  'device.claimed': 'claimed (born elsewhere)',
  'device.birth-revoked': 'BIRTH CERTIFICATE REVOKED by its manufacturer',
  'device.unclaimed-attestation': 'UNCLAIMED device tried to enroll',
  'ownership.statement-exported': 'ownership statement signed (handed over)',
  'ownership.statement-imported': 'ownership statement imported',
};

/** An event's details on one line: long hashes and ids cut short (the full values are in the export). */
function summary(data) {
  return Object.entries(data)
    .filter(([, v]) => v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v).length > 24 ? `${String(v).slice(0, 16)}…` : v}`)
    .join('  ');
}

/**
 * A certificate's status in the table: revoked (with when), expired,
 * replaced (an operational certificate has named it as its predecessor: the
 * device has moved on to the successor's key, though this one is still
 * within its validity), else valid. A birth certificate is never replaced by
 * the operational certificates that name it: it stays the device's factory
 * identity, and a new birth certificate comes only by reprovisioning, which
 * revokes the old one.
 */
export function statusOf(c, certificates) {
  if (c.revokedAt) return `revoked ${when(c.revokedAt)}`;
  if (Date.parse(c.notAfter) <= Date.now()) return 'expired';
  if (c.kind !== 'birth' && certificates.some((s) => s.kind === 'operational' && s.predecessorSha256 === c.sha256)) return 'replaced';
  return 'valid';
}

/** One device: its state and actions, lineage graph, certificates, firmware lineage, support grants and timeline. */
export function DevicePage({ serial, me }) {
  const { data: history, error, reload: load } = useResource(`/audit/v1/devices/${enc(serial)}/history`);
  const [notice, setNotice] = useState(null);
  const done = (text) => () => {
    setNotice(text);
    load();
  };
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!history) return html`<p>Loading ${serial}…</p>`;
  const d = history.device;
  const operator = me.role === 'operator';
  const path = `/operator/v1/devices/${enc(serial)}`;
  const live = history.certificates.filter((c) => !c.revokedAt && Date.parse(c.notAfter) > Date.now());
  return html`
    <section class="device">
      <h2>Device <span class="mono">${d.serial}</span> <span class=${`state ${d.state}`}>${d.state}</span></h2>
      <dl class="facts">
        <dt>Model</dt><dd>${d.model}</dd><dt>Batch</dt><dd>${d.batch}</dd><dt>Line</dt><dd>${d.line}</dd>
        <dt>Class</dt><dd>${d.deviceClass ?? '(model default)'}</dd><dt>Owner</dt><dd>${d.owner ?? '—'}</dd><dt>Born</dt><dd>${when(d.createdAt)}</dd>
        <dt>Manufacturer</dt><dd>${d.manufacturer === 'self' ? 'this CA\'s factory' : d.manufacturer}</dd>
        ${history.claim && html`<dt>Claimed</dt><dd>${when(history.claim.claimedAt)} by ${history.claim.claimedBy} (${history.claim.source}), birth certificate <span class="mono" title=${history.claim.birthCertificateSha256}>${history.claim.birthCertificateSha256.slice(0, 16)}…</span></dd>`}
      </dl>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      ${operator && html`
        <div class="actions">
          ${d.state === 'active' ? html`<${ActionButton} label="Suspend" consequence=${`${serial} will be refused enrollment and renewal until an operator resumes it. Its certificates stay valid.`}
            request=${() => ({ method: 'POST', path: `${path}/suspend`, body: {} })} onDone=${done(`${serial} suspended.`)} />` : null}
          ${d.state === 'suspended' ? html`<${ActionButton} label="Resume" consequence=${`${serial} may enroll and renew again.`}
            request=${() => ({ method: 'POST', path: `${path}/resume`, body: {} })} onDone=${done(`${serial} resumed.`)} />` : null}
          <${ActionButton} label="Revoke device" danger consequence=${`Every live certificate of ${serial} (${live.length} now) is revoked for good: OCSP and the next CRL will say revoked. The device keeps its state.`}
            fields=${[{ name: 'reason', label: 'Reason', options: REASONS }]}
            request=${(v) => ({ method: 'POST', path: `${path}/revoke`, body: { reason: v.reason } })} onDone=${(r) => done(`${r.revokedCertificates.length} certificate(s) revoked.`)()} />
          <${ActionButton} label="Transfer" consequence=${`${serial} gets a new owner; the old owner stays in its history.`}
            fields=${[{ name: 'to', label: 'New owner' }, { name: 'evidence', label: 'Evidence (contract, ticket)' }]}
            request=${(v) => ({ method: 'POST', path: `${path}/transfer`, body: { to: v.to, evidence: v.evidence } })} onDone=${done(`${serial} transferred.`)} />
          <${ActionButton} label="Request support access" consequence=${'A vendor may obtain a support certificate for this device once a different operator approves the grant.'}
            fields=${[{ name: 'vendor', label: 'Vendor' }, { name: 'reason', label: 'Reason' }, { name: 'hours', label: 'Hours (1-8)', type: 'number' }]}
            request=${(v) => ({ method: 'POST', path: `${path}/support-grants`, body: { vendor: v.vendor, reason: v.reason, hours: Number(v.hours) } })} onDone=${done('Support grant requested: another operator must approve it.')} />
          ${d.state !== 'decommissioned' ? html`<${ActionButton} label="Decommission" danger consequence=${`${serial} is retired for good: every certificate is revoked and it can never enroll again.`}
            fields=${[{ name: 'reason', label: 'Why' }]}
            request=${(v) => ({ method: 'POST', path: `${path}/decommission`, body: { reason: v.reason } })} onDone=${done(`${serial} decommissioned.`)} />` : null}
        </div>`}

      <h3>Lineage</h3>
      <${LineageGraph} lineage=${history.lineage} certificates=${history.certificates} />

      <h3>Certificates</h3>
      <table class="certificates">
        <thead><tr><th>Kind</th><th>Serial</th><th>Issuer</th><th>Valid</th><th>Status</th><th></th></tr></thead>
        <tbody>${history.certificates.map((c) => html`
          <tr data-serial=${c.serial} class=${c.revokedAt ? 'revoked' : ''}>
            <td>${c.kind}${c.assurance === 'mediated' ? html` <span class="assurance" title=${`mediated by gateway ${c.mediator?.serial}`}>mediated by ${c.mediator?.serial}</span>` : c.gateway ? html` <span class="assurance">attested through ${c.gateway.serial}</span>` : ''}</td><td class="mono">${c.serial}</td><td>${c.issuer}</td><td>${when(c.notBefore)} → ${when(c.notAfter)}</td>
            <td class="status">${statusOf(c, history.certificates)}</td>
            <td>${operator && !c.revokedAt && html`<${ActionButton} label="Revoke" danger
              consequence=${`${c.kind} certificate ${c.serial} is revoked for good: OCSP answers revoked at once, the CRL within seconds.${c.kind === 'birth' ? ' A revoked birth certificate ends the device\'s factory identity.' : ''}`}
              fields=${[{ name: 'reason', label: 'Reason', options: REASONS }]}
              request=${(v) => ({ method: 'POST', path: `/operator/v1/certificates/${c.serial}/revoke`, body: { reason: v.reason } })} onDone=${done(`Certificate ${c.serial} revoked.`)} />`}</td>
          </tr>`)}
        </tbody>
      </table>

      <h3>Firmware</h3>
      ${history.firmware.length === 0 ? html`<p>No firmware reported.</p>` : html`
      <table class="firmware">
        <thead><tr><th>Attested</th><th>Version</th><th>Image digest</th><th>Release</th><th>Manifest</th><th>Signer</th><th>Certificate</th></tr></thead>
        <tbody>${history.firmware.map((f) => html`
          <tr data-version=${f.version} data-manifest=${f.release?.manifestSha256 ?? ''}>
            <td>${when(f.attestedAt)}</td><td>${f.version}</td><td class="mono" title=${f.digest}>${f.digest.slice(0, 16)}…</td>
            <td>${!f.release ? '—' : f.release.legacy ? 'legacy (unsigned)' : `sequence ${f.release.sequence}`}</td>
            <td class="mono" title=${f.release?.manifestSha256 ?? ''}>${f.release?.manifestSha256 ? `${f.release.manifestSha256.slice(0, 16)}…` : '—'}</td>
            <td class="mono">${f.release?.signer ?? '—'}</td><td class="mono">${f.certificateSerial ?? '—'}</td>
          </tr>`)}
        </tbody>
      </table>`}

      <h3>Support grants</h3>
      ${history.supportGrants.length === 0 ? html`<p>None.</p>` : html`
      <table class="grants">
        <thead><tr><th>Grant</th><th>Vendor</th><th>Status</th><th>Requested by</th><th>Approved by</th><th>Window</th><th></th></tr></thead>
        <tbody>${history.supportGrants.map((g) => html`
          <tr data-grant=${g.id}>
            <td class="mono">${g.id}</td><td>${g.vendor}</td><td>${g.status}</td><td>${g.requestedBy}</td><td>${g.approvedBy ?? '—'}</td>
            <td>${g.windowStart ? `${when(g.windowStart)} → ${when(g.windowEnd)}` : `${g.hours} h from approval`}</td>
            <td>${operator && g.status === 'pending' && html`<${ActionButton} label="Approve"
                disabled=${g.requestedBy === me.principal} title=${g.requestedBy === me.principal ? 'Two-person rule: you requested this grant, so another operator must approve it.' : ''}
                consequence=${`${g.vendor} may obtain support certificates for ${serial} for ${g.hours} h from now. Reason given: ${g.reason}`}
                request=${() => ({ method: 'POST', path: `/operator/v1/support-grants/${enc(g.id)}/approve`, body: {} })} onDone=${done(`Grant ${g.id} approved.`)} />`}
              ${operator && g.status === 'pending' && g.requestedBy === me.principal && html`<span class="hint">two-person rule: another operator approves</span>`}
              ${operator && g.status !== 'revoked' && html`<${ActionButton} label="Revoke grant" danger consequence=${`The grant ends now and its support certificates are revoked.`}
                request=${() => ({ method: 'POST', path: `/operator/v1/support-grants/${enc(g.id)}/revoke`, body: {} })} onDone=${done(`Grant ${g.id} revoked.`)} />`}</td>
          </tr>`)}
        </tbody>
      </table>`}

      <h3>Timeline</h3>
      <ol class="timeline">${history.events.map((e) => html`
        <li class=${`event ${e.action.replace(/\./g, '-')}`} data-action=${e.action}>
          <span class="at">${when(e.at)}</span> <strong>${LABELS[e.action] ?? e.action}</strong>
          <span class="actor">by ${e.actor}</span> <span class="data mono">${summary(e.data)}</span>
        </li>`)}
      </ol>
    </section>`;
}
