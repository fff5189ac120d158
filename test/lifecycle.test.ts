import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import type { DatabaseKind } from './support/databases.ts';
import { makeDeviceKey } from './support/device.ts';
import { opensslText, opensslVerify } from './support/openssl.ts';
import { opensslOcsp } from './support/publication.ts';
import { createToken } from '../server/tokens.ts';
import { rawConnection } from '../store/test-access.ts';
import * as x509 from '@peculiar/x509';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyExport } from '../registry/audit/export-verify.ts';
import { loadAuditKey } from '../registry/audit/audit-key.ts';

const digest = (text: string) => createHash('sha256').update(text).digest();

for (const kind of ['pglite', 'postgres'] as DatabaseKind[]) {
  describe(`lifecycle: device classes, firmware, ownership, retirement (${kind})`, function () {
    this.timeout(180_000);
    let server: TestServer;
    const operator = (method: string, path: string, body?: unknown) => server.request(method, path, { token: server.tokens.operator, ...(body === undefined ? {} : { body }) });

    before(async () => {
      server = await startTestServer(kind);
    });
    after(async () => server?.close());

    it('device classes: declared, validated with clear errors, per model and per device, applied at the next renewal', async () => {
      const short = { ttl: '2h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: true, counterRequired: false, onCloneSignal: 'refuse' };
      const created = await operator('PUT', '/operator/v1/device-classes/short', short);
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.deep.equal({ name: 'short', ...short, attestationFormats: ['devid'], est: false, onWithdrawnFirmware: 'refuse' });
      expect((await operator('PUT', '/operator/v1/device-classes/short', short)).status).to.equal(200);
      for (const [field, value] of [['ttl', '0h'], ['ttl', '24 hours'], ['ttl', '1000d'], ['ttl', 24], ['factoryReattestEvery', '5m'], ['serverAuth', 'yes'], ['onCloneSignal', 'ignore'], ['attestationFormats', ['packed']], ['attestationFormats', []], ['attestationFormats', ['devid', 'devid']], ['est', 'yes']] as const) {
        const refused = await operator('PUT', '/operator/v1/device-classes/bad', { ...short, [field]: value });
        expect(refused.status, `${field}=${String(value)}`).to.equal(400);
        expect(refused.json.detail).to.include(field);
      }
      expect((await operator('PUT', '/operator/v1/device-classes/bad', { ttl: '1h' })).json.detail).to.match(/missing: stagedRenewal/);
      expect((await operator('PUT', '/operator/v1/devices/lc-none/class', { class: 'short' })).status).to.equal(404);

      const device = await makeDevice(server, 'lc-0001');
      const first = await device.enroll();
      const hours = (first.certificate.notAfter.getTime() - first.certificate.notBefore.getTime()) / 3600_000;
      expect(hours).to.be.closeTo(24 + 5 / 60, 0.01);
      // The model's default class applies from the next renewal...
      expect((await operator('PUT', '/operator/v1/models/thermo-2', { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices', defaultClass: 'nowhere' })).status).to.equal(404);
      expect((await operator('PUT', '/operator/v1/models/thermo-2', { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices', defaultClass: 'short' })).json.defaultClass).to.equal('short');
      const second = await device.enroll();
      expect((second.certificate.notAfter.getTime() - second.certificate.notBefore.getTime()) / 3600_000).to.be.closeTo(2 + 5 / 60, 0.01);
      // ...and the device's own class wins over its model's.
      expect((await operator('PUT', '/operator/v1/devices/lc-0001/class', { class: 'default' })).json).to.deep.equal({ serial: 'lc-0001', class: 'default' });
      const third = await device.enroll();
      expect((third.certificate.notAfter.getTime() - third.certificate.notBefore.getTime()) / 3600_000).to.be.closeTo(24 + 5 / 60, 0.01);
      await operator('PUT', '/operator/v1/models/thermo-2', { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices', defaultClass: 'default' });
    });

    it('firmware: outside the allowlist is refused at enrollment and renewal; a withdrawn version makes renewalInfo ask for renewal now', async () => {
      const device = await makeDevice(server, 'lc-0002');
      const v1 = { version: '1.0.0', digest: digest('fw 1.0.0') };
      const v2 = { version: '2.0.0', digest: digest('fw 2.0.0') };
      await device.enroll({ firmware: v1 });
      const policy = await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '1.0.0', digest: v1.digest.toString('hex') }, { version: '2.0.0', digest: v2.digest.toString('hex') }] });
      expect(policy.status, policy.text).to.equal(200);
      for (const bad of [{ allowed: [{ version: '1', digest: 'zz' }] }, { allowed: 'all' }, { allowed: [{ version: '', digest: v1.digest.toString('hex') }] }, { allowed: [{ version: '1', digest: v1.digest.toString('hex'), extra: 1 }] }]) {
        expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', bad)).status, JSON.stringify(bad)).to.equal(400);
      }
      let refused: unknown;
      await device.enroll({ firmware: { version: '2.0.0', digest: digest('tampered') } }).catch((err: unknown) => { refused = err; });
      expect(String(refused)).to.match(/check 5 \(firmware\)/);
      await device.enroll({ firmware: v1 });
      await device.enroll({ firmware: v2 });
      expect((await device.renewalWindow())!.start.getTime()).to.be.above(Date.now());
      // 2.0.0 withdrawn: the device running it is asked to renew now.
      await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '1.0.0', digest: v1.digest.toString('hex') }] });
      expect((await device.renewalWindow())!.end.getTime()).to.be.at.most(Date.now());
      await device.enroll({ firmware: v1 });
      const history = await server.request('GET', '/audit/v1/devices/lc-0002/history', { token: server.tokens.auditor });
      expect(history.json.firmware.map((f: { version: string }) => f.version)).to.deep.equal(['1.0.0', '1.0.0', '2.0.0', '1.0.0']);
      expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [] })).json.allowed).to.deep.equal([]);
      await device.enroll();
    });

    it('ownership: transfers keep the chain of owners, by principal and evidence; devices are listed by owner', async () => {
      const device = await makeDevice(server, 'lc-0003');
      await device.enroll();
      expect((await operator('POST', '/operator/v1/devices/lc-0003/transfer', { to: 'acme-utilities', evidence: 'PO 4711' })).json).to.deep.equal({ serial: 'lc-0003', from: null, to: 'acme-utilities' });
      expect((await operator('POST', '/operator/v1/devices/lc-0003/transfer', { to: 'acme-utilities', evidence: 'again' })).status).to.equal(409);
      expect((await operator('POST', '/operator/v1/devices/lc-0003/transfer', { to: 'city-of-x', evidence: 'resale contract 2026-11' })).json.from).to.equal('acme-utilities');
      expect((await operator('POST', '/operator/v1/devices/lc-0003/transfer', { to: 'bad owner', evidence: 'x' })).status).to.equal(400);
      expect((await operator('POST', '/operator/v1/devices/lc-0003/transfer', { to: 'x' })).status).to.equal(400);
      const listed = await operator('GET', '/operator/v1/devices?owner=city-of-x');
      expect(listed.json.devices.map((d: { serial: string }) => d.serial)).to.deep.equal(['lc-0003']);
      const history = await server.request('GET', '/audit/v1/devices/lc-0003/history', { token: server.tokens.auditor });
      expect(history.json.device.owner).to.equal('city-of-x');
      expect(history.json.ownership.map((o: { from: string | null; to: string; principal: string }) => [o.from, o.to, o.principal])).to.deep.equal([[null, 'acme-utilities', 'alice'], ['acme-utilities', 'city-of-x', 'alice']]);
    });

    it('vendor support: requested by one operator, approved by another person, a certificate inside the window only, revoked early with it', async () => {
      const make = async (fields: Record<string, unknown>) => (await createToken(server.env.ctx.store, server.env.ctx.audit, fields as never, 'cli', new Date())).token;
      const aliceAgain = await make({ role: 'operator', name: 'alice' });
      const bob = await make({ role: 'operator', name: 'bob' });
      const vendor = await make({ role: 'vendor', vendor: 'acme-svc' });
      const otherVendor = await make({ role: 'vendor', vendor: 'other-svc' });
      const as = (token: string, method: string, path: string, body?: unknown) => server.request(method, path, { token, ...(body === undefined ? {} : { body }) });
      const device = await makeDevice(server, 'lc-0005');
      await device.enroll();
      for (const bad of [{ vendor: 'acme-svc', reason: 'x', hours: 9 }, { vendor: 'acme-svc', reason: 'x', hours: 0 }, { vendor: 'acme-svc', reason: 'x', hours: 1.5 }, { vendor: 'a b', reason: 'x', hours: 1 }, { vendor: 'acme-svc', hours: 1 }]) {
        expect((await operator('POST', '/operator/v1/devices/lc-0005/support-grants', bad)).status, JSON.stringify(bad)).to.equal(400);
      }
      const requested = await operator('POST', '/operator/v1/devices/lc-0005/support-grants', { vendor: 'acme-svc', reason: 'field repair, ticket 99', hours: 4 });
      expect(requested.status, requested.text).to.equal(201);
      expect(requested.json.status).to.equal('pending');
      const id = requested.json.id as string;
      const key = await makeDeviceKey();
      const certificate = (token: string) => as(token, 'POST', `/support/v1/grants/${id}/certificate`, { csr: key.csrPem });
      expect((await certificate(vendor)).status, 'before approval').to.equal(409);
      expect((await operator('POST', `/operator/v1/support-grants/${id}/approve`, {})).status, 'self-approval').to.equal(403);
      expect((await as(aliceAgain, 'POST', `/operator/v1/support-grants/${id}/approve`, {})).status, 'a second token of the same person').to.equal(403);
      const approved = await as(bob, 'POST', `/operator/v1/support-grants/${id}/approve`, {});
      expect(approved.status, approved.text).to.equal(200);
      expect(Date.parse(approved.json.windowEnd) - Date.parse(approved.json.windowStart)).to.equal(4 * 3600_000);
      expect((await as(bob, 'POST', `/operator/v1/support-grants/${id}/approve`, {})).status).to.equal(409);
      expect((await certificate(otherVendor)).status, 'another vendor').to.equal(403);
      expect((await as(server.tokens.operator, 'POST', `/support/v1/grants/${id}/certificate`, { csr: key.csrPem })).status, 'an operator').to.equal(403);
      const issued = await certificate(vendor);
      expect(issued.status, issued.text).to.equal(201);
      const text = opensslText(issued.json.certificate);
      expect(text).to.include('URI:spiffe://ca.devid.test/support/acme-svc/lc-0005').and.include('TLS Web Client Authentication').and.not.include('CN=lc-0005');
      const verified = opensslVerify(server.rootPem, issued.json.chain, issued.json.certificate, 'sslclient');
      expect(verified.ok, verified.output).to.equal(true);
      const cert = new x509.X509Certificate(issued.json.certificate);
      expect(cert.notBefore.getTime()).to.equal(Math.floor(Date.parse(approved.json.windowStart) / 1000) * 1000);
      expect(cert.notAfter.getTime()).to.equal(Math.floor(Date.parse(approved.json.windowEnd) / 1000) * 1000);

      const revoked = await as(bob, 'POST', `/operator/v1/support-grants/${id}/revoke`, {});
      expect(revoked.json.status).to.equal('revoked');
      expect((await certificate(vendor)).status, 'after revocation').to.equal(409);
      const view = await operator('GET', `/operator/v1/support-grants/${id}`);
      expect(view.json.certificates).to.deep.equal([issued.json.serial]);
      const ocsp = await opensslOcsp({ issuerPem: server.running.hierarchy.operational.certificate.toString('pem'), rootPem: server.rootPem, url: `http://127.0.0.1:${server.running.httpPort}/ocsp`, certPem: issued.json.certificate });
      // OpenSSL 3.0 prints no name for reason 9 (privilegeWithdrawn): "(UNKNOWN)".
      expect(ocsp.output, ocsp.output).to.match(/cert\.pem: revoked/).and.match(/Reason: (privilegeWithdrawn|\(UNKNOWN\))/);

      // A window that has closed (its end moved into the past, as time would).
      const second = await operator('POST', '/operator/v1/devices/lc-0005/support-grants', { vendor: 'acme-svc', reason: 'follow-up', hours: 1 });
      await as(bob, 'POST', `/operator/v1/support-grants/${second.json.id}/approve`, {});
      await rawConnection(server.env.ctx.store)('support_grants').where({ id: second.json.id }).update({ approved_at: new Date(Date.now() - 2 * 3600_000), window_end: new Date(Date.now() - 3600_000) });
      const late = await as(vendor, 'POST', `/support/v1/grants/${second.json.id}/certificate`, { csr: key.csrPem });
      expect(late.status).to.equal(409);
      expect(late.json.detail).to.match(/outside its window/);
      const history = await server.request('GET', '/audit/v1/devices/lc-0005/history', { token: server.tokens.auditor });
      const actions = history.json.events.map((e: { action: string }) => e.action);
      expect(actions).to.include.members(['support.requested', 'support.approved', 'support.certificate-issued', 'support.revoked']);
      expect(history.json.certificates.map((c: { kind: string }) => c.kind)).to.include('support');
    });

    it('the auditor\'s export is checked offline (chain, checkpoints, signatures, predecessors) and fails after any one byte changes', async () => {
      const device = await makeDevice(server, 'lc-0006');
      await device.enroll();
      await device.enroll();
      await (await makeDevice(server, 'lc-0007')).enroll();
      await operator('POST', '/operator/v1/devices/lc-0006/transfer', { to: 'new-owner', evidence: 'deed' });
      const dir = mkdtempSync(join(tmpdir(), 'devid-test-export-'));
      try {
        const rootPath = join(dir, 'root.pem');
        writeFileSync(rootPath, server.rootPem);
        for (const query of ['?device=lc-0006', '?batch=b1', '']) {
          const answer = await server.request('GET', `/audit/v1/export${query}`, { token: server.tokens.auditor });
          expect(answer.status, answer.text).to.equal(200);
          expect(answer.headers['content-type']).to.match(/^application\/jsonl/);
          const path = join(dir, `export${query.replace(/\W/g, '-')}.jsonl`);
          writeFileSync(path, answer.text);
          const report = await verifyExport(path, server.rootPem);
          expect(report.problems, query).to.deep.equal([]);
          expect(report.ok).to.equal(true);
          expect(report.certificates).to.be.at.least(3);
          if (query === '?device=lc-0006') {
            expect(report.devices).to.equal(1);
            const lines = answer.text.trim().split('\n').map((l) => JSON.parse(l));
            const certs = lines.filter((l) => l.type === 'certificate');
            expect(certs.map((c) => c.predecessorSha256)).to.deep.equal([null, certs[0].sha256, certs[1].sha256]);
            const cli = spawnSync(fileURLToPath(new URL('../bin/devid-ca', import.meta.url)), ['audit', 'verify-export', path, '--root', rootPath], { encoding: 'utf8' });
            expect(cli.status, cli.stderr).to.equal(0);
            expect(cli.stdout).to.match(/^OK: \d+ CA certificates, \d+ checkpoints, 1 devices, 3 certificates, \d+ events/);
            // Any one byte changed, anywhere: the check fails.
            const bytes = Buffer.from(answer.text);
            let seed = 11;
            for (let i = 0; i < 40; i += 1) {
              seed = (seed * 1103515245 + 12345) & 0x7fffffff;
              const at = seed % bytes.length;
              const changed = Buffer.from(bytes);
              changed[at] = changed[at] === 0x41 ? 0x42 : 0x41;
              if (changed[at] === bytes[at]) continue;
              writeFileSync(path, changed);
              expect((await verifyExport(path, server.rootPem)).ok, `byte ${at} changed`).to.equal(false);
            }
            writeFileSync(path, bytes.subarray(0, bytes.lastIndexOf('\n', bytes.length - 2) + 1));
            expect((await verifyExport(path, server.rootPem)).problems.join()).to.match(/no end line/);
            const other = (await startTestServer('pglite')) as TestServer;
            try {
              writeFileSync(path, bytes);
              expect((await verifyExport(path, other.rootPem)).ok, 'another root').to.equal(false);
            } finally {
              await other.close();
            }
          }
        }
        // A server with its audit key, compromised: it can re-sign a doctored export, and the other checks still catch it.
        expect((await server.request('POST', '/audit/v1/checkpoints', { token: server.tokens.operator })).status).to.be.oneOf([200, 201]);
        const batchExport = (await server.request('GET', '/audit/v1/export?batch=b1', { token: server.tokens.auditor })).text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        const { signer } = await loadAuditKey(server.env.ctx.provider, server.env.ctx.store);
        const resigned = async (lines: Array<Record<string, unknown>>) => {
          const body = lines.slice(0, -1).map((l) => `${JSON.stringify(l)}\n`).join('');
          const sha256 = createHash('sha256').update(body).digest();
          const end: Record<string, unknown> = { ...lines.at(-1)!, sha256: sha256.toString('hex'), signature: (await signer.sign(sha256)).signature.toString('base64') };
          for (const kind of ['cas', 'checkpoints', 'devices', 'certificates', 'events'] as const) end[kind] = lines.filter((l) => `${String(l.type)}s` === kind || (kind === 'cas' && l.type === 'ca')).length;
          const path = join(dir, 'doctored.jsonl');
          writeFileSync(path, `${body}${JSON.stringify(end)}\n`);
          return verifyExport(path, server.rootPem);
        };
        expect((await resigned(batchExport)).problems, 're-signed as it was').to.deep.equal([]);
        const certs = batchExport.filter((l) => l.type === 'certificate');
        const stranger = certs.find((c) => c.device !== certs.find((o) => o.predecessorSha256)!.device)!;
        const forked = batchExport.map((l) => (l === certs.find((o) => o.predecessorSha256) ? { ...l, predecessorSha256: stranger.sha256 } : l));
        expect((await resigned(forked)).problems.join()).to.match(/belongs to another device/);
        const checkpoint = batchExport.filter((l) => l.type === 'checkpoint').at(-1)!;
        const twice = [...batchExport.slice(0, batchExport.indexOf(checkpoint) + 1), checkpoint, ...batchExport.slice(batchExport.indexOf(checkpoint) + 1)];
        expect((await resigned(twice)).problems.join()).to.match(/a second checkpoint/);
        const cut = batchExport.filter((l) => l.type !== 'event' || Number(l.seq) < Number(checkpoint.seq));
        expect((await resigned(cut)).problems.join()).to.match(/cut off/);
        expect((await server.request('GET', '/audit/v1/export?device=a&batch=b', { token: server.tokens.auditor })).status).to.equal(400);
        expect((await server.request('GET', '/audit/v1/export', { token: server.tokens.operator })).status).to.equal(403);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('the rotation report lists devices overdue, expired or revoked without successor, never enrolled or not re-attested; JSON and CSV', async () => {
      await makeDevice(server, 'rr-never', 'thermo-2', 'rr-batch');
      const overdue = await makeDevice(server, 'rr-overdue', 'thermo-2', 'rr-batch');
      const expired = await makeDevice(server, 'rr-expired', 'thermo-2', 'rr-batch');
      const fine = await makeDevice(server, 'rr-fine', 'thermo-2', 'rr-batch');
      for (const device of [overdue, expired, fine]) await device.enroll();
      const db = rawConnection(server.env.ctx.store);
      const hour = 3600_000;
      await db('certificates').where({ serial: overdue.current()!.serialNumber }).update({ not_before: new Date(Date.now() - 23 * hour), not_after: new Date(Date.now() + hour) });
      await db('certificates').where({ serial: expired.current()!.serialNumber }).update({ not_before: new Date(Date.now() - 25 * hour), not_after: new Date(Date.now() - hour) });
      await db('devices').where({ serial: 'rr-fine' }).update({ factory_attested_at: new Date(Date.now() - 31 * 24 * hour) });
      const report = await operator('GET', '/operator/v1/reports/rotation?model=thermo-2');
      expect(report.status, report.text).to.equal(200);
      const reasons = Object.fromEntries(report.json.entries.filter((e: { serial: string }) => e.serial.startsWith('rr-')).map((e: { serial: string; reasons: string[] }) => [e.serial, e.reasons]));
      expect(reasons).to.deep.equal({
        'rr-never': ['never-enrolled'], 'rr-overdue': ['overdue'], 'rr-expired': ['expired-without-successor'], 'rr-fine': ['factory-reattestation-overdue'],
      });
      expect(report.json.byClass.default.overdue).to.be.at.least(1);
      expect(report.json.byModel['thermo-2']['never-enrolled']).to.be.at.least(1);
      const csv = await server.request('GET', '/operator/v1/reports/rotation?format=csv&model=thermo-2', { token: server.tokens.operator });
      expect(csv.headers['content-type']).to.match(/^text\/csv/);
      expect(csv.text.split('\r\n')[0]).to.equal('serial,model,owner,class,state,reasons,certificate,notAfter');
      expect(csv.text).to.match(/\r\nrr-expired,thermo-2,,default,active,expired-without-successor,[0-9a-f]+,/);
      expect((await operator('GET', '/operator/v1/reports/rotation?format=xml')).status).to.equal(400);
      expect((await operator('GET', '/operator/v1/reports/rotation?evil=1')).status).to.equal(400);
    });

    it('one device\'s whole story: born, enrolled, sold twice, serviced, updated, rotated, retired, in order, in its history and its export', async () => {
      const make = async (fields: Record<string, unknown>) => (await createToken(server.env.ctx.store, server.env.ctx.audit, fields as never, 'cli', new Date())).token;
      const carol = await make({ role: 'operator', name: 'carol' });
      const vendor = await make({ role: 'vendor', vendor: 'fix-it' });
      const device = await makeDevice(server, 'story-1');
      const v1 = { version: '1.0.0', digest: digest('story 1.0.0') };
      const v2 = { version: '1.1.0', digest: digest('story 1.1.0') };
      await device.enroll({ firmware: v1 });
      await operator('POST', '/operator/v1/devices/story-1/transfer', { to: 'first-buyer', evidence: 'invoice 1' });
      await operator('POST', '/operator/v1/devices/story-1/transfer', { to: 'second-buyer', evidence: 'resale 2' });
      const grant = await operator('POST', '/operator/v1/devices/story-1/support-grants', { vendor: 'fix-it', reason: 'repair', hours: 2 });
      await server.request('POST', `/operator/v1/support-grants/${grant.json.id}/approve`, { token: carol, body: {} });
      expect((await server.request('POST', `/support/v1/grants/${grant.json.id}/certificate`, { token: vendor, body: { csr: (await makeDeviceKey()).csrPem } })).status).to.equal(201);
      await device.enroll({ firmware: v2 });
      await operator('POST', '/operator/v1/devices/story-1/decommission', { reason: 'end of life' });
      const history = await server.request('GET', '/audit/v1/devices/story-1/history', { token: server.tokens.auditor });
      const actions = history.json.events.map((e: { action: string }) => e.action).filter((a: string) => !a.startsWith('audit.'));
      const order = ['device.manufactured', 'device.transferred', 'device.transferred', 'support.requested', 'support.approved', 'support.certificate-issued', 'device.decommissioned'];
      let at = -1;
      for (const action of order) {
        const next = actions.indexOf(action, at + 1);
        expect(next, `${action} after ${order.join(' ')} in ${actions.join(' ')}`).to.be.above(at);
        at = next;
      }
      expect(history.json.ownership.map((o: { to: string }) => o.to)).to.deep.equal(['first-buyer', 'second-buyer']);
      expect(history.json.firmware.map((f: { version: string }) => f.version)).to.deep.equal(['1.0.0', '1.1.0']);
      const kinds = history.json.certificates.map((c: { kind: string }) => c.kind);
      expect(kinds).to.deep.equal(['birth', 'operational', 'support', 'operational']);
      expect(history.json.certificates.every((c: { revokedAt: string | null }) => c.revokedAt !== null)).to.equal(true);
      const exported = await server.request('GET', '/audit/v1/export?device=story-1', { token: server.tokens.auditor });
      const dir = mkdtempSync(join(tmpdir(), 'devid-test-story-'));
      try {
        writeFileSync(join(dir, 'story.jsonl'), exported.text);
        const report = await verifyExport(join(dir, 'story.jsonl'), server.rootPem);
        expect(report.problems).to.deep.equal([]);
        expect(report.certificates).to.equal(4);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('retirement: decommission revokes everything and refuses enrollment; reprovisioning starts a second life in the same history', async () => {
      const device = await makeDevice(server, 'lc-0004');
      await device.enroll();
      const retired = await operator('POST', '/operator/v1/devices/lc-0004/decommission', { reason: 'end of life' });
      expect(retired.status, retired.text).to.equal(200);
      expect(retired.json.device.state).to.equal('decommissioned');
      expect(retired.json.revokedCertificates).to.have.length(2);
      let refused: unknown;
      await device.enroll().catch((err: unknown) => { refused = err; });
      expect(refused).to.be.an('error');
      expect((await operator('POST', '/operator/v1/devices/lc-0004/decommission', { reason: 'twice' })).status).to.equal(409);
      expect((await operator('POST', '/operator/v1/devices/lc-0004/transfer', { to: 'someone', evidence: 'x' })).status).to.equal(409);
      const again = await operator('POST', '/operator/v1/devices/lc-0004/reprovision', { reason: 'refurbished' });
      expect(again.json.device.state).to.equal('manufactured');
      const history = await server.request('GET', '/audit/v1/devices/lc-0004/history', { token: server.tokens.auditor });
      const actions = history.json.events.map((e: { action: string }) => e.action);
      expect(actions.indexOf('device.decommissioned')).to.be.below(actions.indexOf('device.reprovision-allowed'));
    });
  });
}
