import { html, useEffect, useState } from './preact-htm.mjs';
import { ActionButton, REASONS } from './actions.mjs';
import { api, enc, useResource, when } from './api.mjs';

function Breakdown({ title, data, link, none = 'none' }) {
  return html`
    <div class="card breakdown">
      <h3>${title}</h3>
      <table><tbody>
        ${data.values.map((v) => html`<tr><td>${v.value === null ? html`<em>${none}</em>` : link ? html`<a href=${link(v.value)}>${v.value}</a>` : v.value}</td><td class="num">${v.devices}</td></tr>`)}
        ${data.other > 0 && html`<tr><td><em>other</em></td><td class="num">${data.other}</td></tr>`}
      </tbody></table>
    </div>`;
}

/** The fleet at a glance: states, models, classes, owners; rotation overdue; clone signals and forks; batch revocations. */
export function FleetPage({ me }) {
  const { data: fleet, error, reload: load } = useResource('/console/v1/fleet');
  const [notice, setNotice] = useState(null);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!fleet) return html`<p>Loading the fleet…</p>`;
  const search = (field) => (value) => `#/devices?${field}=${enc(value)}`;
  return html`
    <section class="fleet">
      <h2>Fleet <span class="count">${fleet.devices} device${fleet.devices === 1 ? '' : 's'}</span></h2>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <div class="cards">
        <${Breakdown} title="By state" data=${fleet.byState} link=${search('state')} />
        <${Breakdown} title="By model" data=${fleet.byModel} link=${search('model')} />
        <${Breakdown} title="By class" data=${fleet.byClass} none="(model default)" />
        <${Breakdown} title="By owner" data=${fleet.byOwner} link=${search('owner')} none="(no owner)" />
      </div>
      <div class="cards">
        <div class="card rotation">
          <h3>Overdue for rotation <span class="count">${fleet.rotation.devices}</span></h3>
          ${fleet.rotation.devices === 0 ? html`<p>Every device in service has rotated on time.</p>` : html`
            <table><tbody>${Object.entries(fleet.rotation.byReason).map(([reason, n]) => html`<tr><td>${reason}</td><td class="num">${n}</td></tr>`)}</tbody></table>`}
        </div>
        <div class="card assurance">
          <h3>Assurance</h3>
          <table><tbody>
            <tr><td>mediated by a gateway</td><td class="num">${fleet.assurance.mediated}</td></tr>
            <tr><td>raised from mediated</td><td class="num">${fleet.assurance.raised}</td></tr>
          </tbody></table>
        </div>
        <div class="card batches">
          <h3>Batch revocations in progress</h3>
          ${fleet.batches.length === 0 ? html`<p>None.</p>` : html`
            <ul>${fleet.batches.map((b) => html`<li>batch <strong>${b.batch}</strong> (${b.reason}, since ${when(b.requestedAt)}): ${b.devices} devices, ${b.certificates} certificates so far</li>`)}</ul>`}
          ${me.role === 'operator' && html`<${ActionButton} label="Revoke a batch" danger
            consequence="Manufacturing compromise: every birth certificate of the batch and every operational certificate derived from them is revoked, its devices are quarantined, and new births of the batch are refused. This cannot be undone."
            fields=${[{ name: 'batch', label: 'Batch' }, { name: 'reason', label: 'Reason', options: REASONS }]}
            request=${(v) => ({ method: 'POST', path: `/operator/v1/batches/${enc(v.batch.trim())}/revoke`, body: { reason: v.reason } })}
            onDone=${(p) => { setNotice(`Batch ${p.batch}: ${p.devices} devices and ${p.certificates} certificates revoked${p.finished ? '' : ' so far; it goes on in the background'}.`); load(); }} />`}
        </div>
      </div>
      <div class="card signals">
        <h3>Recent clone signals and lineage forks</h3>
        ${fleet.signals.length === 0 ? html`<p>None.</p>` : html`
          <table><thead><tr><th>When</th><th>Device</th><th>Signal</th><th>Why</th></tr></thead><tbody>
            ${fleet.signals.map((s) => html`<tr class="signal"><td>${when(s.at)}</td><td>${s.device ? html`<a href=${`#/device/${enc(s.device)}`}>${s.device}</a>` : '—'}</td><td>${s.action}</td><td>${s.reason}</td></tr>`)}
          </tbody></table>`}
      </div>
    </section>`;
}

/** Device search: by the start of the serial, state, model and owner. */
export function DevicesPage({ params, navigate }) {
  const [form, setForm] = useState({ q: params.get('q') ?? '', state: params.get('state') ?? '', model: params.get('model') ?? '', owner: params.get('owner') ?? '' });
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const query = new URLSearchParams(Object.entries(form).filter(([, v]) => v)).toString();
  useEffect(() => {
    setError(null);
    api('GET', `/console/v1/devices?${params.toString()}`).then(setResult, (err) => setError(err.message));
  }, [params.toString()]);
  const set = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value });
  return html`
    <section class="devices">
      <h2>Devices</h2>
      <form class="search" onSubmit=${(e) => { e.preventDefault(); navigate(`#/devices?${query}`); }}>
        <input name="q" placeholder="serial starts with…" value=${form.q} onInput=${set('q')} />
        <select name="state" value=${form.state} onChange=${set('state')}>
          ${['', 'manufactured', 'active', 'suspended', 'quarantined', 'decommissioned'].map((s) => html`<option value=${s}>${s || 'any state'}</option>`)}
        </select>
        <input name="model" placeholder="model" value=${form.model} onInput=${set('model')} />
        <input name="owner" placeholder="owner" value=${form.owner} onInput=${set('owner')} />
        <button type="submit" class="primary">Search</button>
      </form>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${result && html`
        <table class="results">
          <thead><tr><th>Serial</th><th>State</th><th>Model</th><th>Batch</th><th>Owner</th><th>Class</th><th>Changed</th></tr></thead>
          <tbody>${result.devices.map((d) => html`
            <tr><td><a class="mono" href=${`#/device/${enc(d.serial)}`}>${d.serial}</a></td><td><span class=${`state ${d.state}`}>${d.state}</span></td>
              <td>${d.model}</td><td>${d.batch}</td><td>${d.owner ?? '—'}</td><td>${d.class ?? '(model default)'}</td><td>${when(d.updatedAt)}</td></tr>`)}
          </tbody>
        </table>
        ${result.truncated && html`<p class="hint">The first 100 matches; narrow the search for the rest.</p>`}
        ${result.devices.length === 0 && html`<p>No device matches.</p>`}`}
    </section>`;
}
