import { html, useState } from './preact-htm.mjs';
import { api } from './api.mjs';

export const REASONS = ['keyCompromise', 'unspecified', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'];

/**
 * An action behind a confirmation that names its consequence. `fields` are
 * the inputs the action needs (a revocation reason, a new owner, ...); the
 * request goes to the role API itself, so the server checks and audits it
 * exactly as for a token.
 */
export function ActionButton({ label, danger, disabled, title, consequence, fields = [], request, onDone }) {
  const [open, setOpen] = useState(false);
  return html`
    <button class=${danger ? 'danger' : ''} disabled=${disabled} title=${title ?? ''} onClick=${() => setOpen(true)}>${label}</button>
    ${open && html`<${Confirm} label=${label} danger=${danger} consequence=${consequence} fields=${fields} request=${request}
      onClose=${() => setOpen(false)} onDone=${(result) => { setOpen(false); onDone?.(result); }} />`}`;
}

function Confirm({ label, danger, consequence, fields, request, onClose, onDone }) {
  const [values, setValues] = useState(Object.fromEntries(fields.map((f) => [f.name, f.options ? f.options[0] : ''])));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (e) => setValues({ ...values, [name]: e.currentTarget.value });
  const missing = fields.some((f) => !f.optional && !String(values[f.name]).trim());
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { method, path, body } = request(values);
      onDone(await api(method, path, body));
    } catch (err) {
      setError(err.message);
      setBusy(false);
    }
  };
  return html`
    <div class="overlay">
      <form class="dialog" role="dialog" aria-modal="true" aria-label=${label} onSubmit=${submit}>
        <h3>${label}</h3>
        <p class="consequence">${consequence}</p>
        ${fields.map((f) => html`
          <label>${f.label}
            ${f.options
              ? html`<select name=${f.name} value=${values[f.name]} onChange=${set(f.name)}>${f.options.map((o) => html`<option value=${o}>${o}</option>`)}</select>`
              : html`<input name=${f.name} type=${f.type ?? 'text'} value=${values[f.name]} onInput=${set(f.name)} />`}
          </label>`)}
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <div class="buttons">
          <button type="button" onClick=${onClose}>Cancel</button>
          <button type="submit" class=${danger ? 'danger' : 'primary'} disabled=${busy || missing}>Confirm: ${label.toLowerCase()}</button>
        </div>
      </form>
    </div>`;
}
