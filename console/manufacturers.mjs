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

/**
 * Other manufacturers' birth CAs (SPEC section 10): status, anchors, CRL
 * freshness and claimed devices; a pending change is approved here by a
 * second operator (the proposer sees Approve disabled), and a manufacturer
 * or one intermediate withdrawn.
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
                ${certificates(m.pending.certificates)}
                <p>Models: ${m.pending.models.join(', ')}</p>
                <${ActionButton} label="Approve" disabled=${m.pending.proposedBy === me.principal} title=${m.pending.proposedBy === me.principal ? 'you proposed this change: another operator approves it' : ''}
                  consequence=${`Birth certificates chaining to these certificates will be accepted for ${m.pending.models.join(', ')}, for devices claimed from ${m.id}.`}
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
