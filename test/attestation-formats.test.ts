import { expect } from 'chai';
import type { Device } from '../client/device.ts';
import { ATTESTATION_FORMATS } from '../pki/attestation/formats.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, refused } from './support/acme-device.ts';
import { TEST_FMT, TEST_FORMAT, buildTestAttestation } from './support/test-format.ts';

describe('attestation formats as plug-ins: a format registered from a test enrolls through ACME for a class that names it, and only for one', function () {
  this.timeout(180_000);
  let server: TestServer;
  let unregister: () => void;
  let serial = 0;
  const next = () => `SN-F${++serial}`;
  const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse' };

  before(async () => {
    unregister = ATTESTATION_FORMATS.register(TEST_FORMAT);
    server = await startTestServer('pglite');
  });
  after(async () => {
    await server?.close();
    unregister?.();
  });

  async function inClass(device: Device, name: string): Promise<void> {
    const assigned = await server.request('PUT', `/operator/v1/devices/${device.serial}/class`, { token: server.tokens.operator, body: { class: name } });
    expect(assigned.status, assigned.text).to.equal(200);
  }


  it('the operator API takes a class naming the format, and shows it; a format the CA does not verify is refused', async () => {
    const put = await server.request('PUT', '/operator/v1/device-classes/tested', { token: server.tokens.operator, body: { ...CLASS, attestationFormats: [TEST_FMT] } });
    expect(put.status, put.text).to.equal(201);
    expect(put.json.attestationFormats).to.deep.equal([TEST_FMT]);
    const unknown = await server.request('PUT', '/operator/v1/device-classes/other', { token: server.tokens.operator, body: { ...CLASS, attestationFormats: ['packed'] } });
    expect(unknown.status).to.equal(400);
    expect(unknown.json.detail).to.match(/"packed" is not an attestation format this CA verifies/);
    const defaulted = await server.request('PUT', '/operator/v1/device-classes/plain', { token: server.tokens.operator, body: CLASS });
    expect(defaulted.json.attestationFormats).to.deep.equal(['devid']);
  });

  it('a device of a class that names the format enrolls and renews with it; with devid, which its class does not name, it is refused', async () => {
    const device = await makeDevice(server, next());
    await inClass(device, 'tested');
    const enrolled = await device.enroll({ buildAttestation: buildTestAttestation });
    expect(enrolled.certificate.subject).to.equal(`CN=${device.serial}`);
    const history = await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor });
    const attested = history.json.events.find((e: { action: string }) => e.action === 'device.attested');
    expect(attested.data.fmt).to.equal(TEST_FMT);
    expect((await device.enroll({ buildAttestation: buildTestAttestation })).certificate.subject).to.equal(`CN=${device.serial}`);
    await refused(device, {}, 'badAttestationStatement', new RegExp(`^format: device class tested accepts attestation formats ${TEST_FMT}, not devid`));
  });

  it('a device of a class that does not name the format is refused, naming the formats its class accepts; its check 3 is the format\'s own', async () => {
    const device = await makeDevice(server, next());
    await refused(device, { buildAttestation: buildTestAttestation }, 'badAttestationStatement', new RegExp(`^format: device class default accepts attestation formats devid, not ${TEST_FMT}`));
    const tested = await makeDevice(server, next());
    await inClass(tested, 'tested');
    await refused(tested, { buildAttestation: (input) => buildTestAttestation({ ...input, keyAuthorization: 'another' }) }, 'badAttestationStatement', /check 3 \(sig\)/);
    expect((await tested.enroll({ buildAttestation: buildTestAttestation })).certificate.subject).to.equal(`CN=${tested.serial}`);
  });

  it('a fmt no plug-in verifies is malformed (400): the challenge stays pending', async () => {
    unregister();
    try {
      const device = await makeDevice(server, next());
      await refused(device, { buildAttestation: buildTestAttestation }, 'malformed', new RegExp(`fmt "${TEST_FMT}" is not a format this CA verifies`));
    } finally {
      unregister = ATTESTATION_FORMATS.register(TEST_FORMAT);
    }
  });
});
