import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import { opensslVerify } from './support/openssl.ts';

describe('ACME enrollment with device-attest-01 (SPEC section 5)', function () {
  this.timeout(120_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer('pglite');
  });
  after(() => server.close());

  it('enrolls, then renews twice with replaces; every predecessor is the SHA-256 of the certificate before', async () => {
    const device = await makeDevice(server, 'SN-ACME-1');
    const first = await device.enroll();
    const second = await device.enroll();
    const third = await device.enroll();
    const sha = (c: x509.X509Certificate) => createHash('sha256').update(Buffer.from(c.rawData)).digest('hex');
    const { store } = server.env.ctx;
    const records = await Promise.all([first, second, third].map((r) => store.certificates.find(r.certificate.serialNumber)));
    expect(records[0]!.predecessorSha256).to.equal(sha(device.birthCertificate()));
    expect(records[1]!.predecessorSha256).to.equal(sha(first.certificate));
    expect(records[2]!.predecessorSha256).to.equal(sha(second.certificate));
    for (const result of [first, second, third]) {
      const [, intermediate] = result.chainPem.split(/(?<=-----END CERTIFICATE-----)\s*/);
      const check = opensslVerify(server.rootPem, intermediate, result.certificate.toString('pem'), 'sslclient');
      expect(check.ok, check.output).to.equal(true);
    }
    expect(second.order.replaces).to.be.a('string');
    const history = await server.request('GET', '/audit/v1/devices/SN-ACME-1/history', { token: server.tokens.auditor });
    expect(history.json.device.state).to.equal('active');
    expect(history.json.events.map((e: { action: string }) => e.action)).to.include.members(['device.enrolled', 'device.renewed', 'device.attested']);
  });
});
