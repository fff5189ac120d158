import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadAuditKey } from '../registry/audit/audit-key.ts';
import { verifyExport } from '../registry/audit/export-verify.ts';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { createToken } from '../server/tokens.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';

const RELEASES = '/operator/v1/models/thermo-2/firmware-releases';
const image = (n: number) => createHash('sha256').update(`export image ${n}`).digest();

describe('the auditor\'s export carries the firmware lineage and its signed manifests; verify-export checks each offline', function () {
  this.timeout(180_000);
  let server: TestServer;
  let dir: string;
  let lines: Array<Record<string, unknown>>;
  const manifests: Record<string, string> = {};

  before(async () => {
    server = await startTestServer('pglite');
    dir = mkdtempSync(join(tmpdir(), 'devid-test-fw-export-'));
    await createFirmwareCa(server.env.ctx, 'cli');
    await createModelFirmwareSigner(server.env.ctx, 'thermo-2', 'cli');
    const bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
    for (const [version, n, sequence] of [['1.0.0', 1, 1], ['1.1.0', 2, 2], ['9.9.9', 9, 9]] as const) {
      const proposed = await server.request('POST', RELEASES, { token: server.tokens.operator, body: { version, digest: image(n).toString('hex'), size: 100, sequence } });
      const approved = await server.request('POST', `${RELEASES}/${version}/approve`, { token: bob, body: { proposal: proposed.json.proposal } });
      expect(approved.status, approved.text).to.equal(200);
      manifests[version] = approved.json.manifestSha256;
    }
    const device = await makeDevice(server, 'SN-FWX1');
    await device.enroll({ firmware: { version: '1.0.0', digest: image(1) } });
    await device.enroll({ firmware: { version: '1.1.0', digest: image(2) } });
    await (await makeDevice(server, 'SN-FWX2')).enroll({ firmware: { version: '1.1.0', digest: image(2) } });
    const exported = await server.request('GET', '/audit/v1/export?device=SN-FWX1', { token: server.tokens.auditor });
    expect(exported.status, exported.text).to.equal(200);
    lines = exported.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes lines as an export re-signed with the audit key (a compromised server): the other checks must still catch a change. */
  async function resigned(changed: Array<Record<string, unknown>>) {
    const { signer } = await loadAuditKey(server.env.ctx.provider, server.env.ctx.store);
    const body = changed.slice(0, -1).map((l) => `${JSON.stringify(l)}\n`).join('');
    const sha256 = createHash('sha256').update(body).digest();
    const count = (type: string) => changed.filter((l) => l.type === type).length;
    const end = { ...changed.at(-1)!, sha256: sha256.toString('hex'), signature: (await signer.sign(sha256)).signature.toString('base64'), firmware: count('firmware'), manifests: count('firmware-manifest') };
    const path = join(dir, 'export.jsonl');
    writeFileSync(path, `${body}${JSON.stringify(end)}\n`);
    return verifyExport(path, server.rootPem);
  }

  it('the lineage steps with their release, and the manifests of exactly the releases they name; the export verifies', async () => {
    const steps = lines.filter((l) => l.type === 'firmware');
    expect(steps.map((s) => [s.device, s.version, (s.release as { manifestSha256: string }).manifestSha256])).to.deep.equal([
      ['SN-FWX1', '1.0.0', manifests['1.0.0']], ['SN-FWX1', '1.1.0', manifests['1.1.0']],
    ]);
    const carried = lines.filter((l) => l.type === 'firmware-manifest');
    expect(carried.map((m) => [m.version, m.manifestSha256, m.sequence])).to.deep.equal([['1.0.0', manifests['1.0.0'], 1], ['1.1.0', manifests['1.1.0'], 2]]);
    const envelope = await server.request('GET', `${RELEASES}/1.0.0`, { token: server.tokens.operator });
    expect(carried[0]!.signer).to.equal(envelope.json.signer);
    const report = await resigned(lines);
    expect(report.problems).to.deep.equal([]);
    expect(report).to.include({ ok: true, firmware: 2, manifests: 2 });
    // As served, not re-signed, too.
    const path = join(dir, 'as-served.jsonl');
    writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    expect((await verifyExport(path, server.rootPem)).ok).to.equal(true);
  });

  it('a flipped byte in a manifest, a hash that is not the manifest\'s, a missing manifest or one signed for another release: refused, even re-signed', async () => {
    const manifestAt = lines.findIndex((l) => l.type === 'firmware-manifest');
    const original = lines[manifestAt]!;
    const bytes = Buffer.from(String(original.envelope), 'base64');
    for (let at = 3; at < bytes.length; at += 41) { // about 35 bytes, all over the envelope
      const flipped = Buffer.from(bytes);
      flipped[at] ^= 0x01;
      const report = await resigned(lines.map((l, i) => (i === manifestAt ? { ...l, envelope: flipped.toString('base64') } : l)));
      expect(report.ok, `byte ${at}`).to.equal(false);
      expect(report.problems.join('\n')).to.match(/firmware manifest thermo-2 1\.0\.0: /);
    }
    const renamed = await resigned(lines.map((l, i) => (i === manifestAt ? { ...l, manifestSha256: 'ab'.repeat(32) } : l)));
    expect(renamed.problems.join('\n')).to.match(/its manifest hash is .*, not the abab/).and.to.match(new RegExp(`names manifest ${String(manifests['1.0.0'])}, and the export carries no verified manifest`));
    const dropped = await resigned(lines.filter((_, i) => i !== manifestAt));
    expect(dropped.problems.join('\n')).to.match(/the firmware lineage of SN-FWX1 names manifest/).and.to.match(/event device\.(enrolled|attested) of SN-FWX1 names manifest/);
    // Another release's (real, signed) envelope in its place: its hash is not the one the lineage names.
    const swapped = lines.map((l, i) => (i === manifestAt ? { ...l, envelope: String(lines[manifestAt + 1]!.envelope) } : l));
    expect((await resigned(swapped)).problems.join('\n')).to.match(/its manifest hash is/);
  });
});
