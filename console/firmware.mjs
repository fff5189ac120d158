import { html, useState } from './preact-htm.mjs';
import { ActionButton } from './actions.mjs';
import { enc, useResource, when } from './api.mjs';

const short = (hex) => (hex ? html`<span class="mono" title=${hex}>${hex.slice(0, 16)}…</span>` : '—');

/** The models with firmware releases: the way into each model's page. */
export function FirmwareIndex() {
  const { data, error } = useResource('/console/v1/firmware');
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!data) return html`<p>Loading…</p>`;
  return html`
    <section class="firmware-index">
      <h2>Firmware</h2>
      <p>Signed releases per model: proposed by one operator, approved (and signed) by another. Propose with the API or <code>POST /operator/v1/models/&lt;model&gt;/firmware-releases</code>.</p>
      ${data.models.length === 0 ? html`<p>No model has firmware releases yet.</p>` : html`
      <table class="firmware-models">
        <thead><tr><th>Model</th><th class="num">Waiting for approval</th><th class="num">Approved</th><th class="num">Withdrawn</th><th class="num">Legacy</th></tr></thead>
        <tbody>${data.models.map((m) => html`
          <tr data-model=${m.model}><td><a href=${`#/firmware/${enc(m.model)}`}>${m.model}</a></td>
            <td class="num">${m.proposed}</td><td class="num">${m.approved}</td><td class="num">${m.withdrawn}</td><td class="num">${m.legacy}</td></tr>`)}
        </tbody>
      </table>`}
    </section>`;
}

/**
 * One model's releases (docs/operators/console.md#firmware), newest first:
 * who proposed and approved each (the proposer sees Approve disabled: two
 * people), its signer and manifest, its withdrawal, and how many devices
 * run it now. Approve and Withdraw go to the operator API under the session.
 */
export function FirmwarePage({ model, me }) {
  const { data, error, reload } = useResource(`/console/v1/firmware/${enc(model)}`);
  const [notice, setNotice] = useState(null);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!data) return html`<p>Loading ${model}…</p>`;
  const operator = me.role === 'operator';
  const done = (text) => () => { setNotice(text); reload(); };
  const path = (r) => `/operator/v1/models/${enc(model)}/firmware-releases/${enc(r.version)}`;
  return html`
    <section class="firmware" data-model=${model}>
      <h2>Firmware of <span class="mono">${model}</span></h2>
      <dl class="facts">
        <dt>Releases</dt><dd>${data.releases.length}</dd>
        <dt>Legacy cut-off</dt><dd class=${data.legacyPassed ? 'bad' : ''}>${data.legacyUntil ? `${when(data.legacyUntil)}${data.legacyPassed ? ' (passed: legacy releases refused)' : ''}` : 'none set'}</dd>
        <dt>Devices on no listed release</dt><dd data-field="other">${data.otherDevices}</dd>
      </dl>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <table class="releases">
        <thead><tr><th>Version</th><th class="num">Sequence</th><th>Status</th><th class="num">Devices</th><th>Proposed</th><th>Approved</th><th>Signer</th><th>Manifest</th><th>Withdrawn</th><th></th></tr></thead>
        <tbody>${data.releases.map((r) => html`
          <tr data-version=${r.version} data-status=${r.status} class=${r.status === 'withdrawn' ? 'revoked' : ''}>
            <td>${r.version}${r.legacy ? html` <span class="state">legacy</span>` : ''}</td>
            <td class="num">${r.legacy ? '—' : r.sequence}${r.minSequence !== null ? html`<br /><small>min ${r.minSequence}</small>` : ''}</td>
            <td class="status">${r.status}</td>
            <td class="num devices">${r.devices}</td>
            <td>${r.proposedBy}<br /><small>${when(r.proposedAt)}</small></td>
            <td>${r.approvedBy ? html`${r.approvedBy}<br /><small>${when(r.approvedAt)}</small>` : '—'}</td>
            <td class="mono">${r.signer ?? (r.legacy ? 'unsigned' : '—')}</td>
            <td>${short(r.manifestSha256)}</td>
            <td>${r.withdrawnAt ? html`${r.withdrawnBy}, ${when(r.withdrawnAt)}<br /><small>${r.withdrawReason}</small>` : '—'}</td>
            <td>${operator && r.status === 'proposed' && html`<${ActionButton} label="Approve"
                disabled=${r.proposedBy === me.principal} title=${r.proposedBy === me.principal ? 'you proposed this release: another operator approves it' : ''}
                consequence=${`Release ${r.version} of ${model} (sequence ${r.sequence}, image SHA-256 ${r.digest}, ${r.size} bytes) is signed now with the model's firmware signer and published; devices may then enroll on it. Proposal ${r.proposal}.`}
                request=${() => ({ method: 'POST', path: `${path(r)}/approve`, body: { proposal: r.proposal } })} onDone=${done(`${r.version} approved and signed.`)} />`}
              ${operator && r.status === 'proposed' && r.proposedBy === me.principal && html`<span class="hint">two-person rule: another operator approves</span>`}
              ${operator && r.status === 'approved' && html`<${ActionButton} label="Withdraw" danger
                consequence=${`Check 5 refuses ${r.version} from now on; the ${r.devices} device(s) on it are asked to renew now (renewalInfo) on another release, and refused or suspended at their next attestation as their class says. Its manifest stays published.`}
                fields=${[{ name: 'reason', label: 'Reason' }]}
                request=${(v) => ({ method: 'POST', path: `${path(r)}/withdraw`, body: { reason: v.reason } })} onDone=${done(`${r.version} withdrawn.`)} />`}</td>
          </tr>`)}
        </tbody>
      </table>
    </section>`;
}
