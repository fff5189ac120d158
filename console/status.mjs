import { html, useState } from './preact-htm.mjs';
import { ActionButton } from './actions.mjs';
import { useResource, when } from './api.mjs';

const age = (iso, now) => (iso ? `${Math.round((Date.parse(now) - Date.parse(iso)) / 60000)} min ago` : '—');

/** Audit chain and checkpoints; CRL and OCSP freshness per issuing CA. */
export function StatusPage({ me }) {
  const { data: status, error, reload: load } = useResource('/console/v1/status');
  const [notice, setNotice] = useState(null);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!status) return html`<p>Loading…</p>`;
  const { audit } = status;
  const v = audit.lastVerification;
  return html`
    <section class="status">
      <h2>Audit and publication</h2>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <div class="cards">
        <div class="card audit">
          <h3>Audit chain</h3>
          <dl class="facts">
            <dt>Events</dt><dd>${audit.events}</dd>
            <dt>Latest event</dt><dd>${when(audit.headAt)}</dd>
            <dt>Latest checkpoint</dt><dd>${audit.checkpoint ? `#${audit.checkpoint.seq}, ${age(audit.checkpoint.at, status.generatedAt)}` : 'none yet'}</dd>
            <dt>Last verified</dt><dd class=${v ? (v.ok ? 'ok' : 'bad') : ''}>${v ? `${v.ok ? 'intact' : 'BROKEN'} over ${v.events} events, ${when(v.at)} by ${v.actor}` : 'never'}</dd>
          </dl>
          ${me.role === 'auditor' && html`<${ActionButton} label="Verify the chain" consequence="Every event's hash and link is checked from the first to the last, and each checkpoint's signature. On a long chain this takes a while."
            request=${() => ({ method: 'GET', path: '/audit/v1/verify' })} onDone=${(r) => { setNotice(r.ok ? `The chain is intact: ${r.events} events.` : `The chain is BROKEN: ${JSON.stringify(r.problems ?? r)}`); load(); }} />`}
          ${me.role === 'operator' && html`<${ActionButton} label="Sign a checkpoint" consequence="The audit key signs the chain's current head, so cutting the log short later is detectable."
            request=${() => ({ method: 'POST', path: '/audit/v1/checkpoints' })} onDone=${(r) => { setNotice(r.checkpoint ? `Checkpoint #${r.checkpoint.seq} signed.` : 'Nothing new since the last checkpoint.'); load(); }} />`}
        </div>
      </div>
      <h3>CRLs</h3>
      <table class="crls">
        <thead><tr><th>CA</th><th>Number</th><th>This update</th><th>Next update</th><th>Entries</th><th>Fresh</th></tr></thead>
        <tbody>${status.crls.map((c) => html`<tr><td>${c.ca}</td><td class="mono">${c.number ?? '—'}</td><td>${when(c.thisUpdate)}</td><td>${when(c.nextUpdate)}</td><td class="num">${c.entries ?? '—'}</td>
          <td class=${c.fresh ? 'ok' : 'bad'}>${c.fresh ? 'fresh' : c.online ? 'STALE' : 'stale (key offline)'}</td></tr>`)}</tbody>
      </table>
      <h3>OCSP</h3>
      <table class="ocsp">
        <thead><tr><th>CA</th><th>Certificates</th><th>Waiting for a signature</th><th>Oldest response</th><th>Earliest next update</th></tr></thead>
        <tbody>${status.ocsp.map((o) => html`<tr><td>${o.ca}</td><td class="num">${o.certificates}</td><td class=${o.waiting > 0 ? 'bad num' : 'num'}>${o.waiting}</td>
          <td>${when(o.oldestThisUpdate)}</td><td>${when(o.earliestNextUpdate)}</td></tr>`)}</tbody>
      </table>
    </section>`;
}
