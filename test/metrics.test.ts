import { expect } from 'chai';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import { httpRequest, opensslOcsp } from './support/publication.ts';
import { HsmError } from '../hsm/errors.ts';

/** Prometheus text format (0.0.4): comments, and `name{label="value",...} number` samples. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]Inf)$/.exec(line);
    if (!match) throw new Error(`not Prometheus text format: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}

describe('metrics and readiness (Prometheus text on the plain-HTTP listener)', function () {
  this.timeout(120_000);
  let server: TestServer;
  const scrape = async () => {
    const answer = await httpRequest(server.running.httpPort, 'GET', '/metrics');
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(answer.body.toString());
  };
  before(async () => {
    server = await startTestServer('pglite');
  });
  after(async () => server?.close());

  it('parses, and its counters move after an enrollment, an OCSP answer and a revocation; CRL ages and the audit chain are there', async () => {
    const before = await scrape();
    const device = await makeDevice(server, 'mx-0001');
    await device.enroll();
    const issuer = server.running.hierarchy.operational.certificate.toString('pem');
    await opensslOcsp({ issuerPem: issuer, rootPem: server.rootPem, url: `http://127.0.0.1:${server.running.httpPort}/ocsp`, certPem: device.current()!.toString('pem') });
    await server.request('POST', `/operator/v1/certificates/${device.current()!.serialNumber}/revoke`, { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
    const after = await scrape();
    const grew = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(grew('devid_certificates_issued_total{kind="operational"}')).to.equal(1);
    expect(grew('devid_certificates_issued_total{kind="birth"}')).to.equal(1);
    expect(grew('devid_audit_events_total{action="certificate.revoked"}')).to.equal(1);
    expect(grew('devid_ocsp_responses_total{status="successful"}')).to.be.at.least(1);
    // The first request of a certificate reads its response from the database (pre-signed at issuance by this process: in memory).
    expect(grew('devid_ocsp_cache_hits_total') + grew('devid_ocsp_cache_misses_total')).to.be.at.least(1);
    expect(after.get('devid_ocsp_cache_entries')).to.be.at.least(2);
    expect(grew('devid_hsm_sign_duration_seconds_count{result="ok"}')).to.be.at.least(3);
    expect(grew('devid_database_query_duration_seconds_count{result="ok"}')).to.be.above(10);
    expect(after.get('devid_http_request_duration_seconds_count{route="/acme/order/:id/finalize",method="POST",status="200"}')).to.equal(1);
    for (const ca of ['root', 'factory', 'operational']) expect(after.get(`devid_crl_age_seconds{ca="${ca}"}`)).to.be.a('number').and.at.least(0);
    expect(after.get('devid_audit_chain_length')).to.be.above(5);
    expect(after.get('devid_audit_checkpoint_age_seconds')).to.be.at.least(0);
    expect(after.get('devid_tlog_checkpoint_size')).to.be.a('number').and.at.least(0);
  });

  it('ACME refusals are counted by problem type', async () => {
    const before = (await scrape()).get('devid_acme_problems_total{type="malformed"}') ?? 0;
    await server.request('POST', '/acme/new-order', { raw: 'not a JWS', contentType: 'application/jose+json' });
    const after = (await scrape()).get('devid_acme_problems_total{type="malformed"}') ?? 0;
    expect(after - before).to.be.at.least(1);
  });

  it('/readyz turns 503 naming the HSM when the token does not answer, and back', async () => {
    const provider = server.env.ctx.provider;
    const ping = provider.ping;
    provider.ping = async () => { throw new HsmError('unavailable', 'the token does not answer (test)'); };
    try {
      const down = await httpRequest(server.running.httpPort, 'GET', '/readyz');
      expect(down.status).to.equal(503);
      expect(JSON.parse(down.body.toString())).to.include({ status: 'unavailable', database: 'ok', crls: 'ok' }).and.have.property('hsm').that.matches(/does not answer/);
    } finally {
      provider.ping = ping;
    }
    const up = await httpRequest(server.running.httpPort, 'GET', '/readyz');
    expect(up.status).to.equal(200);
  });

  it('DEVID_METRICS_LISTEN moves /metrics to a listener of its own', async () => {
    const separate = await startTestServer('pglite', { DEVID_METRICS_LISTEN: '127.0.0.1:0' });
    try {
      expect((await httpRequest(separate.running.httpPort, 'GET', '/metrics')).status).to.equal(404);
      const own = await httpRequest(separate.running.metricsPort!, 'GET', '/metrics');
      expect(own.status).to.equal(200);
      expect(parseMetrics(own.body.toString()).has('devid_audit_chain_length')).to.equal(true);
    } finally {
      await separate.close();
    }
  });
});
