import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { makeDevice, PUBLIC_HOST } from './support/acme-device.ts';
import { AcmeError } from '../client/acme-client.ts';
import { certIdOf } from '../client/device.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { ARTIFACTS, launchBrowser, signInToConsole } from './support/browser.ts';
import { httpsRequest } from './support/https.ts';
import { BAD_TEXT, BAD_VALUES, prng } from './support/hostile.ts';
import { opensslOcsp } from './support/publication.ts';
import { outsideCa } from './support/outside-ca.ts';
import { createToken } from '../server/tokens.ts';
import { rawConnection } from '../store/test-access.ts';

/** The operator console in a real headless chromium against a real server (docs/operators/console.md). */
describe('operator console', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let browser: Browser;
  let origin: string;
  let secondOperator: string;
  const operatorApi = (method: string, path: string, body?: unknown) => server.request(method, path, { token: server.tokens.operator, ...(body === undefined ? {} : { body }) });

  before(async () => {
    server = await startTestServer('pglite');
    browser = await launchBrowser(PUBLIC_HOST);
    origin = `https://${PUBLIC_HOST}:${server.running.httpsPort}`;
    secondOperator = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const signIn = (token: string) => signInToConsole(browser, origin, token);

  it('serves the page with a strict CSP, and only from its own origin', async () => {
    const page = await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', '/console', {});
    expect(page.status).to.equal(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).to.include("default-src 'none'").and.include("script-src 'self'").and.include("frame-ancestors 'none'").and.not.include('unsafe');
    expect(page.text).to.not.match(/<script(?![^>]*\bsrc=)/i).and.not.match(/\sstyle=/i).and.not.match(/https?:\/\//);
    const vendor = await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', '/console/assets/preact-htm.mjs', {});
    expect(vendor.status).to.equal(200);
    expect(vendor.headers['content-type']).to.match(/^text\/javascript/);
    for (const path of ['/console/assets/../package.json', '/console/assets/%2e%2e%2fpackage.json', '/console/assets/nothing.mjs']) {
      expect((await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', path, {})).status, path).to.equal(404);
    }
  });

  it('an operator finds a device renewed twice, sees its lineage, revokes a certificate, and OCSP says revoked', async () => {
    const device = await makeDevice(server, 'con-0001');
    const first = await device.enroll();
    await device.enroll();
    const third = await device.enroll();
    const { context, page, errors } = await signIn(server.tokens.operator);
    expect(await page.textContent('header .me')).to.include('alice').and.include('operator');
    await page.waitForSelector('section.fleet');
    await page.screenshot({ path: join(ARTIFACTS, 'console-fleet.png'), fullPage: true });
    expect(await page.textContent('section.fleet')).to.include('active');

    await page.click('header nav a:has-text("Devices")');
    await page.fill('form.search input[name=q]', 'con-');
    await page.click('form.search button');
    await page.click('a:has-text("con-0001")');
    await page.waitForSelector('svg.lineage');
    // Birth, then three operational certificates, each an arrow from its predecessor.
    expect(await page.locator('svg.lineage g.node.birth').count()).to.equal(1);
    expect(await page.locator('svg.lineage g.node.operational').count()).to.equal(3);
    const edges = await page.locator('svg.lineage path.edge').evaluateAll((lines) => lines.map((l) => [l.getAttribute('data-from'), l.getAttribute('data-to')]));
    const history = (await operatorApi('GET', '/audit/v1/devices/con-0001/history')).json;
    const serials = history.certificates.map((c: { serial: string }) => c.serial);
    expect(edges.sort()).to.deep.equal([[serials[0], serials[1]], [serials[1], serials[2]], [serials[2], serials[3]]].sort());
    const timeline = await page.locator('ol.timeline li').evaluateAll((items) => items.map((i) => i.getAttribute('data-action')));
    expect(timeline.filter((a) => a !== 'device.attested')).to.deep.equal(['device.manufactured', 'device.enrolled', 'device.renewed', 'device.renewed']);
    await page.screenshot({ path: join(ARTIFACTS, 'console-device.png'), fullPage: true });

    const thirdSerial = third.certificate.serialNumber.toLowerCase();
    const row = page.locator(`table.certificates tr[data-serial="${thirdSerial}"]`);
    await row.locator('button:has-text("Revoke")').click();
    expect(await page.textContent('.dialog .consequence')).to.include(thirdSerial).and.include('revoked for good');
    await page.selectOption('.dialog select[name=reason]', 'keyCompromise');
    await page.click('.dialog button[type=submit]');
    await page.waitForSelector(`table.certificates tr.revoked[data-serial="${thirdSerial}"]`);
    expect(await page.locator(`svg.lineage g.node.revoked[data-serial="${thirdSerial}"]`).count()).to.equal(1);
    expect(errors, errors.join('\n')).to.deep.equal([]);
    await context.close();

    const issuerPem = server.running.hierarchy.operational.certificate.toString('pem');
    const ocsp = await opensslOcsp({ issuerPem, rootPem: server.rootPem, url: `http://127.0.0.1:${server.running.httpPort}/ocsp`, certPem: third.certificate.toString("pem") });
    expect(ocsp.output).to.match(/: revoked/).and.match(/keyCompromise/i);
    const firstOcsp = await opensslOcsp({ issuerPem, rootPem: server.rootPem, url: `http://127.0.0.1:${server.running.httpPort}/ocsp`, certPem: first.certificate.toString("pem") });
    expect(firstOcsp.output).to.match(/: good/);
    // The action is in the audit log under the operator's token, with nothing of the session.
    const events = (await operatorApi('GET', '/audit/v1/devices/con-0001/history')).json.events as Array<{ action: string; actor: string }>;
    expect(events.filter((e) => e.action === 'certificate.revoked').map((e) => e.actor)).to.have.length(1).and.satisfy((a: string[]) => a[0]!.startsWith('token:'));
  });

  it('a device renewed daily: a run of ordinary renewals folds into one box with its count, expands and folds again; revocations and refused successors stay in sight; replaced certificates say so', async () => {
    const device = await makeDevice(server, 'con-0010');
    // Enrollment, then twelve renewals: birth, op1..op13; op1..op12 each replaced by the next, op13 in use.
    for (let i = 0; i < 13; i += 1) await device.enroll();
    const certificates = async () => (await operatorApi('GET', '/audit/v1/devices/con-0010/history')).json.certificates as Array<{ serial: string; kind: string }>;
    const serials = (await certificates()).map((c) => c.serial);
    expect(serials).to.have.length(14);
    const { context, page, errors } = await signIn(server.tokens.operator);
    await page.goto(`${origin}/console#/device/con-0010`);
    await page.waitForSelector('svg.lineage');
    const run = page.locator('svg.lineage g.node.run');
    expect(await run.count()).to.equal(1);
    expect(await run.getAttribute('data-count')).to.equal('12');
    expect([await run.getAttribute('data-first'), await run.getAttribute('data-last')]).to.deep.equal([serials[1], serials[12]]);
    expect(await run.textContent()).to.include('12 certificates').and.match(/\d{4}-\d\d-\d\d \d\d:\d\d/);
    // Only the birth certificate and the one in use are boxes of their own; the arrows run birth → run → op13.
    expect(await page.locator('svg.lineage g.node.birth').count()).to.equal(1);
    expect(await page.locator('svg.lineage g.node.operational').evaluateAll((g) => g.map((n) => n.getAttribute('data-serial')))).to.deep.equal([serials[13]]);
    const fits = () => page.evaluate(() => {
      const box = document.querySelector('.graph')!.getBoundingClientRect();
      return [...document.querySelectorAll('svg.lineage g.node, svg.lineage path.edge')].every((g) => { const r = g.getBoundingClientRect(); return r.left >= box.left && r.right <= box.right; });
    });
    const edges = () => page.locator('svg.lineage path.edge').evaluateAll((paths) => paths.map((p) => `${p.getAttribute('data-from')}>${p.getAttribute('data-to')}`).sort());
    expect(await edges()).to.deep.equal([`${serials[0]}>${serials[1]}`, `${serials[12]}>${serials[13]}`].sort());
    // The table: every operational certificate but the newest has a successor, so it is replaced; the birth certificate stays valid.
    const statuses = () => page.locator('table.certificates tbody tr').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-serial'), r.querySelector('td.status')!.textContent]));
    expect(await statuses()).to.deep.equal(serials.map((s, i) => [s, i === 0 || i === 13 ? 'valid' : 'replaced']));

    // Expanded: the twelve certificates, each an arrow from its predecessor; the graph wraps inside its box instead of running off it.
    await run.click();
    await page.waitForSelector('svg.lineage g.node.in-run');
    expect(await page.locator('svg.lineage g.node.run').count()).to.equal(0);
    expect(await page.locator('svg.lineage g.node.in-run').count()).to.equal(12);
    expect(await page.locator('svg.lineage g.node.operational').count()).to.equal(13);
    expect(await edges()).to.deep.equal(serials.slice(1).map((s, i) => `${serials[i]}>${s}`).sort());
    expect(await fits(), 'every box within the graph\'s width').to.equal(true);
    expect(await page.locator('svg.lineage path.edge.wrap').count()).to.be.at.least(1);
    await page.locator('.graph').screenshot({ path: join(ARTIFACTS, 'console-lineage-expanded.png') });
    await page.click('svg.lineage g.collapse');
    await page.waitForSelector('svg.lineage g.node.run[data-count="12"]');
    expect(await page.locator('svg.lineage g.node.in-run').count()).to.equal(0);

    // A revocation in the middle of the run and a refused second successor of the newest certificate.
    expect((await operatorApi('POST', `/operator/v1/certificates/${serials[6]}/revoke`, { reason: 'keyCompromise' })).status).to.equal(200);
    const current = certIdOf(device.current()!);
    const fork = await device.enroll({ keepFiles: true, replaces: current, beforeAttestation: async () => void (await device.enroll({ keepFiles: true, replaces: current })) }).catch((e: unknown) => e);
    expect(fork).to.be.instanceOf(AcmeError);
    const after = (await certificates()).map((c) => c.serial);
    expect(after).to.have.length(15);
    await page.reload();
    await page.waitForSelector('svg.lineage g.node.attempt');
    // op1..op5 and op7..op12 fold; op6 (revoked), op13 (a refused successor named it) and op14 stay boxes.
    expect(await page.locator('svg.lineage g.node.run').evaluateAll((g) => g.map((n) => [n.getAttribute('data-first'), n.getAttribute('data-count')]))).to.deep.equal([[serials[1], '5'], [serials[7], '6']]);
    expect(await page.locator(`svg.lineage g.node.revoked[data-serial="${serials[6]}"]`).count()).to.equal(1);
    expect(await page.locator('svg.lineage g.node.operational:not(.in-run)').evaluateAll((g) => g.map((n) => n.getAttribute('data-serial')))).to.deep.equal([serials[6], serials[13], after[14]]);
    expect(await page.locator(`svg.lineage path.edge.refused[data-from="${serials[13]}"]`).count()).to.equal(1);
    expect(await fits(), 'the refused successor within the graph\'s width').to.equal(true);
    const shown = (await statuses()).map(([s, v]) => [s, v!.replace(/^revoked .*/, 'revoked')]);
    expect(shown).to.deep.equal(after.map((s, i) => [s, i === 0 || i === 14 ? 'valid' : i === 6 ? 'revoked' : 'replaced']));
    await page.locator('.graph').screenshot({ path: join(ARTIFACTS, 'console-lineage.png') });
    expect(errors, errors.join('\n')).to.deep.equal([]);
    await context.close();
  });

  it('shows the two-person rule: the requester of a support grant cannot approve it, another operator can', async () => {
    await makeDevice(server, 'con-0002');
    const { context, page } = await signIn(server.tokens.operator);
    await page.goto(`${origin}/console#/device/con-0002`);
    await page.click('button:has-text("Request support access")');
    await page.fill('.dialog input[name=vendor]', 'acme-support');
    await page.fill('.dialog input[name=reason]', 'field failure ticket 42');
    await page.fill('.dialog input[name=hours]', '2');
    await page.click('.dialog button[type=submit]');
    await page.waitForSelector('table.grants button:has-text("Approve")');
    expect(await page.locator('table.grants button:has-text("Approve")').isDisabled()).to.equal(true);
    expect(await page.textContent('table.grants')).to.include('two-person rule');
    await context.close();

    const bob = await signIn(secondOperator);
    await bob.page.goto(`${origin}/console#/device/con-0002`);
    await bob.page.click('table.grants button:has-text("Approve")');
    expect(await bob.page.textContent('.dialog .consequence')).to.include('acme-support');
    await bob.page.click('.dialog button[type=submit]');
    await bob.page.waitForSelector('table.grants td:has-text("approved")');
    await bob.context.close();
  });

  it('manufacturers: the proposer sees Approve disabled, another operator approves, and a withdrawal quarantines its devices', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'devid-console-oem-'));
    try {
      const oem = outsideCa('initrode', join(dir, 'initrode'));
      expect((await operatorApi('PUT', '/operator/v1/models/rack-1', { hwType: '1.3.6.1.4.1.99999.9.1', manufacturer: 'Initrode' })).status).to.equal(201);
      expect((await operatorApi('PUT', '/operator/v1/manufacturers/initrode', { certificates: [oem.rootPem, oem.intermediatePem], models: ['rack-1'], crl: { pem: oem.crlPem() } })).status).to.equal(201);
      const { context, page, errors } = await signIn(server.tokens.operator);
      await page.goto(`${origin}/console#/manufacturers`);
      await page.waitForSelector('[data-manufacturer=initrode] button:has-text("Approve")');
      expect(await page.locator('[data-manufacturer=initrode] button:has-text("Approve")').isDisabled()).to.equal(true);
      await context.close();

      const bob = await signIn(secondOperator);
      await bob.page.goto(`${origin}/console#/manufacturers`);
      const change = (field: string) => bob.page.locator(`[data-manufacturer=initrode] .pending [data-field=${field}]`);
      await change('certificates').waitFor();
      expect(await change('certificates').locator('li.added').count(), 'a new manufacturer: every certificate added').to.equal(2);
      expect(await change('certificates').textContent()).to.match(/initrode Root CA.*[0-9a-f]{64}/);
      expect(await change('crl').textContent()).to.match(/^uploaded CRL, SHA-256 [0-9a-f]{64}$/);
      await bob.page.click('[data-manufacturer=initrode] button:has-text("Approve")');
      await bob.page.click('.dialog button[type=submit]');
      await bob.page.waitForSelector('[data-manufacturer=initrode] .state.active');
      const birth = oem.birth({ serial: 'itr-0001', hwType: '1.3.6.1.4.1.99999.9.1' });
      expect((await operatorApi('POST', '/operator/v1/devices/itr-0001/claim', { manufacturer: 'initrode', model: 'rack-1', birthCertificateSha256: birth.sha256 })).status).to.equal(201);
      await bob.page.reload();
      await bob.page.waitForSelector('[data-manufacturer=initrode] dd:has-text("#")');
      // A change that only turns revocation checking off says so, on the card and in the confirmation.
      expect((await operatorApi('PUT', '/operator/v1/manufacturers/initrode', { certificates: [oem.rootPem, oem.intermediatePem], models: ['rack-1'], crl: null })).status).to.equal(200);
      await bob.page.reload();
      await change('crl').waitFor();
      expect(await change('crl').textContent()).to.match(/^uploaded CRL, SHA-256 [0-9a-f]{64} → none: revocation is not checked$/);
      expect(await change('crl').getAttribute('class')).to.include('bad');
      expect(await change('certificates').textContent()).to.equal('2 unchanged');
      expect(await change('models').textContent()).to.include('unchanged: rack-1');
      await bob.page.screenshot({ path: join(ARTIFACTS, 'console-manufacturers.png'), fullPage: true });
      await bob.page.click('[data-manufacturer=initrode] button:has-text("Approve")');
      expect(await bob.page.textContent('.dialog .consequence')).to.match(/Revocation: uploaded CRL, SHA-256 [0-9a-f]{64} → none: revocation is not checked\. Proposal [0-9a-f]{64}/);
      await bob.page.click('.dialog button[type=submit]');
      await bob.page.waitForSelector('[data-manufacturer=initrode] dd:has-text("publishes no revocation")');
      expect(await bob.page.locator('[data-manufacturer=initrode] .pending').count()).to.equal(0);
      await bob.page.click('[data-manufacturer=initrode] button:has-text("Withdraw manufacturer")');
      expect(await bob.page.textContent('.dialog .consequence')).to.include('quarantined');
      await bob.page.click('.dialog button[type=submit]');
      await bob.page.waitForSelector('[data-manufacturer=initrode] .state.withdrawn');
      await bob.page.goto(`${origin}/console#/device/itr-0001`);
      await bob.page.waitForSelector('.state.quarantined');
      expect(await bob.page.textContent('section.device')).to.include('initrode').and.include('claimed');
      expect(errors.concat(bob.errors)).to.deep.equal([]);
      await bob.context.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an auditor sees no action, and a forced one is refused with 403', async () => {
    await makeDevice(server, 'con-0003');
    const { context, page } = await signIn(server.tokens.auditor);
    await page.goto(`${origin}/console#/device/con-0003`);
    await page.waitForSelector('svg.lineage');
    expect(await page.locator('section.device button').count()).to.equal(0);
    await page.click('header nav a:has-text("Audit")');
    await page.waitForSelector('section.status');
    expect(await page.locator('button:has-text("Sign a checkpoint")').count()).to.equal(0);
    await page.click('button:has-text("Verify the chain")');
    await page.click('.dialog button[type=submit]');
    await page.waitForSelector('.notice:has-text("intact")');
    const forced = await page.evaluate(async () => {
      const session = await (await fetch('/console/v1/session')).json();
      const res = await fetch('/operator/v1/devices/con-0003/suspend', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf }, body: '{}' });
      return res.status;
    });
    expect(forced).to.equal(403);
    expect((await operatorApi('GET', '/audit/v1/devices/con-0003/history')).json.device.state).to.equal('manufactured');
    await context.close();
  });

  it('refuses a forged cross-site POST, and a session request without its CSRF token or from another origin', async () => {
    await makeDevice(server, 'con-0004');
    const { context, page } = await signIn(server.tokens.operator);
    // A page on another site that posts a form to the console's API in the same browser.
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<form id=f method=POST enctype=text/plain action="${origin}/operator/v1/devices/con-0004/suspend">
        <input name='{"a":"' value='"}'></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const forged = await context.newPage();
      const answer = forged.waitForResponse((r) => r.url().includes('/suspend'));
      await forged.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      expect((await answer).status()).to.be.oneOf([401, 403]);
    } finally {
      evil.close();
    }
    // The same session's cookie, presented outside the page: without the CSRF header, or with another origin.
    const cookie = (await context.cookies()).find((c) => c.name === '__Host-devid-session')!;
    expect(cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict').to.equal(true);
    const csrf = await page.evaluate(async () => (await (await fetch('/console/v1/session')).json()).csrf as string);
    const post = (headers: Record<string, string>) => httpsRequest(server.running.httpsPort, server.rootPem, 'POST', '/operator/v1/devices/con-0004/transfer',
      { cookie: `${cookie.name}=${cookie.value}`, 'content-type': 'application/json', ...headers }, JSON.stringify({ to: 'mallory', evidence: 'forged' }));
    expect((await post({})).status).to.equal(403);
    expect((await post({ 'x-csrf-token': 'x'.repeat(43) })).status).to.equal(403);
    expect((await post({ 'x-csrf-token': csrf, origin: 'https://evil.example' })).status).to.equal(403);
    expect((await post({ 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })).status).to.equal(403);
    const untouched = (await operatorApi('GET', '/audit/v1/devices/con-0004/history')).json;
    expect([untouched.device.state, untouched.device.owner]).to.deep.equal(['manufactured', null]);
    // With the token, from the page: it goes through.
    expect((await post({ 'x-csrf-token': csrf })).status).to.equal(200);
    // Signing out ends the session on the server, not only in the browser.
    await page.click('button.signout');
    await page.waitForSelector('form.signin');
    expect((await post({ 'x-csrf-token': csrf })).status).to.equal(401);
    await context.close();
  });

  it('sessions: only operator and auditor tokens, a revoked token ends its sessions, hostile sign-ins are 4xx', async () => {
    const signInWith = (body: unknown, raw?: string) => server.request('POST', '/console/v1/session', raw === undefined ? { body } : { raw });
    expect((await signInWith({ token: server.tokens.factory })).status).to.equal(403);
    expect((await signInWith({ token: 'devid_0000000000000000_' + 'A'.repeat(43) })).status).to.equal(401);
    for (const body of [{}, { token: 5 }, { token: 'x'.repeat(300) }, { token: server.tokens.operator, extra: 1 }, []]) {
      expect((await signInWith(body)).status, JSON.stringify(body)).to.equal(400);
    }
    expect((await signInWith(undefined, '{"token":')).status).to.equal(400);
    const bearerless = await server.request('GET', '/console/v1/fleet');
    expect(bearerless.status).to.equal(401);
    for (const cookie of ['__Host-devid-session=' + 'A'.repeat(43), '__Host-devid-session=%00%ff', 'a'.repeat(9000), '__Host-devid-session']) {
      const res = await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', '/console/v1/fleet', { cookie });
      expect(res.status, cookie.slice(0, 40)).to.equal(401);
    }
    const temporary = await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'auditor', name: 'temp' }, 'cli', new Date());
    const opened = await signInWith({ token: temporary.token });
    expect(opened.status).to.equal(201);
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    expect(String(opened.headers['set-cookie'])).to.match(/HttpOnly/i).and.match(/Secure/i).and.match(/SameSite=Strict/i).and.match(/^__Host-/);
    expect((await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', '/console/v1/status', { cookie })).status).to.equal(200);
    await server.env.ctx.store.tokens.revoke(temporary.id, new Date());
    expect((await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', '/console/v1/status', { cookie })).status).to.equal(401);
    const search = await httpsRequest(server.running.httpsPort, server.rootPem, 'GET', '/console/v1/devices?q=%25', { authorization: `Bearer ${server.tokens.auditor}` });
    expect(search.status).to.equal(400);
  });

  it('hostile input to the console endpoints: 4xx problem documents only, nothing written', async () => {
    const random = prng(20261124);
    const int = (n: number) => Math.floor(random() * n);
    const store = server.env.ctx.store;
    const counts = async () => ({ events: await store.audit.count(), sessions: Number((await rawConnection(store)('console_sessions').count({ n: '*' }))[0]!.n) });
    const cases: Array<{ name: string; method: string; path: string; headers?: Record<string, string>; body?: string | Buffer }> = [];
    for (let i = 0; i < 120; i += 1) cases.push({ name: `random bytes #${i}`, method: 'POST', path: '/console/v1/session', headers: { 'content-type': 'application/json' }, body: Buffer.from(Array.from({ length: int(600) }, () => int(256))) });
    for (const [i, token] of [...BAD_VALUES, ...BAD_TEXT].entries()) cases.push({ name: `token = bad value #${i}`, method: 'POST', path: '/console/v1/session', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    // In a query string every value is text: the texts that no serial, state, model or owner name can be.
    for (const [i, value] of [...BAD_TEXT, ...BAD_VALUES].filter((v) => typeof v === 'string' && !/^[A-Za-z0-9._-]*$/.test(v)).entries()) {
      for (const field of ['q', 'state', 'model', 'owner']) {
        cases.push({ name: `search ${field} = bad text #${i} ${JSON.stringify(value).slice(0, 20)}`, method: 'GET', path: `/console/v1/devices?${field}=${[...Buffer.from(String(value))].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`, headers: { authorization: `Bearer ${server.tokens.operator}` } });
      }
    }
    for (const query of ['q[]=a', 'q=a&q=b', 'nope=1', 'q=%ZZ', 'state[$ne]=x', 'q=' + 'a'.repeat(70)]) {
      cases.push({ name: `search ${query}`, method: 'GET', path: `/console/v1/devices?${query}`, headers: { authorization: `Bearer ${server.tokens.operator}` } });
    }
    for (let i = 0; i < 60; i += 1) {
      const cookie = `__Host-devid-session=${Buffer.from(Array.from({ length: int(80) }, () => 33 + int(90))).toString('latin1').replace(/[;,]/g, '')}`;
      cases.push({ name: `random cookie #${i}`, method: ['GET', 'DELETE'][i % 2]!, path: i % 4 < 2 ? '/console/v1/session' : '/console/v1/fleet', headers: { cookie } });
    }
    for (const method of ['PUT', 'PATCH']) cases.push({ name: `${method} session`, method, path: '/console/v1/session', headers: { 'content-type': 'application/json' }, body: '{}' });
    cases.push({ name: 'session as a form', method: 'POST', path: '/console/v1/session', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${server.tokens.operator}` });
    cases.push({ name: 'session too large', method: 'POST', path: '/console/v1/session', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'a'.repeat(10_000) }) });
    const before = await counts();
    const failures: string[] = [];
    for (const c of cases) {
      const res = await httpsRequest(server.running.httpsPort, server.rootPem, c.method, c.path, c.headers ?? {}, c.body);
      // DELETE of a session that is not there is 204: signing out is idempotent.
      if (c.method === 'DELETE' && c.path === '/console/v1/session' && res.status === 204) continue;
      if (res.status < 400 || res.status >= 500) failures.push(`${c.name}: ${res.status} ${res.text.slice(0, 120)}`);
      else if (!String(res.headers['content-type']).includes('application/problem+json')) failures.push(`${c.name}: ${res.status} without a problem document`);
    }
    expect(cases.length).to.be.at.least(300);
    expect(failures, failures.slice(0, 20).join('\n')).to.deep.equal([]);
    expect(await counts()).to.deep.equal(before);
  });
});
