import { spawn } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { startTestServer, type TestServer } from './support/api.ts';
import { httpsRequest, type ApiResponse } from './support/https.ts';
import { opensslVerify } from './support/openssl.ts';
import { SoftwareTpm, softwareTpmOrSkip } from './support/swtpm.ts';
import { testTpmMaker } from './support/tpm-maker.ts';
import { createToken } from '../server/tokens.ts';
import { AcmeClient } from '../client/acme-client.ts';
import { Device } from '../client/device.ts';
import { tpmFactoryKey, TpmKeys } from '../client/tpm-device.ts';

const DEVICE = fileURLToPath(new URL('../bin/devid-device', import.meta.url));
const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: true, onCloneSignal: 'refuse', attestationFormats: ['tpm'] };
const spkiOf = (der: Buffer) => createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
const leafOf = (pem: string) => new X509Certificate(pem.split(/(?<=-----END CERTIFICATE-----)/)[0]!);

describe('devid-device --tpm: the reference client keeps its attestation key and every operational key in a TPM (swtpm, tpm2-tools) and enrolls with the tpm format', function () {
  this.timeout(300_000);
  let tpm: SoftwareTpm;
  let server: TestServer;
  let dir: string;
  let base: string;

  /** An operator or auditor request to the server, whose certificate names localhost (the host the device is given). */
  function api(method: string, path: string, token: string, body?: unknown): Promise<ApiResponse> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return httpsRequest(server.running.httpsPort, server.rootPem, method, path, headers, body === undefined ? undefined : JSON.stringify(body), 'localhost');
  }

  before(async function () {
    tpm = await softwareTpmOrSkip(this);
    server = await startTestServer('pglite', { DEVID_PUBLIC_HOST: 'localhost' });
    base = `https://localhost:${server.running.httpsPort}`;
    dir = mkdtempSync(join(tmpdir(), 'devid-test-device-tpm-'));
    writeFileSync(join(dir, 'root.pem'), server.rootPem);
    const put = await api('PUT', '/operator/v1/device-classes/tpm-devices', server.tokens.operator, CLASS);
    expect(put.status, put.text).to.equal(201);
  });
  after(async () => {
    await server?.close();
    tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs devid-device against the swtpm (its TCTI in TPM2TOOLS_TCTI, as on a device with /dev/tpmrm0), without blocking: the server lives in this process. */
  function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(DEVICE, args, { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', TPM2TOOLS_TCTI: tpm.tcti, ...env } });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (status) => resolve({ status, stderr }));
    });
  }

  async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
    const result = await run(args, env);
    expect(result.status, result.stderr).to.equal(0);
    return result.stderr;
  }

  /** init --tpm with its own handles, then birth through the factory API; the device's directory. */
  async function born(serial: string, handles: { ak: string; keys: string }, inClass: string | undefined): Promise<string> {
    const state = join(dir, serial);
    await ok(['--dir', state, 'init', '--tpm', '--tpm-ak', handles.ak, '--tpm-keys', handles.keys, '--serial', serial, '--ca', join(dir, 'root.pem'), '--acme', `${base}/acme/directory`]);
    await ok(['--dir', state, 'birth', '--factory', base, '--model', 'thermo-2', '--batch', 'b1'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    if (inClass) {
      const assigned = await api('PUT', `/operator/v1/devices/${serial}/class`, server.tokens.operator, { class: inClass });
      expect(assigned.status, assigned.text).to.equal(200);
    }
    return state;
  }

  it('init --tpm, birth, enroll --tpm, renew --tpm twice: every key is a TPM key, each renewal names its predecessor, the replaced key leaves the TPM', async () => {
    const serial = 'SN-TPMCLI-1';
    const state = await born(serial, { ak: '0x81000102', keys: '0x81000103,0x81000104' }, 'tpm-devices');
    const config = () => JSON.parse(readFileSync(join(state, 'device.json'), 'utf8'));
    expect(config().factoryKey).to.deep.equal({ kind: 'tpm', handle: '0x81000102' });
    expect(config().tpm).to.deep.equal({ parent: '0x81000001', slots: ['0x81000103', '0x81000104'] });
    // The birth certificate is the attestation key's, which the TPM made restricted.
    // The CSR init wrote for the line, signed by the attestation key through TPM2_Hash and its ticket.
    const request = new x509.Pkcs10CertificateRequest(readFileSync(join(state, 'birth-request.pem'), 'utf8'));
    expect(await request.verify()).to.equal(true);
    expect(Buffer.from(request.publicKey.rawData)).to.deep.equal(spkiOf(tpm.publicKeyDer(0x81000102)));
    const birth = new X509Certificate(readFileSync(join(state, 'birth.pem')));
    expect(birth.publicKey.export({ format: 'der', type: 'spki' })).to.deep.equal(spkiOf(tpm.publicKeyDer(0x81000102)));

    expect(await ok(['--dir', state, 'enroll', '--tpm'])).to.contain('operational certificate');
    expect(config().tpm.key).to.equal('0x81000103');
    const first = readFileSync(join(state, 'cert.pem'), 'utf8');
    expect(leafOf(first).publicKey.export({ format: 'der', type: 'spki' })).to.deep.equal(spkiOf(tpm.publicKeyDer(0x81000103)));
    const [leafPem, intermediatePem] = first.split(/(?<=-----END CERTIFICATE-----)\s*/);
    const verified = opensslVerify(server.rootPem, intermediatePem!, leafPem!, 'sslclient');
    expect(verified.ok, verified.output).to.equal(true);

    await ok(['--dir', state, 'renew', '--now', '--tpm']);
    expect(config().tpm.key).to.equal('0x81000104');
    const second = readFileSync(join(state, 'cert.pem'), 'utf8');
    expect(leafOf(second).publicKey.export({ format: 'der', type: 'spki' })).to.deep.equal(spkiOf(tpm.publicKeyDer(0x81000104)));
    expect(tpm.device.has(0x81000103), 'the replaced key was evicted').to.equal(false);

    await ok(['--dir', state, 'renew', '--now']); // the mode comes from device.json
    expect(config().tpm.key).to.equal('0x81000103');
    const third = readFileSync(join(state, 'cert.pem'), 'utf8');

    const history = (await api('GET', `/audit/v1/devices/${serial}/history`, server.tokens.auditor)).json;
    const sha = (pem: string) => createHash('sha256').update(leafOf(pem).raw).digest('hex');
    const operational = (history.certificates as Array<{ kind: string; serial: string; predecessorSha256: string | null }>).filter((c) => c.kind === 'operational');
    const bySerial = (pem: string) => operational.find((c) => c.serial.toLowerCase() === leafOf(pem).serialNumber.toLowerCase())!;
    expect(bySerial(second).predecessorSha256).to.equal(sha(first));
    expect(bySerial(third).predecessorSha256).to.equal(sha(second));
    const attested = (history.events as Array<{ action: string; data: Record<string, unknown> }>).filter((e) => e.action === 'device.attested');
    expect(attested.map((e) => e.data.fmt)).to.deep.equal(['tpm', 'tpm', 'tpm']);
    const orders = (history.events as Array<{ action: string; data: Record<string, unknown> }>).filter((e) => e.action === 'device.attested').map((e) => e.data.signCount as number);
    expect(orders[1]).to.be.above(orders[0]!);
  });

  it('a device class that does not accept tpm: one clear line naming the format; --tpm on a software device and --staged on a TPM device are refused before anything is sent', async () => {
    const state = await born('SN-TPMCLI-2', { ak: '0x81000112', keys: '0x81000113,0x81000114' }, undefined);
    const refused = await run(['--dir', state, 'enroll', '--tpm']);
    expect(refused.status).to.equal(1);
    expect(refused.stderr.trim().split('\n'), refused.stderr).to.have.length(1);
    expect(refused.stderr).to.match(/^devid-device: the CA refused \(400.*badAttestationStatement\): format: device class default accepts attestation formats devid, not tpm/);
    expect(existsInConfig(state, 'key'), 'no key became current').to.equal(false);

    const staged = await run(['--dir', state, 'renew', '--now', '--staged']);
    expect(staged.status).to.equal(1);
    expect(staged.stderr).to.match(/^devid-device: --staged attests with the operational key: a TPM device/);

    const software = join(dir, 'software-device');
    await ok(['--dir', software, 'init', '--serial', 'SN-TPMCLI-SW', '--ca', join(dir, 'root.pem'), '--acme', `${base}/acme/directory`]);
    const notTpm = await run(['--dir', software, 'enroll', '--tpm']);
    expect(notTpm.status).to.equal(1);
    expect(notTpm.stderr).to.match(/is not a TPM device: run "devid-device --dir .* init --tpm/);

    const taken = await run(['--dir', join(dir, 'clash'), 'init', '--tpm', '--tpm-ak', '0x81000113', '--tpm-keys', '0x81000120,0x81000121', '--serial', 'SN-TPMCLI-3', '--ca', join(dir, 'root.pem')]);
    expect(tpm.device.has(0x81000113), 'the refused order left its key in its slot').to.equal(true);
    expect(taken.stderr).to.match(/the key at 0x81000113 lacks restricted/);
    const badHandle = await run(['--dir', join(dir, 'bad'), 'init', '--tpm', '--tpm-ak', '42', '--serial', 'SN-TPMCLI-4', '--ca', join(dir, 'root.pem')]);
    expect(badHandle.stderr).to.match(/--tpm-ak 42 is no persistent TPM handle/);
  });

  it('birth --ek-certificate: the CA proves the attestation key lives in the TPM its maker certified (credential activation) before it issues; another maker is refused in one line', async () => {
    const ek = tpm.createEndorsementKey();
    const maker = await testTpmMaker(tpm.publicKeyDer(ek));
    const bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
    const proposed = await api('PUT', '/operator/v1/manufacturers/tpm-maker', server.tokens.operator, { certificates: [maker.rootPem], models: ['thermo-2'], crl: null });
    expect(proposed.status, proposed.text).to.equal(201);
    const approved = await api('POST', '/operator/v1/manufacturers/tpm-maker/approve', bob, { proposal: proposed.json.pending.sha256 });
    expect(approved.status, approved.text).to.equal(200);
    writeFileSync(join(dir, 'ek.der'), maker.ekDer);

    const serial = 'SN-TPMCLI-EK';
    const state = join(dir, serial);
    await ok(['--dir', state, 'init', '--tpm', '--tpm-ak', '0x81000132', '--tpm-keys', '0x81000133,0x81000134', '--serial', serial, '--ca', join(dir, 'root.pem'), '--acme', `${base}/acme/directory`]);
    const birth = ['--dir', state, 'birth', '--factory', base, '--model', 'thermo-2', '--batch', 'b1', '--ek-certificate', join(dir, 'ek.der'), '--tpm-ek', `0x${ek.toString(16)}`];
    const unknown = await run([...birth, '--tpm-manufacturer', 'nobody'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    expect(unknown.status).to.equal(1);
    expect(unknown.stderr.trim().split('\n'), unknown.stderr).to.have.length(1);
    expect(unknown.stderr).to.match(/^devid-device: the factory API at .* refused \(400.*no active manufacturer nobody/);
    await ok([...birth, '--tpm-manufacturer', 'tpm-maker'], { DEVID_FACTORY_TOKEN: server.tokens.factory });
    const history = (await api('GET', `/audit/v1/devices/${serial}/history`, server.tokens.auditor)).json;
    const manufactured = (history.events as Array<{ action: string; data: Record<string, any> }>).find((e) => e.action === 'device.manufactured')!;
    expect(manufactured.data.tpm).to.include({ manufacturer: 'tpm-maker', akName: tpm.name(0x81000132).toString('hex') });
    const assigned = await api('PUT', `/operator/v1/devices/${serial}/class`, server.tokens.operator, { class: 'tpm-devices' });
    expect(assigned.status, assigned.text).to.equal(200);
    await ok(['--dir', state, 'enroll', '--tpm']);
  });

  it('a renewal cut after its attestation is finished by the next renew with the TPM key it kept; the replaced key then leaves the TPM', async () => {
    const serial = 'SN-TPMCLI-LOST';
    const state = await born(serial, { ak: '0x81000142', keys: '0x81000143,0x81000144' }, 'tpm-devices');
    await ok(['--dir', state, 'enroll']);
    const first = readFileSync(join(state, 'cert.pem'), 'utf8');
    // The same device in this process, cut between its attestation and its finalize (a lost answer, a power cut).
    const keys = new TpmKeys(tpm.device, { parent: 0x81000001, ak: 0x81000142, slots: [0x81000143, 0x81000144], key: 0x81000143 }, () => {});
    const device = new Device(serial, state, tpmFactoryKey(tpm.device, 0x81000142, serial), new AcmeClient(`${base}/acme/directory`, Device.accountKey(state), server.rootPem), 'localhost', keys);
    const cut = await device.enroll({ beforeFinalize: async () => { throw new Error('power cut'); } }).catch((e: unknown) => e);
    expect((cut as Error).message).to.equal('power cut');
    expect(readFileSync(join(state, 'pending-key.pem'), 'utf8').trim()).to.equal('0x81000144');
    expect(readFileSync(join(state, 'cert.pem'), 'utf8')).to.equal(first);
    const kept = spkiOf(tpm.publicKeyDer(0x81000144));

    await ok(['--dir', state, 'renew', '--now', '--tpm']);
    const second = readFileSync(join(state, 'cert.pem'), 'utf8');
    expect(leafOf(second).publicKey.export({ format: 'der', type: 'spki' }), 'the key the cut renewal attested, not a new one').to.deep.equal(kept);
    expect(spkiOf(tpm.publicKeyDer(0x81000144))).to.deep.equal(kept);
    expect(JSON.parse(readFileSync(join(state, 'device.json'), 'utf8')).tpm.key).to.equal('0x81000144');
    expect(tpm.device.has(0x81000143), 'the replaced key was evicted').to.equal(false);
    const history = (await api('GET', `/audit/v1/devices/${serial}/history`, server.tokens.auditor)).json;
    const operational = (history.certificates as Array<{ kind: string; predecessorSha256: string | null }>).filter((c) => c.kind === 'operational');
    expect(operational, 'no fork: one renewal, through the kept key').to.have.length(2);
    expect(operational.map((c) => c.predecessorSha256)).to.include(createHash('sha256').update(leafOf(first).raw).digest('hex'));
  });

  function existsInConfig(state: string, field: string): boolean {
    return field in (JSON.parse(readFileSync(join(state, 'device.json'), 'utf8')).tpm ?? {});
  }
});
