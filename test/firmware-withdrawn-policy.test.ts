import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { createToken } from '../server/tokens.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, refused } from './support/acme-device.ts';

const RELEASES = '/operator/v1/models/thermo-2/firmware-releases';
const image = (n: number) => createHash('sha256').update(`thermo-2 policy image ${n}`).digest();
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse' };

describe('onWithdrawnFirmware: a device class refuses or suspends a device that attests on a withdrawn release', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let bob: string;

  before(async () => {
    server = await startTestServer('pglite');
    await createFirmwareCa(server.env.ctx, 'cli');
    await createModelFirmwareSigner(server.env.ctx, 'thermo-2', 'cli');
    bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
    const proposed = await server.request('POST', RELEASES, { token: server.tokens.operator, body: { version: '3.0.0', digest: image(30).toString('hex'), size: 1000, sequence: 30 } });
    expect((await server.request('POST', `${RELEASES}/3.0.0/approve`, { token: bob, body: { proposal: proposed.json.proposal } })).status).to.equal(200);
  });
  after(() => server?.close());

  const putClass = (name: string, extra: Record<string, unknown>) => server.request('PUT', `/operator/v1/device-classes/${name}`, { token: server.tokens.operator, body: { ...CLASS, ...extra } });
  const stateOf = async (serial: string) => (await server.env.ctx.store.devices.get(serial)).state;

  it('the class field: "refuse" when absent, "suspend" kept, anything else 400', async () => {
    expect((await putClass('fw-default', {})).json.onWithdrawnFirmware).to.equal('refuse');
    const suspend = await putClass('fw-suspend', { onWithdrawnFirmware: 'suspend' });
    expect(suspend.status, suspend.text).to.equal(201);
    expect(suspend.json.onWithdrawnFirmware).to.equal('suspend');
    expect((await server.request('GET', '/operator/v1/device-classes/fw-suspend', { token: server.tokens.operator })).json.onWithdrawnFirmware).to.equal('suspend');
    for (const bad of ['quarantine', true, null, 'Suspend']) {
      const answer = await putClass('fw-bad', { onWithdrawnFirmware: bad });
      expect(answer.status, String(bad)).to.equal(400);
      expect(answer.json.detail).to.match(/onWithdrawnFirmware/);
    }
  });

  it('suspend: a forged attestation changes nothing; the signed one is refused naming check 5, and suspends the device, audited and in its history', async () => {
    const device = await makeDevice(server, 'SN-FWP1');
    expect((await server.request('PUT', '/operator/v1/devices/SN-FWP1/class', { token: server.tokens.operator, body: { class: 'fw-suspend' } })).status).to.equal(200);
    await device.enroll({ firmware: { version: '3.0.0', digest: image(30) } });
    const withdrawn = await server.request('POST', `${RELEASES}/3.0.0/withdraw`, { token: server.tokens.operator, body: { reason: 'bricks the radio' } });
    expect(withdrawn.status, withdrawn.text).to.equal(200);
    // Anyone can send the device's public certificate and claim it runs the withdrawn release: without the device's signature, no state changes.
    await refused(device, { firmware: { version: '3.0.0', digest: image(30) }, attestation: { signature: (sig) => Buffer.from(sig.map((b, i) => (i === sig.length - 1 ? b ^ 1 : b))) } }, 'badAttestationStatement', /check 3/);
    expect(await stateOf('SN-FWP1')).to.equal('active');
    await refused(device, { firmware: { version: '3.0.0', digest: image(30) } }, 'badAttestationStatement', /check 5 \(firmware\).*withdrawn/);
    expect(await stateOf('SN-FWP1')).to.equal('suspended');
    // Suspended: even an approved release enrolls no more until an operator resumes it.
    await refused(device, { firmware: { version: '3.0.0', digest: image(30) } }, 'rejectedIdentifier', /suspended/);
    const history = await server.request('GET', '/audit/v1/devices/SN-FWP1/history', { token: server.tokens.auditor });
    const suspended = (history.json.events as Array<{ action: string; actor: string; data: Record<string, unknown> }>).filter((e) => e.action === 'device.suspended');
    expect(suspended).to.have.length(1);
    expect(suspended[0]!.actor).to.equal('system');
    expect(suspended[0]!.data).to.include({ reason: 'withdrawn firmware', class: 'fw-suspend', from: 'active' });
    expect(suspended[0]!.data.firmware).to.deep.equal({ version: '3.0.0', digest: image(30).toString('hex') });
    expect(history.json.device.state).to.equal('suspended');
    expect((await server.request('POST', '/operator/v1/devices/SN-FWP1/resume', { token: server.tokens.operator, body: {} })).status).to.equal(200);
  });

  it('refuse (the default): refused naming check 5, the device stays active', async () => {
    const proposed = await server.request('POST', RELEASES, { token: server.tokens.operator, body: { version: '3.1.0', digest: image(31).toString('hex'), size: 1000, sequence: 31 } });
    expect((await server.request('POST', `${RELEASES}/3.1.0/approve`, { token: bob, body: { proposal: proposed.json.proposal } })).status).to.equal(200);
    const device = await makeDevice(server, 'SN-FWP2');
    expect((await server.request('PUT', '/operator/v1/devices/SN-FWP2/class', { token: server.tokens.operator, body: { class: 'fw-default' } })).status).to.equal(200);
    await device.enroll({ firmware: { version: '3.1.0', digest: image(31) } });
    expect((await server.request('POST', `${RELEASES}/3.1.0/withdraw`, { token: server.tokens.operator, body: { reason: 'regression' } })).status).to.equal(200);
    await refused(device, { firmware: { version: '3.1.0', digest: image(31) } }, 'badAttestationStatement', /check 5 \(firmware\).*withdrawn/);
    expect(await stateOf('SN-FWP2')).to.equal('active');
  });
});
