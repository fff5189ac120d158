import { html, useState } from './preact-htm.mjs';
import { ActionButton, REASONS } from './actions.mjs';
import { enc, useResource, when } from './api.mjs';

/** A manufacturer's CRL as the operator needs to see it: read when, valid until when, and the last failure. */
function crlState(m) {
  if (!m.crl) return '—';
  if (!m.active?.crl) return 'none (the manufacturer publishes no revocation)';
  if (!m.crl.thisUpdate) return html`<span class="bad">not read yet${m.crl.error ? `: ${m.crl.error}` : ''}</span>`;
  const stale = m.crl.nextUpdate && Date.parse(m.crl.nextUpdate) < Date.now();
  return html`<span class=${stale || m.crl.error ? 'bad' : 'ok'}>#${m.crl.number ?? '—'} of ${when(m.crl.thisUpdate)}, next ${when(m.crl.nextUpdate)}${stale ? ' (STALE: attestations refused)' : ''}${m.crl.error ? ` (last read failed: ${m.crl.error})` : ''}</span>`;
}

function certificates(list) {
  return html`<ul class="certs">${list.map((c) => html`<li><span>${c.subject}</span> <span class="mono" title=${c.sha256}>${c.sha256.slice(0, 16)}…</span></li>`)}</ul>`;
}

/** A CRL source in words: where revocation comes from, or that it is not checked at all. */
function crlText(crl) {
  if (crl === null) return 'none: revocation is not checked';
  return crl.url ? `polled from ${crl.url}` : `uploaded CRL, SHA-256 ${crl.sha256}`;
}

/** The CRL line of a change: what a new manufacturer gets, or before → after. */
function crlChange(crl, isNew) {
  if (isNew) return crlText(crl.after);
  return crl.changed ? `${crlText(crl.before)} → ${crlText(crl.after)}` : `unchanged (${crlText(crl.after)})`;
}

function certificateChange(sign, c) {
  return html`<li class=${sign === '+' ? 'added' : 'removed'}>${sign} <span>${c.subject}</span> <span class="mono">${c.sha256}</span>${sign === '−' ? ' (retired: never trusted again under this id)' : ''}</li>`;
}

/**
 * The pending change against what is in force, every field the server's
 * diff carries: certificates and models added and removed, the CRL source
 * before and after (a change to "none" turns revocation checking off), and
 * any other field as its JSON before and after.
 */
function ChangeView({ diff, isNew }) {
  const { certificates, models, crl, ...other } = diff;
  const crlOff = crl.changed && crl.after === null;
  return html`
    <dl class="facts diff">
      <dt>Certificates</dt>
      <dd data-field="certificates"><ul class="certs">
        ${certificates.added.map((c) => certificateChange('+', c))}
        ${certificates.removed.map((c) => certificateChange('−', c))}
        ${certificates.unchanged.length > 0 && html`<li>${certificates.unchanged.length} unchanged</li>`}
      </ul></dd>
      <dt>Models</dt>
      <dd data-field="models">
        ${models.added.length > 0 && html`<span class="added">+ ${models.added.join(', ')}</span> `}
        ${models.removed.length > 0 && html`<span class="removed">− ${models.removed.join(', ')}</span> `}
        ${models.unchanged.length > 0 && html`<span>unchanged: ${models.unchanged.join(', ')}</span>`}
      </dd>
      <dt>CRL</dt>
      <dd data-field="crl" class=${crlOff ? 'bad' : ''}>${crlChange(crl, isNew)}</dd>
      ${Object.entries(other).map(([field, change]) => html`<dt>${field}</dt><dd data-field=${field} class="mono">${JSON.stringify(change)}</dd>`)}
    </dl>`;
}

/** What the approval does, in the confirmation: the CRL line included, so dropping revocation is never a silent part of a change. */
function approvalConsequence(m) {
  const { certificates, models, crl } = m.pending.diff;
  const retired = certificates.removed.length > 0 ? ` ${certificates.removed.length} certificate(s) retired for good.` : '';
  const removedModels = models.removed.length > 0 ? ` No longer for ${models.removed.join(', ')}.` : '';
  return `Birth certificates chaining to these ${m.pending.certificates.length} certificate(s) will be accepted for ${m.pending.models.join(', ')}, for devices claimed from ${m.id}.${retired}${removedModels} Revocation: ${crlChange(crl, !m.active)}. Proposal ${m.pending.sha256}.`;
}

