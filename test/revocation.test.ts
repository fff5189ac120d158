import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import { HsmError } from '../hsm/errors.ts';
import { opensslText } from './support/openssl.ts';
import { NON_DER_SERIALS, ocspRequestWithSerial } from './support/hostile.ts';
import { httpRequest, issuerHashes, opensslCrl, opensslOcsp, opensslOcspRequest, opensslOcspResponse, opensslVerifyWithCrl } from './support/publication.ts';
import { eventually } from './support/eventually.ts';

/** Waits for a condition the background jobs bring about (CRLs every 10 s). */
describe('revocation, CRLs and OCSP', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let ocspUrl: string;
  let pems: { root: string; factory: string; operational: string };

  before(async () => {
    server = await startTestServer('pglite');
    ocspUrl = `http://127.0.0.1:${server.running.httpPort}/ocsp`;
    const { hierarchy } = server.running;
    pems = { root: server.rootPem, factory: hierarchy.factory.certificate.toString('pem'), operational: hierarchy.operational.certificate.toString('pem') };
  });
  after(async () => server?.close());

  const crl = async (slug: string) => {
    const answer = await httpRequest(server.running.httpPort, 'GET', `/crl/${slug}.crl`);
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.equal('application/pkix-crl');
    return answer;
  };

  it('OpenSSL sees good, then revoked with its reason at once, for birth and operational certificates, SHA-1 and SHA-256 CertIDs', async () => {
    const device = await makeDevice(server, 'rv-0001');
    await device.enroll();
    const birth = device.birthCertificate().toString('pem');
    const operational = device.current()!.toString('pem');
    for (const [certPem, issuerPem] of [[birth, pems.factory], [operational, pems.operational]] as const) {
      for (const digest of ['sha1', 'sha256'] as const) {
        const good = await opensslOcsp({ issuerPem, rootPem: pems.root, url: ocspUrl, certPem, digest });
        expect(good.ok, good.output).to.equal(true);
        expect(good.output).to.match(/Response verify OK/).and.match(/cert\.pem: good/);
      }
    }
    const serial = device.current()!.serialNumber;
    const revoked = await server.request('POST', `/operator/v1/certificates/${serial}/revoke`, { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    expect(revoked.json.revokedNow).to.equal(true);
    for (const digest of ['sha1', 'sha256'] as const) {
      const answer = await opensslOcsp({ issuerPem: pems.operational, rootPem: pems.root, url: ocspUrl, certPem: operational, digest });
      expect(answer.output).to.match(/Response verify OK/).and.match(/cert\.pem: revoked/).and.match(/Reason: keyCompromise/);
    }
    // Twice is idempotent: the first reason and time stand.
    const again = await server.request('POST', `/operator/v1/certificates/${serial}/revoke`, { token: server.tokens.operator, body: { reason: 'superseded' } });
    expect(again.json.revokedNow).to.equal(false);
    expect(again.json.certificate.reason).to.equal('keyCompromise');
    expect(again.json.certificate.revokedAt).to.equal(revoked.json.certificate.revokedAt);

    const history = await server.request('GET', '/audit/v1/devices/rv-0001/history', { token: server.tokens.auditor });
    expect(history.json.events.filter((e: { action: string }) => e.action === 'certificate.revoked')).to.have.length(1);
  });

  it('a device revocation revokes its birth certificate too; the CRLs list both within 60 s and openssl verify -crl_check refuses them', async () => {
    const device = await makeDevice(server, 'rv-0002');
    await device.enroll();
    const birth = device.birthCertificate();
    const operational = device.current()!;
    const before = await crl('operational');
    const revoked = await server.request('POST', '/operator/v1/devices/rv-0002/revoke', { token: server.tokens.operator, body: { reason: 'cessationOfOperation' } });
    expect(revoked.status, revoked.text).to.equal(200);
    expect(revoked.json.revokedCertificates.map((c: { kind: string }) => c.kind).sort()).to.deep.equal(['birth', 'operational']);
    const birthOcsp = await opensslOcsp({ issuerPem: pems.factory, rootPem: pems.root, url: ocspUrl, certPem: birth.toString('pem') });
    expect(birthOcsp.output).to.match(/cert\.pem: revoked/).and.match(/Reason: cessationOfOperation/);

    const started = Date.now();
    const fresh = await eventually(async () => {
      const answer = await crl('operational');
      return answer.headers.etag !== before.headers.etag ? answer : undefined;
    }, 60_000);
    expect(Date.now() - started).to.be.below(60_000);
    expect(fresh.headers['cache-control']).to.match(/max-age=\d+/);
    expect(fresh.headers['last-modified']).to.be.a('string');
    const text = await opensslCrl(fresh.body, `${pems.operational}\n${pems.root}`);
    expect(text.ok, text.output).to.equal(true);
    expect(text.output).to.match(/verify OK/).and.include(operational.serialNumber.toUpperCase()).and.match(/Cessation Of Operation/);
    expect((await opensslVerifyWithCrl(pems.root, pems.operational, fresh.body, operational.toString('pem'))).output).to.match(/certificate revoked/);

    const factoryCrl = await eventually(async () => {
      const answer = await crl('factory');
      return (await opensslCrl(answer.body, `${pems.factory}\n${pems.root}`)).output.includes(birth.serialNumber.toUpperCase()) ? answer : undefined;
    }, 60_000);
    expect((await opensslVerifyWithCrl(pems.root, pems.factory, factoryCrl.body, birth.toString('pem'))).output).to.match(/certificate revoked/);
  });

  it('every CA has a CRL signed by it, v2 with AKI and CRL number; the root\'s is valid a year', async () => {
    for (const [slug, pem] of [['root', pems.root], ['factory', pems.factory], ['operational', pems.operational]] as const) {
      const answer = await crl(slug);
      const checked = await opensslCrl(answer.body, slug === 'root' ? pem : `${pem}\n${pems.root}`);
      expect(checked.ok, checked.output).to.equal(true);
      expect(checked.output).to.match(/verify OK/).and.match(/Version 2/).and.match(/X509v3 CRL Number/).and.match(/X509v3 Authority Key Identifier/);
      if (slug === 'root') {
        const [, last, next] = /Last Update: (.+)\n\s+Next Update: (.+)/.exec(checked.output)!;
        expect(Date.parse(next!) - Date.parse(last!)).to.equal(365 * 24 * 3600 * 1000);
      }
    }
  });

  it('the AIA and CDP of an issued certificate point at what answers', async () => {
    const device = await makeDevice(server, 'rv-0003');
    await device.enroll();
    const text = opensslText(device.current()!.toString('pem'));
    const cdp = /URI:(http:\/\/pki\.devid\.test(\/crl\/[a-z0-9-]+\.crl))/.exec(text)!;
    const ocsp = /OCSP - URI:(http:\/\/pki\.devid\.test(\/ocsp))/.exec(text)!;
    expect((await httpRequest(server.running.httpPort, 'GET', cdp[2]!)).status).to.equal(200);
    const request = await opensslOcspRequest(pems.operational, device.current()!.toString('pem'));
    const answer = await httpRequest(server.running.httpPort, 'POST', ocsp[2]!, { 'content-type': 'application/ocsp-request' }, request);
    expect((await opensslOcspResponse(answer.body, pems.operational, pems.root, device.current()!.toString('pem'))).output).to.match(/cert\.pem: good/);
  });

  it('GET /ocsp/<base64> answers with RFC 5019 caching headers; a serial we never issued is never good', async () => {
    const device = await makeDevice(server, 'rv-0004');
    await device.enroll();
    const certPem = device.current()!.toString('pem');
    for (const digest of ['sha1', 'sha256'] as const) {
      const request = await opensslOcspRequest(pems.operational, certPem, digest);
      const answer = await httpRequest(server.running.httpPort, 'GET', `/ocsp/${encodeURIComponent(request.toString('base64'))}`);
      expect(answer.status).to.equal(200);
      expect(answer.headers['content-type']).to.equal('application/ocsp-response');
      expect(answer.headers['cache-control']).to.match(/^public, max-age=\d+, no-transform, must-revalidate$/);
      expect(answer.headers.etag).to.match(/^"[0-9a-f]{40}"$/);
      expect(answer.headers['last-modified']).to.be.a('string');
      const text = (await opensslOcspResponse(answer.body, pems.operational, pems.root, certPem, digest)).output;
      expect(text, text).to.match(/Response verify OK/).and.match(/cert\.pem: good/);
    }
    // A nonce in the request is ignored: the pre-signed response answers it.
    const withNonce = await opensslOcspRequest(pems.operational, certPem, 'sha1', true);
    const nonced = await httpRequest(server.running.httpPort, 'POST', '/ocsp', { 'content-type': 'application/ocsp-request' }, withNonce);
    const noncedText = (await opensslOcspResponse(nonced.body, pems.operational, pems.root, certPem)).output;
    expect(noncedText, noncedText).to.match(/cert\.pem: good/);

    const stranger = await opensslOcsp({ issuerPem: pems.operational, rootPem: pems.root, url: ocspUrl, serial: randomBytes(16).toString('hex') });
    expect(stranger.output).to.match(/: unknown/).and.not.match(/: good/);
  });

  it('malformed OCSP requests get malformedRequest or a 4xx, never a 5xx, and the responder goes on', async () => {
    const certPem = (await (async () => {
      const device = await makeDevice(server, 'rv-0005');
      await device.enroll();
      return device.current()!.toString('pem');
    })());
    const good = await opensslOcspRequest(pems.operational, certPem);
    const malformed = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
    const post = (body: Buffer, type = 'application/ocsp-request') =>
      httpRequest(server.running.httpPort, 'POST', '/ocsp', { 'content-type': type }, body);
    for (let length = 0; length < good.length; length += 7) {
      const answer = await post(good.subarray(0, length));
      expect(answer.status).to.equal(200);
      expect(answer.body.equals(malformed), `truncated to ${length}`).to.equal(true);
    }
    let seed = 7;
    for (let i = 0; i < 200; i += 1) {
      const mutated = Buffer.from(good);
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      mutated[seed % mutated.length] ^= 1 << (seed % 8);
      const answer = await post(i % 2 ? mutated : randomBytes(1 + (seed % 300)));
      expect(answer.status).to.be.below(500);
    }
    const issuer = issuerHashes(pems.operational);
    for (const [name, serial] of NON_DER_SERIALS) {
      expect((await post(ocspRequestWithSerial(issuer.nameHash, issuer.keyHash, serial))).body.equals(malformed), `CertID serial: ${name}`).to.equal(true);
    }
    expect((await post(randomBytes(64 * 1024))).status).to.equal(413);
    expect((await post(good, 'application/json')).status).to.equal(415);
    expect((await httpRequest(server.running.httpPort, 'PUT', '/ocsp', {}, good)).status).to.equal(405);
    expect((await httpRequest(server.running.httpPort, 'GET', '/ocsp/%%%')).body.equals(malformed)).to.equal(true);
    expect((await httpRequest(server.running.httpPort, 'GET', `/ocsp/${'A'.repeat(5000)}`)).status).to.equal(414);
    const still = await opensslOcsp({ issuerPem: pems.operational, rootPem: pems.root, url: ocspUrl, certPem });
    expect(still.output).to.match(/cert\.pem: good/);
  });

  it('suspend stops enrollment and renewal, resume starts them again; both are in the history', async () => {
    const device = await makeDevice(server, 'rv-0006');
    await device.enroll();
    const suspend = await server.request('POST', '/operator/v1/devices/rv-0006/suspend', { token: server.tokens.operator, body: {} });
    expect(suspend.status, suspend.text).to.equal(200);
    expect(suspend.json.device.state).to.equal('suspended');
    let refused: unknown;
    await device.enroll().catch((err: unknown) => { refused = err; });
    expect(refused, 'renewal while suspended').to.be.an('error');
    expect((await server.request('POST', '/operator/v1/devices/rv-0006/suspend', { token: server.tokens.operator, body: {} })).status).to.equal(409);
    const resume = await server.request('POST', '/operator/v1/devices/rv-0006/resume', { token: server.tokens.operator, body: {} });
    expect(resume.json.device.state).to.equal('active');
    await device.enroll();
    const history = await server.request('GET', '/audit/v1/devices/rv-0006/history', { token: server.tokens.auditor });
    const actions = history.json.events.map((e: { action: string }) => e.action);
    expect(actions).to.include('device.suspended').and.include('device.resumed');
  });

  it('operator revocation refuses unknown reasons, certificateHold, odd serials and unknown certificates', async () => {
    const revoke = (path: string, body: unknown) => server.request('POST', path, { token: server.tokens.operator, body });
    expect((await revoke('/operator/v1/certificates/00ff/revoke', { reason: 'certificateHold' })).status).to.equal(400);
    expect((await revoke('/operator/v1/certificates/00ff/revoke', { reason: 'bogus' })).status).to.equal(400);
    expect((await revoke('/operator/v1/certificates/00ff/revoke', {})).status).to.equal(400);
    expect((await revoke('/operator/v1/certificates/00ff/revoke', { reason: 'keyCompromise', extra: 1 })).status).to.equal(400);
    expect((await revoke('/operator/v1/certificates/xyz/revoke', { reason: 'keyCompromise' })).status).to.equal(400);
    expect((await revoke('/operator/v1/certificates/0/revoke', { reason: 'keyCompromise' })).status).to.equal(400);
    expect((await revoke('/operator/v1/certificates/00ff/revoke', { reason: 'keyCompromise' })).status).to.equal(404);
    expect((await revoke('/operator/v1/devices/nobody/revoke', { reason: 'keyCompromise' })).status).to.equal(404);
    expect((await server.request('POST', '/operator/v1/certificates/00ff/revoke', { token: server.tokens.auditor, body: { reason: 'keyCompromise' } })).status).to.equal(403);
  });

  it('OCSP keeps answering from pre-signed responses while the HSM does not; readiness and the log say signing is down', async () => {
    const device = await makeDevice(server, 'rv-0007');
    await device.enroll();
    const certPem = device.current()!.toString('pem');
    const provider = server.env.ctx.provider;
    const { sign, ping } = provider;
    // SoftHSM cannot be unplugged: the failure a network HSM's timeout raises is injected where it surfaces.
    const down = async (): Promise<never> => { throw new HsmError('unavailable', 'the HSM does not answer (test)'); };
    provider.sign = down;
    provider.ping = down;
    try {
      const answer = await opensslOcsp({ issuerPem: pems.operational, rootPem: pems.root, url: ocspUrl, certPem });
      expect(answer.output).to.match(/Response verify OK/).and.match(/cert\.pem: good/);
      const ready = await httpRequest(server.running.httpPort, 'GET', '/readyz');
      expect(ready.status).to.equal(503);
      expect(JSON.parse(ready.body.toString()).signing).to.match(/^down/);
      // A revocation still commits; OCSP says tryLater for it, never the old good.
      const revoked = await server.request('POST', `/operator/v1/certificates/${device.current()!.serialNumber}/revoke`, { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
      expect(revoked.status, revoked.text).to.equal(200);
      const after = await opensslOcsp({ issuerPem: pems.operational, rootPem: pems.root, url: ocspUrl, certPem });
      expect(after.output).to.not.match(/cert\.pem: good/);
      expect(after.output).to.match(/trylater/i);
    } finally {
      provider.sign = sign;
      provider.ping = ping;
    }
    const back = await eventually(async () => {
      const answer = await opensslOcsp({ issuerPem: pems.operational, rootPem: pems.root, url: ocspUrl, certPem });
      return /cert\.pem: revoked/.test(answer.output) ? answer : undefined;
    });
    expect(back.output).to.match(/Reason: keyCompromise/);
  });
});
