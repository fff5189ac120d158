import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { crlShardOf } from '../ca/issuance.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import { opensslText } from './support/openssl.ts';
import { httpRequest, opensslCrl, opensslVerifyWithCrl } from './support/publication.ts';
import { eventually } from './support/eventually.ts';

describe('sharded CRLs: each certificate names its shard, each shard is a complete CRL for its slice with an issuingDistributionPoint (OpenSSL checks them)', function () {
  this.timeout(180_000);
  let server: TestServer;
  const pems: Record<string, string> = {};
  const get = (path: string) => httpRequest(server.running.httpPort, 'GET', path);
  const cdpOf = (pem: string) => /URI:http:\/\/pki\.devid\.test(\/crl\/[^\s]+)/.exec(opensslText(pem))?.[1];

  before(async () => {
    server = await startTestServer('pglite', { DEVID_CRL_SHARDS: 'operational=4,factory=3' });
    for (const slug of ['root', 'factory', 'operational']) pems[slug] = new X509Certificate((await get(`/ca/${slug}.crt`)).body).toString();
  });
  after(() => server?.close());

  it('a birth and an operational certificate name the shard of their serial; a revoked one is on its shard\'s CRL, not on the others nor on the whole CRL', async () => {
    const device = await makeDevice(server, 'SN-SHARD-1');
    await device.enroll();
    const birth = device.birthCertificate();
    const operational = device.current()!;
    const birthShard = crlShardOf(Buffer.from(birth.serialNumber, 'hex'), 3);
    const operationalShard = crlShardOf(Buffer.from(operational.serialNumber, 'hex'), 4);
    expect(cdpOf(birth.toString('pem'))).to.equal(`/crl/factory/${birthShard}.crl`);
    expect(cdpOf(operational.toString('pem'))).to.equal(`/crl/operational/${operationalShard}.crl`);

    const before = await get(`/crl/operational/${operationalShard}.crl`);
    expect(before.status).to.equal(200);
    const revoked = await server.request('POST', '/operator/v1/devices/SN-SHARD-1/revoke', { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);

    for (const [slug, shards, cert, shard] of [['operational', 4, operational, operationalShard], ['factory', 3, birth, birthShard]] as const) {
      const fresh = await eventually(async () => {
        const answer = await get(`/crl/${slug}/${shard}.crl`);
        return answer.status === 200 && (await opensslCrl(answer.body, `${pems[slug]}\n${pems.root}`)).output.includes(cert.serialNumber.toUpperCase()) ? answer : undefined;
      });
      const text = await opensslCrl(fresh.body, `${pems[slug]}\n${pems.root}`);
      expect(text.output).to.match(/verify OK/).and.match(/X509v3 Issuing Distribution Point: critical/).and.include(`URI:http://pki.devid.test/crl/${slug}/${shard}.crl`);
      expect((await opensslVerifyWithCrl(pems.root!, pems[slug]!, fresh.body, cert.toString('pem'))).output, `${slug} shard ${shard}`).to.match(/certificate revoked/);
      // Another shard's CRL is complete for another slice only: OpenSSL does not take it as the certificate's CRL.
      const other = await get(`/crl/${slug}/${(shard + 1) % shards}.crl`);
      expect(other.status).to.equal(200);
      expect((await opensslCrl(other.body, `${pems[slug]}\n${pems.root}`)).output).not.to.include(cert.serialNumber.toUpperCase());
      const elsewhere = await opensslVerifyWithCrl(pems.root!, pems[slug]!, other.body, cert.toString('pem'));
      expect(elsewhere.ok, elsewhere.output).to.equal(false);
      expect(elsewhere.output).not.to.match(/: OK/);
      // The whole CRL is scoped to the certificates issued without a shard.
      const whole = await opensslCrl((await get(`/crl/${slug}.crl`)).body, `${pems[slug]}\n${pems.root}`);
      expect(whole.output).to.include(`URI:http://pki.devid.test/crl/${slug}.crl`).and.not.include(cert.serialNumber.toUpperCase());
    }
  });

  it('unknown shards and slugs are 404, odd paths never 500', async () => {
    for (const path of ['/crl/operational/99.crl', '/crl/operational/4.crl', '/crl/nobody/0.crl', '/crl/operational/-1.crl', '/crl/operational/x.crl', '/crl/operational/00000.crl', '/crl/OPERATIONAL/0.crl', '/crl/operational/0.crl/x']) {
      expect((await get(path)).status, path).to.equal(404);
    }
  });
});
