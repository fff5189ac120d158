import { expect } from 'chai';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import { httpRequest, opensslCrl, opensslOcsp } from './support/publication.ts';
import type { Device } from '../client/device.ts';
import { BATCH_CHUNK } from '../registry/lifecycle/revocation-service.ts';

describe('batch revocation: a compromised factory batch (PostgreSQL)', function () {
  this.timeout(240_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let ocspUrl: string;
  const compromised: Device[] = [];
  let bystander: Device;

  before(async () => {
    server = await startTestServer('postgres');
    ocspUrl = `http://127.0.0.1:${server.running.httpPort}/ocsp`;
    for (let i = 0; i < 4; i += 1) {
      const device = await makeDevice(server, `bad-${i}`, 'thermo-2', 'batch-7');
      if (i < 3) await device.enroll(); // the fourth never enrolled: its birth certificate is revoked all the same
      compromised.push(device);
    }
    bystander = await makeDevice(server, 'good-1', 'thermo-2', 'batch-8');
    await bystander.enroll();
  });
  after(async () => server?.close());

  it('revokes every birth and derived operational certificate, quarantines the devices and refuses them from then on', async () => {
    expect(BATCH_CHUNK).to.be.above(1);
    const answer = await server.request('POST', '/operator/v1/batches/batch-7/revoke', { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
    expect(answer.status, answer.text).to.equal(200);
    expect(answer.json).to.deep.equal({ batch: 'batch-7', devices: 4, certificates: 7, finished: true });
    expect(answer.headers.location).to.equal('/operator/v1/batches/batch-7/revocation');
    expect((await server.request('GET', '/operator/v1/batches/batch-7/revocation', { token: server.tokens.operator })).json.finished).to.equal(true);

    const { hierarchy } = server.running;
    const factoryPem = hierarchy.factory.certificate.toString('pem');
    const operationalPem = hierarchy.operational.certificate.toString('pem');
    for (const device of compromised) {
      const birth = await opensslOcsp({ issuerPem: factoryPem, rootPem: server.rootPem, url: ocspUrl, certPem: device.birthCertificate().toString('pem') });
      expect(birth.output, device.serial).to.match(/cert\.pem: revoked/).and.match(/Reason: keyCompromise/);
      const current = device.current();
      if (current) {
        const operational = await opensslOcsp({ issuerPem: operationalPem, rootPem: server.rootPem, url: ocspUrl, certPem: current.toString('pem'), digest: 'sha256' });
        expect(operational.output, device.serial).to.match(/cert\.pem: revoked/);
        const window = await device.renewalWindow();
        expect(window!.end.getTime()).to.be.below(Date.now());
      }
      expect((await server.env.ctx.store.devices.get(device.serial)).state).to.equal('quarantined');
      let refused: unknown;
      await device.enroll().catch((err: unknown) => { refused = err; });
      expect(refused, `${device.serial} enrolled after the batch was revoked`).to.be.an('error');
    }
    const stillGood = await opensslOcsp({ issuerPem: operationalPem, rootPem: server.rootPem, url: ocspUrl, certPem: bystander.current()!.toString('pem') });
    expect(stillGood.output).to.match(/cert\.pem: good/);

    // The batch takes no new births.
    const birth = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'bad-9', model: 'thermo-2', batch: 'batch-7', csr: await compromised[0]!.factoryKey.csr() } });
    expect(birth.status).to.equal(409);

    // Both CRLs list them within a minute.
    const serials = compromised.flatMap((d) => [d.birthCertificate().serialNumber, d.current()?.serialNumber].filter(Boolean) as string[]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [factoryCrl, operationalCrl] = await Promise.all(['factory', 'operational'].map((slug) => httpRequest(server.running.httpPort, 'GET', `/crl/${slug}.crl`)));
      const text = (await opensslCrl(factoryCrl!.body, `${factoryPem}\n${server.rootPem}`)).output + (await opensslCrl(operationalCrl!.body, `${operationalPem}\n${server.rootPem}`)).output;
      if (serials.every((s) => text.includes(s.toUpperCase()))) break;
      expect(Date.now(), 'the CRLs did not list the batch within 60 s').to.be.below(deadline);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    // Audited: one event per certificate and per device, one for the batch; the chain holds.
    const events = await server.env.ctx.store.audit.page(0, 10_000);
    const actions = events.map((e) => e.action);
    expect(actions.filter((a) => a === 'batch.compromised')).to.have.length(1);
    expect(actions.filter((a) => a === 'batch.revoked')).to.have.length(1);
    expect(actions.filter((a) => a === 'device.quarantined')).to.have.length(4);
    expect(actions.filter((a) => a === 'certificate.revoked')).to.have.length(7);
    const verify = await server.request('GET', '/audit/v1/verify', { token: server.tokens.auditor });
    expect(verify.json.ok, verify.text).to.equal(true);

    // Again: nothing changes, the first reason stands.
    const again = await server.request('POST', '/operator/v1/batches/batch-7/revoke', { token: server.tokens.operator, body: { reason: 'unspecified' } });
    expect(again.json).to.deep.equal({ batch: 'batch-7', devices: 4, certificates: 7, finished: true });
  });
});
