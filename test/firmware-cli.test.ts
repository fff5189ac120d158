import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { runCli, serveEnv, startServe } from './support/cli.ts';

describe('cli: the firmware intermediate and signers on an existing installation', function () {
  this.timeout(180_000);
  let dataDir: string;
  let env: Record<string, string>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-firmware-cli-'));
    env = (await serveEnv(dataDir)).env;
    expect(runCli(['init'], env).status).to.equal(0);
    expect(runCli(['model', 'thermo-2', '--hw-type', '1.3.6.1.4.1.99999.5', '--manufacturer', 'Acme Devices'], env).status).to.equal(0);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('ca create firmware, then ca firmware-signer <model>; serve publishes the firmware intermediate and its CRL; the audit chain holds', async () => {
    expect(runCli(['ca', 'create', 'operational'], env).stderr).to.contain('only the firmware intermediate is created after init');
    const created = runCli(['ca', 'create', 'firmware'], env);
    expect(created.status, created.stderr).to.equal(0);
    expect(created.stderr).to.contain('new firmware CA').and.to.contain('key devid-firmware ');
    expect(created.stdout).to.contain('-----BEGIN CERTIFICATE-----');
    expect(runCli(['ca', 'create', 'firmware'], env).stderr).to.contain('exists already');
    const signer = runCli(['ca', 'firmware-signer', 'thermo-2'], env);
    expect(signer.status, signer.stderr).to.equal(0);
    expect(signer.stderr).to.contain('key devid-firmware-signer-thermo-2');
    expect(new x509.X509Certificate(signer.stdout).subject).to.contain('CN=thermo-2');
    expect(runCli(['ca', 'firmware-signer', 'no-such-model'], env).status).to.equal(1);

    const serving = await startServe(env);
    try {
      const get = (path: string) => fetch(`http://${env.DEVID_HTTP_LISTEN}${path}`);
      const published = new x509.X509Certificate(new Uint8Array(await (await get('/ca/firmware.crt')).arrayBuffer()));
      expect(published.subject).to.contain('CN=devid-ca Firmware CA');
      const crl = await get('/crl/firmware.crl');
      expect([crl.status, crl.headers.get('content-type')]).to.deep.equal([200, 'application/pkix-crl']);
    } finally {
      await serving.stop();
    }
    expect(runCli(['audit', 'verify'], env).status).to.equal(0);
  });

  it('firmware <model> makes legacy releases; firmware-cutoff <model> <until> ends them, audited; then the allowlist is gone', () => {
    const digest = 'ab'.repeat(32);
    const listed = runCli(['firmware', 'thermo-2', `0.9.0=${digest}`], env);
    expect(listed.status, listed.stderr).to.equal(0);
    expect(listed.stderr).to.contain('allows 0.9.0 (legacy releases)');
    expect(runCli(['firmware-cutoff', 'thermo-2', 'next week'], env).stderr).to.match(/^devid-ca: until must be an RFC 3339 date-time/);
    const ahead = runCli(['firmware-cutoff', 'thermo-2', '2099-01-01T00:00:00Z'], env);
    expect(ahead.status, ahead.stderr).to.equal(0);
    expect(JSON.parse(ahead.stdout)).to.deep.equal({ model: 'thermo-2', until: '2099-01-01T00:00:00.000Z' });
    expect(runCli(['firmware-cutoff', 'thermo-2', '2020-01-01T00:00:00Z'], env).status).to.equal(0);
    const gone = runCli(['firmware', 'thermo-2', `0.9.1=${digest}`], env);
    expect(gone.status).to.equal(1);
    expect(gone.stderr).to.match(/^devid-ca: model thermo-2's firmware allowlist ended at its legacy cut-off, 2020-01-01T00:00:00.000Z/);
    expect(runCli(['firmware-cutoff', 'thermo-2', '2099-01-01T00:00:00Z'], env).stderr).to.match(/it is final/);
    expect(runCli(['audit', 'verify'], env).status).to.equal(0);
  });
});
