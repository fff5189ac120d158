import { expect } from 'chai';
import { certIdOf } from '../client/device.ts';
import { makeDevice } from './support/acme-device.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';

/** A renewal whose answer never reached the device (issue 12: a server killed after the commit). */
describe('device: a renewal answer lost on the way', function () {
  this.timeout(120_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  before(async () => {
    server = await startTestServer('pglite');
  });
  after(() => server.close());

  it('the next renewal finds the lost successor among its orders and renews it, so the lineage goes on through it', async () => {
    const device = await makeDevice(server, 'LOST-1');
    const first = await device.enroll();
    // The CA issues a successor; the device keeps none of it, as when the answer is lost.
    const lost = await device.enroll({ keepFiles: true });
    expect(certIdOf(device.current()!)).to.equal(certIdOf(first.certificate));
    expect((await device.lostSuccessor())?.serialNumber).to.equal(lost.certificate.serialNumber);
    const next = await device.enroll();
    const history = (await server.request('GET', '/audit/v1/devices/LOST-1/history', { token: server.tokens.auditor })).json;
    const bySerial = new Map((history.certificates as Array<{ serial: string; sha256: string; predecessorSha256: string | null }>).map((c) => [c.serial, c]));
    const nextRow = bySerial.get(next.certificate.serialNumber.toLowerCase())!;
    const lostRow = bySerial.get(lost.certificate.serialNumber.toLowerCase())!;
    expect(nextRow.predecessorSha256).to.equal(lostRow.sha256);
    expect(history.lineage.forks).to.deep.equal([]);
    expect(certIdOf(device.current()!)).to.equal(certIdOf(next.certificate));
  });

  it('a renewal cut after its attestation is finished with the key the device kept, not left to block renewals until its order expires', async () => {
    const device = await makeDevice(server, 'LOST-2');
    const first = await device.enroll();
    const cut = await device.enroll({ beforeFinalize: async () => { throw new Error('connection lost'); } }).catch((err: Error) => err);
    expect(String(cut)).to.include('connection lost');
    const next = await device.enroll();
    expect(next.certificate.serialNumber).to.not.equal(first.certificate.serialNumber);
    // The certificate is for the key attested in the cut renewal, and the device has that key.
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const { readFileSync, existsSync } = await import('node:fs');
    const keyDer = createPublicKey(createPrivateKey(readFileSync(device.path('key'), 'utf8'))).export({ format: 'der', type: 'spki' });
    expect(Buffer.from(next.certificate.publicKey.rawData).equals(keyDer)).to.equal(true);
    expect(existsSync(device.path('pendingKey'))).to.equal(false);
    const history = (await server.request('GET', '/audit/v1/devices/LOST-2/history', { token: server.tokens.auditor })).json;
    expect(history.certificates.filter((c: { kind: string }) => c.kind === 'operational')).to.have.length(2);
    expect(history.lineage.forks).to.deep.equal([]);
  });
});
