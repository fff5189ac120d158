import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { createToken } from '../server/tokens.ts';
import { rawConnection } from '../store/test-access.ts';
import { makeDevice, PUBLIC_HOST } from './support/acme-device.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { ARTIFACTS, launchBrowser, signInToConsole } from './support/browser.ts';

const RELEASES = '/operator/v1/models/thermo-2/firmware-releases';
const image = (n: number) => createHash('sha256').update(`console image ${n}`).digest();

/** The console's Firmware pages in a real headless chromium (docs/operators/console.md#firmware). */
describe('console: the Firmware page of a model, and the firmware lineage on the device page', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let browser: Browser;
  let origin: string;
  let bob: string;
  const request = (token: string, method: string, path: string, body?: unknown) => server.request(method, path, { token, ...(body === undefined ? {} : { body }) });

  before(async () => {
    server = await startTestServer('pglite');
    browser = await launchBrowser(PUBLIC_HOST);
    origin = `https://${PUBLIC_HOST}:${server.running.httpsPort}`;
    await createFirmwareCa(server.env.ctx, 'cli');
    await createModelFirmwareSigner(server.env.ctx, 'thermo-2', 'cli');
    bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
    for (const [version, n, sequence] of [['1.0.0', 1, 1], ['1.1.0', 2, 2]] as const) {
      expect((await request(server.tokens.operator, 'POST', RELEASES, { version, digest: image(n).toString('hex'), size: 1000 + n, sequence })).status).to.equal(201);
    }
    const proposal = (await request(bob, 'GET', `${RELEASES}/1.0.0`)).json.proposal;
    expect((await request(bob, 'POST', `${RELEASES}/1.0.0/approve`, { proposal })).status).to.equal(200);
    for (const serial of ['fw-con-1', 'fw-con-2']) await (await makeDevice(server, serial)).enroll({ firmware: { version: '1.0.0', digest: image(1) } });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const signIn = (token: string) => signInToConsole(browser, origin, token);

  const row = (page: Page, version: string) => page.locator(`table.releases tr[data-version="${version}"]`);

  it('releases, approvals and device counts; the proposer cannot approve, another operator approves, then withdraws', async () => {
    const alice = await signIn(server.tokens.operator);
    await alice.page.click('header nav a:has-text("Firmware")');
    await alice.page.click('table.firmware-models a:has-text("thermo-2")');
    await row(alice.page, '1.1.0').waitFor();
    expect(await row(alice.page, '1.0.0').locator('td.status').textContent()).to.equal('approved');
    expect(await row(alice.page, '1.0.0').locator('td.devices').textContent()).to.equal('2');
    expect(await row(alice.page, '1.1.0').locator('td.status').textContent()).to.equal('proposed');
    expect(await row(alice.page, '1.1.0').locator('button:has-text("Approve")').isDisabled(), 'alice proposed 1.1.0').to.equal(true);
    expect(await row(alice.page, '1.1.0').textContent()).to.include('two-person rule');
    const signer = (await request(bob, 'GET', `${RELEASES}/1.0.0`)).json.signer;
    expect(await row(alice.page, '1.0.0').textContent()).to.include(signer);
    await alice.context.close();

    const second = await signIn(bob);
    await second.page.goto(`${origin}/console#/firmware/thermo-2`);
    await row(second.page, '1.1.0').locator('button:has-text("Approve")').click();
    expect(await second.page.textContent('.dialog .consequence')).to.include('signed now').and.include(image(2).toString('hex'));
    await second.page.click('.dialog button[type=submit]');
    await second.page.waitForSelector('table.releases tr[data-version="1.1.0"][data-status="approved"]');
    await (await makeDevice(server, 'fw-con-3')).enroll({ firmware: { version: '1.1.0', digest: image(2) } });
    await second.page.reload();
    await second.page.waitForSelector('table.releases tr[data-version="1.1.0"]');
    expect(await row(second.page, '1.1.0').locator('td.devices').textContent()).to.equal('1');
    expect(await row(second.page, '1.0.0').locator('td.devices').textContent()).to.equal('2');
    await row(second.page, '1.0.0').locator('button:has-text("Withdraw")').click();
    expect(await second.page.textContent('.dialog .consequence')).to.include('2 device(s)');
    await second.page.fill('.dialog input[name=reason]', 'CVE-2026-0001 in the radio stack');
    await second.page.click('.dialog button[type=submit]');
    await second.page.waitForSelector('table.releases tr[data-version="1.0.0"][data-status="withdrawn"]');
    expect(await row(second.page, '1.0.0').textContent()).to.include('CVE-2026-0001').and.include('bob');
    await second.page.screenshot({ path: join(ARTIFACTS, 'console-firmware.png'), fullPage: true });
    expect(second.errors).to.deep.equal([]);
    await second.context.close();
    const events = await server.env.ctx.store.audit.recentByActions(['firmware.release-approved', 'firmware.release-withdrawn'], 10);
    expect(events.map((e) => JSON.parse(e.canonical).data.principal)).to.include('bob');
  });

  it('an auditor reads the page, with no action; an unknown model is 404', async () => {
    const auditor = await signIn(server.tokens.auditor);
    await auditor.page.goto(`${origin}/console#/firmware/thermo-2`);
    await row(auditor.page, '1.0.0').waitFor();
    expect(await auditor.page.locator('table.releases button').count()).to.equal(0);
    await auditor.context.close();
    expect((await request(server.tokens.auditor, 'GET', '/console/v1/firmware/no-such-model')).status).to.equal(404);
    expect((await request(server.tokens.auditor, 'GET', '/console/v1/firmware/..%2f')).status).to.equal(400);
    expect((await request(server.tokens.factory, 'GET', '/console/v1/firmware/thermo-2')).status).to.equal(403);
  });

  it('the counts come from the index devices_model_firmware, not a scan of the devices', async () => {
    const db = rawConnection(server.env.ctx.store);
    const plan = await db.transaction(async (tx) => {
      await tx.raw('set local enable_seqscan = off');
      const { sql, bindings } = db('devices').select('firmware_version').count({ n: '*' }).where({ model: 'thermo-2' }).whereNotNull('firmware_version').groupBy('firmware_version').toSQL();
      return (await tx.raw(`explain ${sql}`, bindings)).rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
    });
    expect(plan).to.include('devices_model_firmware').and.not.include('Seq Scan');
  });

  it('the device page shows each firmware step with its release, manifest hash and signer', async () => {
    const history = (await request(server.tokens.auditor, 'GET', '/audit/v1/devices/fw-con-3/history')).json;
    const step = history.firmware[0];
    expect(step.release).to.include({ version: '1.1.0', sequence: 2, legacy: false });
    expect(step.release.signer).to.match(/^[0-9a-f]+$/);
    const auditor = await signIn(server.tokens.auditor);
    await auditor.page.goto(`${origin}/console#/device/fw-con-3`);
    const line = auditor.page.locator(`table.firmware tr[data-manifest="${step.release.manifestSha256}"]`);
    await line.waitFor();
    const text = await line.textContent();
    expect(text).to.include('1.1.0').and.include('sequence 2').and.include(step.release.signer).and.include(step.release.manifestSha256.slice(0, 16));
    await auditor.context.close();
  });
});
