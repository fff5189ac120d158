import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runCli, serveEnv, startServe } from './support/cli.ts';

/** The certificate the HTTPS listener presents, fetched trusting only `ca`. */
function presented(port: number, ca: string): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, path: '/healthz', ca, agent: false }, (res) => {
      const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, fingerprint }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('DEVID_TLS_CERT and DEVID_TLS_KEY: HTTPS with the operator\'s certificate', function () {
  this.timeout(180_000);
  let dir: string;
  let env: Record<string, string>;
  let httpsPort: number;
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'devid-test-tls-'));
    ({ env, httpsPort } = await serveEnv(join(dir, 'data')));
    const init = runCli(['init'], env);
    expect(init.status, init.stderr).to.equal(0);
    // An operator's own CA, a server certificate for localhost it signed, and a key of nothing.
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', file('op-ca-key.pem'), '-out', file('op-ca.pem'), '-subj', '/CN=Operator CA', '-days', '2',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    openssl('req', ...ec, '-keyout', file('server-key.pem'), '-out', file('server.csr'), '-subj', '/CN=localhost');
    writeFileSync(file('ext.cnf'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('op-ca.pem'), '-CAkey', file('op-ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', file('ext.cnf'), '-out', file('server.pem'));
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('other-key.pem'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serve presents the given certificate, which the operator\'s CA verifies', async () => {
    const serving = await startServe({ ...env, DEVID_TLS_CERT: file('server.pem'), DEVID_TLS_KEY: file('server-key.pem') });
    try {
      const answer = await presented(httpsPort, readFileSync(file('op-ca.pem'), 'utf8'));
      expect(answer.status).to.equal(200);
      expect(answer.fingerprint).to.equal(new X509Certificate(readFileSync(file('server.pem'))).fingerprint256);
    } finally {
      await serving.stop();
    }
  });

  it('one without the other, a missing file, a key of another certificate or no certificate at all: one line saying what to do', () => {
    const serve = (extra: Record<string, string>) => runCli(['serve'], { ...env, ...extra });
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ DEVID_TLS_CERT: file('server.pem') }, /DEVID_TLS_CERT is set without DEVID_TLS_KEY: give both/],
      [{ DEVID_TLS_CERT: file('nowhere.pem'), DEVID_TLS_KEY: file('server-key.pem') }, /DEVID_TLS_CERT=.*nowhere\.pem does not exist: give the PEM file/],
      [{ DEVID_TLS_CERT: file('server.pem'), DEVID_TLS_KEY: file('other-key.pem') }, /DEVID_TLS_KEY=.*other-key\.pem is not the key of DEVID_TLS_CERT=.*server\.pem \(CN=localhost\): give the key that certificate was issued for/],
      [{ DEVID_TLS_CERT: file('server-key.pem'), DEVID_TLS_KEY: file('server-key.pem') }, /DEVID_TLS_CERT=.*server-key\.pem holds no PEM certificate/],
    ];
    for (const [extra, pattern] of cases) {
      const result = serve(extra);
      expect(result.status, result.stderr).to.equal(1);
      expect(result.stderr, result.stderr).to.match(pattern);
      expect(result.stderr).not.to.match(/^\s+at /m);
      expect(result.stderr).not.to.contain('PRIVATE KEY');
    }
  });
});
