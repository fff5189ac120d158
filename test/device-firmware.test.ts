import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { declareModel } from '../registry/catalogue/models.ts';
import { initialise } from '../server/ceremonies.ts';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { serve, type RunningServer } from '../server/serve.ts';
import { createToken } from '../server/tokens.ts';
import { startTestServer, TEST_MODEL } from './support/api.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { httpsRequest } from './support/https.ts';
import { httpRequest } from './support/publication.ts';
import { outsideVerify } from './support/suit-verifier.ts';

const DEVICE = fileURLToPath(new URL('../bin/devid-device', import.meta.url));
const RELEASES = '/operator/v1/models/thermo-2/firmware-releases';

describe('devid-device firmware verify: a real release checked before installing, and refused for any flipped byte', function () {
  this.timeout(180_000);
  let env: TestEnvironment;
  let running: RunningServer;
  let rootPem: string;
  let dir: string;
  const file = (name: string) => join(dir, name);
  let release: Record<string, unknown>;

  function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(DEVICE, args, { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  before(async () => {
    // The firmware intermediate exists before serve starts, so serve publishes it at /ca/firmware.crt.
    env = await createTestEnvironment('pglite');
    await initialise(env.ctx);
    await declareModel(env.ctx.store, env.ctx.audit, 'cli', 'thermo-2', TEST_MODEL, new Date());
    await createFirmwareCa(env.ctx, 'cli');
    await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli');
    running = await serve(env.ctx, {});
    rootPem = running.hierarchy.root.certificate.toString('pem');
    dir = mkdtempSync(join(tmpdir(), 'devid-test-device-firmware-'));
    const token = async (name: string) => (await createToken(env.ctx.store, env.ctx.audit, { role: 'operator', name }, 'cli', new Date())).token;
    const [alice, bob] = [await token('alice'), await token('bob')];
    const send = async (path: string, who: string, body: unknown) =>
      (await httpsRequest(running.httpsPort, rootPem, 'POST', path, { authorization: `Bearer ${who}`, 'content-type': 'application/json' }, JSON.stringify(body))).json;
    const image = randomBytes(4096);
    writeFileSync(file('image.bin'), image);
    const proposed = await send(RELEASES, alice, { version: '4.2.0', digest: createHash('sha256').update(image).digest('hex'), size: image.length, sequence: 42 });
    release = await send(`${RELEASES}/4.2.0/approve`, bob, { proposal: proposed.proposal });
    expect(release.status).to.equal('approved');
    const envelope = await httpRequest(running.httpPort, 'GET', '/firmware/thermo-2/4.2.0.suit');
    expect(envelope.status).to.equal(200);
    writeFileSync(file('4.2.0.suit'), envelope.body);
    writeFileSync(file('root.pem'), rootPem);
    writeFileSync(file('firmware.crt'), (await httpRequest(running.httpPort, 'GET', '/ca/firmware.crt')).body);
    writeFileSync(file('operational.crt'), (await httpRequest(running.httpPort, 'GET', '/ca/operational.crt')).body);
  });
  after(async () => {
    await running?.close();
    await env?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const caUrl = () => `http://127.0.0.1:${running.httpPort}`;

  it('fetched from the CA (checked against the root) or given as a file: verified, the release printed with its sequence; the outside verifier agrees', async () => {
    const fetched = await run(['firmware', 'verify', file('4.2.0.suit'), file('image.bin'), '--ca-url', caUrl(), '--root', file('root.pem')]);
    expect(fetched.status, fetched.stderr).to.equal(0);
    const printed = JSON.parse(fetched.stdout);
    expect(printed).to.include({ sequence: 42, manifestSha256: release.manifestSha256, imageSize: 4096, signerSerial: release.signer });
    expect(fetched.stderr).to.match(/^devid-device: verified: sequence 42, manifest [0-9a-f]{64}, signed by .*CN=thermo-2/);
    const given = await run(['firmware', 'verify', file('4.2.0.suit'), file('image.bin'), '--ca', file('firmware.crt'), '--min-sequence', '42']);
    expect(given.status, given.stderr).to.equal(0);
    expect(JSON.parse(given.stdout)).to.deep.equal(printed);
    const outside = outsideVerify(readFileSync(file('4.2.0.suit')), { rootPem: rootPem });
    expect(outside.ok, outside.reason).to.equal(true);
    expect(outside.facts).to.include({ sequence: 42, manifestSha256: printed.manifestSha256, imageDigest: printed.imageSha256 });
  });

  it('refuses, exit 1: a flipped byte in the image or the envelope, an image of another size, a rollback, the root or another intermediate as anchor', async () => {
    const image = readFileSync(file('image.bin'));
    const envelope = readFileSync(file('4.2.0.suit'));
    const refused = async (args: string[], reason: RegExp) => {
      const answer = await run(['firmware', 'verify', ...args]);
      expect(answer.status, `${args.join(' ')}: ${answer.stderr}`).to.equal(1);
      expect(answer.stdout).to.equal('');
      expect(answer.stderr).to.match(reason);
    };
    const flippedImage = Buffer.from(image);
    flippedImage[100] ^= 0x01;
    writeFileSync(file('flipped.bin'), flippedImage);
    await refused([file('4.2.0.suit'), file('flipped.bin'), '--ca', file('firmware.crt')], /^devid-device: REFUSED .*: the image's SHA-256 [0-9a-f]{64} is not the manifest's/);
    writeFileSync(file('longer.bin'), Buffer.concat([image, Buffer.from([0])]));
    await refused([file('4.2.0.suit'), file('longer.bin'), '--ca', file('firmware.crt')], /REFUSED .*SHA-256/);
    for (const at of [10, Math.floor(envelope.length / 3), Math.floor(envelope.length / 2), envelope.length - 20]) {
      const flipped = Buffer.from(envelope);
      flipped[at] ^= 0x01;
      writeFileSync(file('flipped.suit'), flipped);
      await refused([file('flipped.suit'), file('image.bin'), '--ca', file('firmware.crt')], /^devid-device: REFUSED /);
    }
    await refused([file('4.2.0.suit'), file('image.bin'), '--ca', file('firmware.crt'), '--min-sequence', '43'], /sequence 42 is below 43: a rollback/);
    // The root anchors device keys, not firmware: anchoring at it alone is refused, as is an intermediate that did not sign the signer.
    await refused([file('4.2.0.suit'), file('image.bin'), '--ca', file('root.pem')], /not issued by the firmware intermediate/);
    await refused([file('4.2.0.suit'), file('image.bin'), '--ca', file('operational.crt')], /not issued by the firmware intermediate/);
    // A firmware intermediate fetched from elsewhere must be signed by the device's root.
    const stranger = await startTestServer('pglite');
    try {
      writeFileSync(file('stranger-root.pem'), stranger.rootPem);
      await refused([file('4.2.0.suit'), file('image.bin'), '--ca-url', caUrl(), '--root', file('stranger-root.pem')], /not signed by the root this device trusts/);
    } finally {
      await stranger.close();
    }
    await refused([file('4.2.0.suit'), file('image.bin')], /give the firmware intermediate/);
    await refused([file('4.2.0.suit'), file('image.bin'), '--ca', file('firmware.crt'), '--min-sequence', '-1'], /--min-sequence must be an unsigned integer/);
  });
});