/**
 * Other manufacturers' birth CAs (docs/operators/manufacturers.md): status, anchors, CRL
 * freshness and claimed devices; a pending change, shown field by field
 * against what is in force, is approved here by a second operator (the
 * proposer sees Approve disabled), and a manufacturer or one intermediate
 * withdrawn.
 */
export function ManufacturersPage({ me }) {
  const { data, error, reload } = useResource('/operator/v1/manufacturers');
  const [notice, setNotice] = useState(null);
  if (me.role !== 'operator') return html`<p>Manufacturers are managed by operators; the device histories show each device's manufacturer and claim.</p>`;
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!data) return html`<p>Loading…</p>`;
  const done = (text) => () => { setNotice(text); reload(); };
  return html`
    <section class="manufacturers">
      <h2>Manufacturers</h2>
      <p>Devices born elsewhere enroll once claimed (from a manifest, one by one, or from another CA's ownership statement) with a birth certificate that chains to their manufacturer below. Register and claim with the API or <code>devid-ca manufacturer</code>.</p>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      ${data.manufacturers.map((m) => html`
        <article class=${`manufacturer ${m.status}`} data-manufacturer=${m.id}>
          <h3>${m.id} <span class=${`state ${m.status}`}>${m.status}</span></h3>
          ${m.builtIn ? html`<p>This CA's own factory: the first manufacturer, built in.</p>${certificates(m.certificates)}` : html`
            <dl class="facts">
              <dt>Models</dt><dd>${(m.active ?? m.pending)?.models.join(', ') ?? '—'}</dd>
              <dt>Claimed devices</dt><dd>${m.claimedDevices ?? 0}</dd>
              <dt>CRL</dt><dd>${crlState(m)}</dd>
              <dt>Approved</dt><dd>${m.approvedBy ? `${m.approvedBy}, ${when(m.approvedAt)}` : '—'}</dd>
              ${m.withdrawn && html`<dt>Withdrawn</dt><dd class="bad">${when(m.withdrawn.at)} by ${m.withdrawn.by}: ${m.withdrawn.reason}</dd>`}
            </dl>
            ${m.active && certificates(m.active.certificates)}
            ${m.pending && html`
              <div class="pending">
                <h4>Change waiting for approval (proposed by ${m.pending.proposedBy}, ${when(m.pending.proposedAt)})</h4>
                <${ChangeView} diff=${m.pending.diff} isNew=${!m.active} />
                <p>Proposal <span class="mono">${m.pending.sha256}</span></p>
                <${ActionButton} label="Approve" disabled=${m.pending.proposedBy === me.principal} title=${m.pending.proposedBy === me.principal ? 'you proposed this change: another operator approves it' : ''}
                  consequence=${approvalConsequence(m)}
                  request=${() => ({ method: 'POST', path: `/operator/v1/manufacturers/${enc(m.id)}/approve`, body: { proposal: m.pending.sha256 } })} onDone=${done(`${m.id} approved.`)} />
              </div>`}
            ${m.status === 'active' && html`
              <div class="actions">
                ${m.active?.crl?.url && html`<${ActionButton} label="Read CRL now" consequence=${`The CRL is fetched from ${m.active.crl.url}; devices whose birth certificate it newly lists are quarantined.`}
                  request=${() => ({ method: 'POST', path: `/operator/v1/manufacturers/${enc(m.id)}/crl`, body: {} })} onDone=${(r) => done(r.changed ? `CRL applied: ${r.entries} entries, ${r.quarantined.length} device(s) quarantined.` : 'The CRL is the one in force.')()} />`}
                <${ActionButton} label="Withdraw manufacturer" danger consequence=${`Manufacturing compromise: ${m.id} is trusted no more. All ${m.claimedDevices ?? 0} of its devices are quarantined and their operational certificates revoked. Other manufacturers are not touched.`}
                  fields=${[{ name: 'reason', label: 'Reason', options: REASONS }]}
                  request=${(v) => ({ method: 'POST', path: `/operator/v1/manufacturers/${enc(m.id)}/withdraw`, body: { reason: v.reason } })} onDone=${(r) => done(`${m.id} withdrawn: ${r.withdrawal.devices} device(s) quarantined.`)()} />
              </div>`}
          `}
        </article>`)}
    </section>`;
}
