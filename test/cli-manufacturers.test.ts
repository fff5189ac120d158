import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { sign as nodeSign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import canonicalize from 'canonicalize';
import { runCli, serveEnv, startServe, type ServeProcess } from './support/cli.ts';
import { httpsRequest } from './support/https.ts';
import { outsideCa, serveCrl, type CrlServer, type OutsideCa } from './support/outside-ca.ts';
import { rootPemOf } from './support/publication.ts';

const DEVICE = fileURLToPath(new URL('../bin/devid-device', import.meta.url));
const HW_TYPE = '1.3.6.1.4.1.99999.8.1';

/**
 * Issue 13 from the command line, as an operator at the CA host would do
 * it while `serve` runs: a manufacturer proposed in the CLI and approved by
 * a second person over the API, a signed CSV manifest, a CRL file, the
 * reference device enrolling with the manufacturer's birth certificate,
 * a withdrawal, and an ownership chain exported and checked offline.
 */
describe('cli: manufacturers, manifests, claims and ownership statements while serving', function () {
  this.timeout(300_000);
  let dir: string;
  let env: Record<string, string>;
  let serve: ServeProcess;
  let rootPem: string;
  let httpsPort: number;
  let oem: OutsideCa;
  let crl: CrlServer;
  const cli = (...args: string[]) => {
    const result = runCli(args, env);
    expect(result.status, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
    return result;
  };
  const device = (args: string[]) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const child = spawn(DEVICE, args, { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp' } });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (status) => resolve({ status, stderr }));
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'devid-test-cli-oem-'));
    ({ env, httpsPort } = await serveEnv(join(dir, 'ca'), { DEVID_PUBLIC_HOST: 'localhost' }));
    const ports = await serveEnv(join(dir, 'ca'));
    env.DEVID_HTTP_LISTEN = ports.env.DEVID_HTTP_LISTEN!;
    serve = await startServe(env, ['--init-if-empty']);
    rootPem = await rootPemOf(ports.httpPort);
    writeFileSync(join(dir, 'root.pem'), rootPem);
    oem = outsideCa('vandelay', join(dir, 'vandelay'));
    crl = await serveCrl(oem);
  });
  after(async () => {
    await crl?.close();
    await serve?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('propose in the CLI, approve over the API, claim from a signed CSV manifest, enroll the reference device, withdraw, export ownership', async () => {
    const bob = JSON.parse(cli('token', 'create', '--role', 'operator', '--name', 'bob', '--json').stdout).token as string;
    cli('model', 'latex-1', '--hw-type', HW_TYPE, '--manufacturer', 'Vandelay Industries');
    writeFileSync(join(dir, 'vandelay.pem'), `${oem.rootPem}${oem.intermediatePem}`);
    expect(cli('manufacturer', 'propose', 'vandelay', '--certs', join(dir, 'vandelay.pem'), '--models', 'latex-1', '--crl-url', crl.url).stderr).to.match(/pending/);
    // "show" gives the change field by field and its hash; an approval must name the hash, and its help says where it is.
    const shown = cli('manufacturer', 'show', 'vandelay', '--json').stdout;
    expect(shown.endsWith('}\n'), 'a --json output ends with a newline').to.equal(true);
    const { pending } = JSON.parse(shown);
    // Without --json, a summary for a person: no PEM, the pending change and the hash to approve it by.
    const summary = cli('manufacturer', 'show', 'vandelay').stdout;
    expect(summary).not.to.contain('BEGIN CERTIFICATE');
    expect(summary).to.match(/^manufacturer vandelay\n  status   pending\n/);
    expect(summary).to.contain(`pending change ${pending.sha256}`).and.to.contain('+ model latex-1').and.to.contain(`--proposal ${pending.sha256}`);
    expect(summary).to.match(/\+ certificate .*CN=.*sha256 [0-9a-f]{64}/);
    expect(pending.diff.certificates.added).to.have.length(2);
    expect(pending.diff.models.added).to.deep.equal(['latex-1']);
    expect(pending.diff.crl).to.deep.equal({ before: null, after: { url: crl.url }, changed: true });
    const unnamed = runCli(['manufacturer', 'approve', 'vandelay'], env);
    expect(unnamed.status).to.equal(1);
    expect(unnamed.stderr).to.match(/--proposal/);
    expect(cli('manufacturer', 'approve', '--help').stdout).to.match(/--proposal <sha256>/).and.to.match(/manufacturer show <id>/);
    const wrong = runCli(['manufacturer', 'approve', 'vandelay', '--proposal', 'not-a-hash'], env);
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.match(/^devid-ca: proposal is the SHA-256 .*manufacturer show/);
    // The proposer cannot approve; a second person (bob's token) does, naming the change over the API too.
    const self = runCli(['manufacturer', 'approve', 'vandelay', '--proposal', pending.sha256], env);
    expect(self.status).to.equal(1);
    expect(self.stderr).to.match(/^devid-ca: .*another operator/);
    const approveAsBob = (body: string) => httpsRequest(httpsPort, rootPem, 'POST', '/operator/v1/manufacturers/vandelay/approve', { authorization: `Bearer ${bob}`, 'content-type': 'application/json' }, body, 'localhost');
    const unnamedOverApi = await approveAsBob('{}');
    expect(unnamedOverApi.status).to.equal(400);
    expect(unnamedOverApi.json.detail).to.match(/^proposal is required/);
    const approved = await approveAsBob(JSON.stringify({ proposal: pending.sha256 }));
    expect(approved.status, approved.text).to.equal(200);
    const listed = cli('manufacturer', 'list').stdout;
    expect(listed).to.match(/^vandelay\tactive\tmodels latex-1\tCRL /m);
    expect(listed.split('\n')[0], 'our own factory is listed first').to.match(/^self\tactive \(built in\)/);
    const active = cli('manufacturer', 'show', 'vandelay').stdout;
    expect(active).to.match(/status   active \(approved by /).and.to.match(/anchors\n    .*CN=.*\n      sha256 [0-9a-f]{64}\n      valid  \S+ \.\. \S+\n/);
    expect(active).to.match(/CRL      http:\/\/.*: CRL number/).and.to.contain('models   latex-1');
    const ours = cli('manufacturer', 'show', 'self').stdout;
    expect(ours).to.contain('manufacturer self').and.to.contain('CN=devid-ca Root CA');
    expect(JSON.parse(cli('manufacturer', 'show', 'self', '--json').stdout).certificates).to.have.length(2);

    const births = [oem.birth({ serial: 'vdl-0001', hwType: HW_TYPE }), oem.birth({ serial: 'vdl-0002' })];
    const devices = births.map((b) => ({ serial: b.serial, model: 'latex-1', birthCertificateSha256: b.sha256, batch: 'lot-1' }));
    writeFileSync(join(dir, 'manifest.csv'), `serial,model,birthCertificateSha256,batch\n${devices.map((d) => `${d.serial},${d.model},${d.birthCertificateSha256},${d.batch}`).join('\n')}\n`);
    const signer = oem.signer();
    writeFileSync(join(dir, 'signer.pem'), signer.certPem);
    writeFileSync(join(dir, 'manifest.sig'), nodeSign('sha256', Buffer.from(canonicalize(devices)!, 'utf8'), signer.keyPem));
    writeFileSync(join(dir, 'bad.sig'), nodeSign('sha256', Buffer.from('something else'), signer.keyPem));
    const refused = runCli(['manufacturer', 'manifest', 'vandelay', '--file', join(dir, 'manifest.csv'), '--signature', join(dir, 'bad.sig'), '--signer', join(dir, 'signer.pem')], env);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(/signature does not verify/);
    expect(cli('manufacturer', 'manifest', 'vandelay', '--file', join(dir, 'manifest.csv'), '--signature', join(dir, 'manifest.sig'), '--signer', join(dir, 'signer.pem')).stderr).to.match(/2 device\(s\) of vandelay claimed/);

    // One device by serial (an Android or Apple device): said so, never by a forgotten flag.
    const forgotten = runCli(['manufacturer', 'claim', 'vandelay', 'vdl-0009', '--model', 'latex-1'], env);
    expect(forgotten.status).to.equal(1);
    expect(forgotten.stderr).to.match(/exactly one of --birth-sha256, --birth-cert or --by-serial/);
    expect(cli('manufacturer', 'claim', 'vandelay', 'vdl-0009', '--model', 'latex-1', '--by-serial').stderr).to.match(/device vdl-0009 of vandelay claimed \(by serial\)/);

    // The reference device with the manufacturer's factory key and birth chain.
    const state = join(dir, 'vdl-0001');
    writeFileSync(join(dir, 'vdl-0001-key.pem'), births[0]!.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'vdl-0001-birth.pem'), births[0]!.chainPem);
    const acme = `https://localhost:${httpsPort}/acme/directory`;
    const init = await device(['--dir', state, 'init', '--serial', 'vdl-0001', '--ca', join(dir, 'root.pem'), '--acme', acme, '--factory-key', join(dir, 'vdl-0001-key.pem'), '--birth', join(dir, 'vdl-0001-birth.pem')]);
    expect(init.status, init.stderr).to.equal(0);
    for (const step of [['enroll'], ['renew', '--now']]) {
      const ran = await device(['--dir', state, ...step]);
      expect(ran.status, ran.stderr).to.equal(0);
    }
    const history = cli('device', 'history', 'vdl-0001').stdout;
    expect(history).to.match(/manufacturer vandelay/).and.to.match(/device\.claimed/).and.to.match(/device\.renewed/);

    // A CRL file uploaded (air-gapped sites) revoking the second device's birth certificate, then the whole manufacturer withdrawn.
    oem.revoke(births[1]!);
    writeFileSync(join(dir, 'vandelay.crl'), oem.crlPem());
    expect(cli('manufacturer', 'crl', 'vandelay', '--file', join(dir, 'vandelay.crl')).stderr).to.match(/CRL applied: 1 entries/);
    expect(cli('manufacturer', 'withdraw', 'vandelay', '--reason', 'keyCompromise').stderr).to.match(/withdrawn: 3 devices quarantined/);
    const quarantined = await httpsRequest(httpsPort, rootPem, 'GET', '/audit/v1/devices/vdl-0001/history', { authorization: `Bearer ${bob}` }, undefined, 'localhost');
    expect(quarantined.json.device.state).to.equal('quarantined');
    const after = await device(['--dir', state, 'renew', '--now']);
    expect(after.status).to.equal(1);
    expect(after.stderr).to.match(/quarantined/);

    // The quarantined device handed to another company: the chain is written and checks offline against our root.
    cli('ownership', 'export', 'vdl-0002', '--to', 'kramerica', '--evidence', 'invoice 7', '--out', join(dir, 'chain.json'));
    const verified = cli('ownership', 'verify', '--file', join(dir, 'chain.json'), '--trust', join(dir, 'root.pem'));
    expect(verified.stdout).to.match(/^OK: device vdl-0002, .* kramerica \(1 statement\(s\)\)/);
    const chain = JSON.parse(readFileSync(join(dir, 'chain.json'), 'utf8'));
    chain.statements[0].to = 'newman';
    writeFileSync(join(dir, 'forged.json'), JSON.stringify(chain));
    const forged = runCli(['ownership', 'verify', '--file', join(dir, 'forged.json'), '--trust', join(dir, 'root.pem')], env);
    expect(forged.status).to.equal(1);
    expect(forged.stderr).to.match(/signature does not verify/);
  });
});
