import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { createToken } from '../server/tokens.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, refused } from './support/acme-device.ts';
import type { Device } from '../client/device.ts';

const RELEASES = '/operator/v1/models/thermo-2/firmware-releases';
const image = (n: number) => createHash('sha256').update(`thermo-2 image ${n}`).digest();

describe('the verified update path (check 5 with signed releases): approved releases only, no rollback, withdrawals renew now', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let bob: string;
  let serial = 0;

  before(async () => {
    server = await startTestServer('pglite');
    await createFirmwareCa(server.env.ctx, 'cli');
    await createModelFirmwareSigner(server.env.ctx, 'thermo-2', 'cli');
    bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
  });
  after(() => server?.close());

  /** A release proposed by alice and approved by bob. */
  async function release(version: string, n: number, sequence: number, minSequence?: number): Promise<Record<string, unknown>> {
    const proposed = await server.request('POST', RELEASES, { token: server.tokens.operator, body: { version, digest: image(n).toString('hex'), size: 1000, sequence, ...(minSequence ? { minSequence } : {}) } });
    expect(proposed.status, proposed.text).to.equal(201);
    const approved = await server.request('POST', `${RELEASES}/${version}/approve`, { token: bob, body: { proposal: proposed.json.proposal } });
    expect(approved.status, approved.text).to.equal(200);
    return approved.json;
  }

  async function refusedCheck5(device: Device, firmware: { version: string; digest: Buffer } | undefined, detail: RegExp): Promise<void> {
    const err = await refused(device, firmware ? { firmware } : {}, 'badAttestationStatement', /check 5 \(firmware\)/);
    expect(err.problem!.detail).to.match(detail);
  }

  it('a signed release enrolls and is in the lineage with its manifest; no firmware, an unsigned digest and a rollback are refused naming check 5', async () => {
    const v1 = await release('1.0.0', 1, 10);
    await release('1.1.0', 2, 11);
    const device = await makeDevice(server, `SN-FW${++serial}`);
    await refusedCheck5(device, undefined, /reports no firmware/);
    await refusedCheck5(device, { version: '6.6.6', digest: image(99) }, /no approved release/);
    const enrolled = await device.enroll({ keepFiles: true, firmware: { version: '1.1.0', digest: image(2) } });
    expect(enrolled.certificate).to.be.ok;
    // Back to 1.0.0 (sequence 10) after running 1.1.0 (11): a rollback.
    await refusedCheck5(device, { version: '1.0.0', digest: image(1) }, /below the floor 11/);
    const history = await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor });
    expect(history.status, history.text).to.equal(200);
    const steps = history.json.firmware as Array<Record<string, unknown>>;
    const v11 = (await server.request('GET', `${RELEASES}/1.1.0`, { token: server.tokens.operator })).json;
    expect(steps.map((f) => [f.digest, f.release])).to.deep.equal([[image(2).toString('hex'), { version: '1.1.0', sequence: 11, manifestSha256: v11.manifestSha256, signer: v11.signer, legacy: false }]]);
    expect(v11.signer).to.match(/^[0-9a-f]+$/);
    expect(v1.manifestSha256).to.be.a('string');
    // A fresh device may still start on 1.0.0, until a release raises the model's floor.
    const other = await makeDevice(server, `SN-FW${++serial}`);
    expect((await other.enroll({ keepFiles: true, firmware: { version: '1.0.0', digest: image(1) } })).certificate).to.be.ok;
    await release('1.2.0', 3, 12, 11);
    const third = await makeDevice(server, `SN-FW${++serial}`);
    await refusedCheck5(third, { version: '1.0.0', digest: image(1) }, /below the floor 11/);
    // A downgrade is a new release of the old image with a higher sequence, approved by two people.
    await release('1.0.0-r', 1, 13);
    expect((await third.enroll({ keepFiles: true, firmware: { version: '1.0.0', digest: image(1) } })).certificate).to.be.ok;
  });

  it('a withdrawn release: refused at the next attestation, its devices asked to renew now, the withdrawal audited and answered as documented', async () => {
    await release('2.0.0', 20, 20);
    const device = await makeDevice(server, `SN-FW${++serial}`);
    await device.enroll({ firmware: { version: '2.0.0', digest: image(20) } });
    const before = (await device.renewalWindow())!;
    expect(before.start.getTime()).to.be.above(Date.now());
    expect((await server.request('POST', `${RELEASES}/2.0.0/withdraw`, { token: server.tokens.operator, body: {} })).status).to.equal(400);
    const withdrawn = await server.request('POST', `${RELEASES}/2.0.0/withdraw`, { token: server.tokens.operator, body: { reason: 'CVE in the bootloader' } });
    expect(withdrawn.status, withdrawn.text).to.equal(200);
    expect(withdrawn.json).to.include({ status: 'withdrawn', withdrawReason: 'CVE in the bootloader' });
    expect((await server.request('POST', `${RELEASES}/2.0.0/withdraw`, { token: server.tokens.operator, body: { reason: 'again' } })).status).to.equal(409);
    expect((await server.request('POST', `${RELEASES}/9.9.9/withdraw`, { token: server.tokens.operator, body: { reason: 'x' } })).status).to.equal(404);
    const after = (await device.renewalWindow())!;
    expect(after.end.getTime(), 'renew now').to.be.at.most(Date.now() + 1000);
    await refusedCheck5(device, { version: '2.0.0', digest: image(20) }, /withdrawn/);
    const audited = await server.env.ctx.store.audit.recentByActions(['firmware.release-withdrawn'], 5);
    expect(audited.map((e) => JSON.parse(e.canonical).data)).to.deep.include({ model: 'thermo-2', version: '2.0.0', principal: 'alice', reason: 'CVE in the bootloader', sequence: 20, manifestSha256: withdrawn.json.manifestSha256 });
  });
});
