import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startTestServer, type TestServer } from './support/api.ts';
import { httpsRequest, type ApiResponse } from './support/https.ts';
import { SoftwareTpm, softwareTpmOrSkip } from './support/swtpm.ts';

const SCRIPT = fileURLToPath(new URL('./support/outside-tpm-device.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const MODULES: Array<[string, string]> = [['tpm2_pytss', 'python3-tpm2-pytss'], ['jwcrypto', 'python3-jwcrypto'], ['cbor2', 'python3-cbor2'], ['cryptography', 'python3-cryptography']];

/** The Debian package the outside device lacks, or undefined when Python has them all. */
function missingPythonPackage(): string | undefined {
  for (const [module, pkg] of MODULES) {
    try {
      execFileSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' });
    } catch {
      return pkg;
    }
  }
  return undefined;
}

describe('an outside TPM device written from the standards alone (Python: tpm2-pytss ESAPI, jwcrypto, cbor2, cryptography) gets its birth certificate, enrolls with fmt "tpm" and renews with replaces', function () {
  this.timeout(300_000);
  let tpm: SoftwareTpm;
  let server: TestServer;
  let dir: string;

  /** Operator and auditor requests; the server's certificate names localhost, the host the device is given. */
  function api(method: string, path: string, token: string, body?: unknown): Promise<ApiResponse> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return httpsRequest(server.running.httpsPort, server.rootPem, method, path, headers, body === undefined ? undefined : JSON.stringify(body), 'localhost');
  }

  /** Runs one phase of the Python device; its JSON answer. Asynchronous: the server it talks to lives in this process. */
  function device(phase: 'birth' | 'enroll', serial: string, extra: string[] = []): Promise<Record<string, any>> {
    const args = [SCRIPT, phase, '--tcti', tpm.tcti, '--base', `https://localhost:${server.running.httpsPort}`, '--ca', join(dir, 'root.pem'), '--state', dir, '--serial', serial, ...extra];
    return new Promise((resolve, reject) => {
      execFile(PYTHON, args, { env: { PATH: process.env.PATH!, DEVID_FACTORY_TOKEN: server.tokens.factory }, timeout: 240_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`outside-tpm-device.py ${phase} failed: ${stderr}`));
        else resolve(JSON.parse(stdout));
      });
    });
  }

  before(async function () {
    const missing = missingPythonPackage();
    if (missing) {
      console.log(`      skipped: ${missing} is not installed (scripts/setup.sh --test installs it)`);
      this.skip();
    }
    tpm = await softwareTpmOrSkip(this);
    server = await startTestServer('pglite', { DEVID_PUBLIC_HOST: 'localhost' });
    dir = mkdtempSync(join(tmpdir(), 'devid-test-outside-tpm-'));
    writeFileSync(join(dir, 'root.pem'), server.rootPem);
    const put = await api('PUT', '/operator/v1/device-classes/tpm-devices', server.tokens.operator,
      { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: true, onCloneSignal: 'refuse', attestationFormats: ['tpm'] });
    expect(put.status, put.text).to.equal(201);
  });
  after(async () => {
    await server?.close();
    tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('birth, enrollment, a renewal with a predecessor link, and a forged extraData refused as badAttestationStatement', async () => {
    const serial = 'SN-OUTSIDE-TPM-1';
    const born = await device('birth', serial, ['--model', 'thermo-2', '--batch', 'outside-1']);
    expect(born.birthSerial).to.match(/^[0-9a-f]+$/);
    const assigned = await api('PUT', `/operator/v1/devices/${serial}/class`, server.tokens.operator, { class: 'tpm-devices' });
    expect(assigned.status, assigned.text).to.equal(200);

    const enrolled = await device('enroll', serial);
    expect(enrolled.forged, 'the forgery was accepted').to.not.equal(null);
    expect(enrolled.forged.status).to.equal(400);
    expect(enrolled.forged.type).to.equal('urn:ietf:params:acme:error:badAttestationStatement');
    expect(enrolled.forged.detail).to.match(/^check 3 \(extraData\)/);

    const history = (await api('GET', `/audit/v1/devices/${serial}/history`, server.tokens.auditor)).json;
    const certificates = history.certificates as Array<{ kind: string; serial: string; predecessorSha256: string | null }>;
    const second = certificates.find((c) => c.serial.toLowerCase().replace(/^0+/, '') === enrolled.second.serial.replace(/^0+/, ''));
    expect(second, JSON.stringify(certificates)).to.not.equal(undefined);
    expect(second!.predecessorSha256).to.equal(enrolled.first.sha256);
    const attested = (history.events as Array<{ action: string; data: Record<string, unknown> }>).filter((e) => e.action === 'device.attested');
    expect(attested.map((e) => e.data.fmt)).to.deep.equal(['tpm', 'tpm']);
    expect((history.events as Array<{ action: string }>).map((e) => e.action)).to.not.include('device.clone-suspected');
  });
});
