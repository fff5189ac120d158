import { html, render, useEffect, useState } from './preact-htm.mjs';
import { api, setCsrf } from './api.mjs';
import { DevicePage } from './device.mjs';
import { DevicesPage, FleetPage } from './fleet.mjs';
import { FirmwareIndex, FirmwarePage } from './firmware.mjs';
import { ManufacturersPage } from './manufacturers.mjs';
import { StatusPage } from './status.mjs';

/** The route is the URL's fragment: #/ (fleet), #/devices?q=..., #/device/<serial>, #/manufacturers, #/firmware[/<model>], #/status. */
function route() {
  const [path, search] = (location.hash.slice(1) || '/').split('?');
  return { path, params: new URLSearchParams(search ?? '') };
}

function SignIn({ onSignedIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      onSignedIn(await api('POST', '/console/v1/session', { token: token.trim() }));
    } catch (err) {
      setError(err.message);
    }
  };
  return html`
    <form class="signin" onSubmit=${submit}>
      <h1>devid-ca console</h1>
      <p>Sign in with an operator or auditor token (<code>devid-ca token create --role operator --name you</code>). The token is exchanged for a 30-minute session and not kept in the browser.</p>
      <label>Token <input name="token" type="password" autocomplete="off" value=${token} onInput=${(e) => setToken(e.currentTarget.value)} /></label>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${!token.trim()}>Sign in</button>
    </form>`;
}

function App() {
  const [me, setMe] = useState(undefined);
  const [where, setWhere] = useState(route());
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener('hashchange', onHash);
    api('GET', '/console/v1/session').then(signedIn, () => setMe(null));
    return () => removeEventListener('hashchange', onHash);
  }, []);
  function signedIn(session) {
    setCsrf(session.csrf);
    setMe(session);
  }
  const signOut = async () => {
    await api('DELETE', '/console/v1/session').catch(() => {});
    setCsrf(null);
    setMe(null);
  };
  if (me === undefined) return html`<p>Loading…</p>`;
  if (me === null) return html`<${SignIn} onSignedIn=${signedIn} />`;
  const navigate = (hash) => {
    location.hash = hash;
  };
  const { path, params } = where;
  const page = path.startsWith('/device/') ? html`<${DevicePage} serial=${decodeURIComponent(path.slice('/device/'.length))} me=${me} />`
    : path === '/devices' ? html`<${DevicesPage} params=${params} navigate=${navigate} />`
    : path === '/status' ? html`<${StatusPage} me=${me} />`
    : path === '/manufacturers' ? html`<${ManufacturersPage} me=${me} />`
    : path === '/firmware' ? html`<${FirmwareIndex} />`
    : path.startsWith('/firmware/') ? html`<${FirmwarePage} model=${decodeURIComponent(path.slice('/firmware/'.length))} me=${me} />`
    : html`<${FleetPage} me=${me} />`;
  const tab = (hash, label, active) => html`<a href=${hash} class=${active ? 'active' : ''}>${label}</a>`;
  return html`
    <header>
      <strong class="brand">devid-ca</strong>
      <nav>
        ${tab('#/', 'Fleet', path === '/')}
        ${tab('#/devices', 'Devices', path === '/devices' || path.startsWith('/device/'))}
        ${tab('#/manufacturers', 'Manufacturers', path === '/manufacturers')}
        ${tab('#/firmware', 'Firmware', path === '/firmware' || path.startsWith('/firmware/'))}
        ${tab('#/status', 'Audit & publication', path === '/status')}
      </nav>
      <span class="me">${me.principal} <span class=${`role ${me.role}`}>${me.role}</span></span>
      <button class="signout" onClick=${signOut}>Sign out</button>
    </header>
    <main>${page}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));
