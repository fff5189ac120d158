import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serveEnv, startServe, type ServeProcess } from './support/cli.ts';
import { makeDeviceKey } from './support/device.ts';
import { httpsRequest } from './support/https.ts';
import { httpRequest, rootPemOf } from './support/publication.ts';

/**
 * Issue: the CLI while `serve` runs on the embedded PGlite database. Each
 * command goes through the admin socket, and its effect is read back through
 * the HTTP API, as a second operator would see it.
 */
describe('cli against a running server (PGlite: every command through the admin socket)', function () {
  this.timeout(300_000);
  let dataDir: string;
  let env: Record<string, string>;
  let serve: ServeProcess;
  let rootPem: string;
  let httpsPort: number;
  let httpPort: number;
  const cli = (...args: string[]) => {
    const result = runCli(args, env);
    expect(result.status, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
    return result.stdout;
  };
  const api = (method: string, path: string, token: string, body?: unknown) =>
    httpsRequest(httpsPort, rootPem, method, path, { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body === undefined ? undefined : JSON.stringify(body));

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devid-test-cli-live-'));
    ({ env, httpsPort, httpPort } = await serveEnv(dataDir, { DEVID_PUBLIC_HOST: 'ca.devid.test' }));
    serve = await startServe(env, ['--init-if-empty']);
    rootPem = await rootPemOf(httpPort);
  });
  after(async () => {
    await serve?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the admin socket is the CA user\'s alone: 0600 in a 0700 directory, and another uid cannot connect', function () {
    const socket = join(dataDir, 'admin.sock');
    expect(statSync(socket).mode & 0o777).to.equal(0o600);
    expect(statSync(dataDir).mode & 0o777).to.equal(0o700);
    if (process.getuid?.() !== 0) this.skip(); // switching to another uid needs root; the modes above are the guarantee
    const probe = `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
    const nobody = spawnSync(process.execPath, ['-e', probe], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000 });
    expect(nobody.error, String(nobody.error)).to.equal(undefined);
    expect(nobody.stdout.trim()).to.equal('EACCES');
    // The same probe as the CA's own user connects: the refusal above is the other uid's, not a broken socket.
    expect(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).stdout.trim()).to.equal('CONNECTED');
  });

  it('tokens, models, births, classes, firmware, transfers, revocations, CRLs, reports, history and the audit log, all while serving', async () => {
    const operator = JSON.parse(cli('token', 'create', '--role', 'operator', '--name', 'live-op', '--json')).token as string;
    const auditor = JSON.parse(cli('token', 'create', '--role', 'auditor', '--name', 'live-aud', '--json')).token as string;
    const factory = JSON.parse(cli('token', 'create', '--role', 'factory', '--line', 'l1', '--json')).token as string;
    const spare = JSON.parse(cli('token', 'create', '--role', 'operator', '--json'));
    expect(cli('token', 'list')).to.include('live-op').and.include(spare.id);

    expect(JSON.parse(cli('model', 'm1', '--hw-type', '1.3.6.1.4.1.99999.5', '--manufacturer', 'Live Devices')).name).to.equal('m1');
    const births: Record<string, string> = {};
    for (const [serial, batch] of [['live-1', 'lb1'], ['live-2', 'lb1'], ['live-3', 'lb2'], ['live-4', 'lb2']] as const) {
      const born = await api('POST', '/factory/v1/birth-certificates', factory, { serial, model: 'm1', batch, csr: (await makeDeviceKey()).csrPem });
      expect(born.status, born.text).to.equal(201);
      births[serial] = born.json.certificateSerial;
    }

    cli('device-class', 'short', '--ttl', '2h', '--factory-reattest-every', '30d');
    expect((await api('GET', '/operator/v1/device-classes/short', operator)).json.ttl).to.equal('2h');
    cli('device', 'class', 'live-1', 'short');
    const digest = 'ab'.repeat(32);
    cli('firmware', 'm1', `1.0.0=${digest}`);
    expect((await api('GET', '/operator/v1/models/m1/firmware', operator)).json.allowed).to.deep.equal([{ version: '1.0.0', digest }]);
    cli('device', 'transfer', 'live-1', '--to', 'acme', '--evidence', 'PO 1');
    expect((await api('GET', '/operator/v1/devices?owner=acme', operator)).json.devices.map((d: { serial: string }) => d.serial)).to.deep.equal(['live-1']);
    const suspend = runCli(['device', 'suspend', 'live-2'], env);
    expect([suspend.status, suspend.stderr.trim().split('\n').length]).to.deep.equal([1, 1]);

    cli('revoke', 'certificate', births['live-3']!, '--reason', 'keyCompromise');
    cli('revoke', 'device', 'live-2', '--reason', 'superseded');
    cli('revoke', 'batch', 'lb2', '--reason', 'keyCompromise');
    expect((await api('GET', '/operator/v1/batches/lb2/revocation', operator)).json).to.include({ finished: true, devices: 2 });
    cli('crl', 'publish');
    const crl = new x509.X509Crl(new Uint8Array((await httpRequest(httpPort, 'GET', '/crl/factory.crl')).body));
    const listed = crl.entries.map((e) => e.serialNumber.toLowerCase());
    expect(listed).to.include.members([births['live-2'], births['live-3'], births['live-4']]);
    cli('device', 'decommission', 'live-1', '--reason', 'end of life');

    const history = (await api('GET', '/audit/v1/devices/live-1/history', auditor)).json;
    expect(history.device).to.include({ state: 'decommissioned', owner: 'acme', deviceClass: 'short' });
    expect(JSON.parse(cli('device', 'history', 'live-1', '--json')).events).to.deep.equal(history.events);
    const actors = new Set(history.events.filter((e: { action: string }) => e.action !== 'device.manufactured').map((e: { actor: string }) => e.actor));
    expect([...actors]).to.deep.equal([`cli:${process.getuid?.() ?? 0}`]);
    expect(cli('report', 'rotation', '--csv').split('\n')[0]).to.match(/^serial,/);

    const checkpoint = JSON.parse(cli('audit', 'checkpoint'));
    const checkpoints = (await api('GET', '/audit/v1/checkpoints', auditor)).json.checkpoints as Array<{ seq: number }>;
    expect(checkpoints.map((c) => c.seq)).to.include(checkpoint.seq);
    expect(JSON.parse(cli('audit', 'verify', '--json')).ok).to.equal(true);
    const exported = join(dataDir, 'export.jsonl');
    cli('audit', 'export', '--out', exported);
    expect(statSync(exported).mode & 0o777).to.equal(0o600);
    const rootFile = join(dataDir, 'root.pem');
    spawnSync('sh', ['-c', `cat > ${rootFile}`], { input: rootPem });
    expect(cli('audit', 'verify-export', exported, '--root', rootFile)).to.match(/^OK/);
    expect(readFileSync(exported, 'utf8')).to.include('device.decommissioned');
    expect(cli('identity', 'show')).to.include('ca.devid.test');

    cli('token', 'revoke', spare.id);
    expect((await api('GET', '/operator/v1/devices?owner=acme', spare.token)).status).to.equal(401);
  });
});
