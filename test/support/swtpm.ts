import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex, Tpm } from '../../client/tpm.ts';

// The reference client's TPM code (client/tpm.ts, client/tpm-csr.ts): the tests drive the same tpm2-tools commands the device runs.
export { AK_ATTRIBUTES, KEY_ATTRIBUTES, hex } from '../../client/tpm.ts';
export { tpmCsr } from '../../client/tpm-csr.ts';

/**
 * A software TPM 2.0 (swtpm) on loopback, driven by tpm2-tools, written
 * from TPM 2.0 Part 2 and Part 3 and the tools' manuals, not from this CA's
 * code. swtpm speaks to the tools directly (no resource manager), so every
 * tool's transient objects are flushed after it, and keys live at
 * persistent handles, which also survive a restart of swtpm.
 */
export class SoftwareTpm {
  private process: ChildProcess | undefined;
  private client: Tpm | undefined;
  private nextHandle = 0x81000010;
  readonly dir = mkdtempSync(join(tmpdir(), 'devid-test-swtpm-'));
  /** The persistent handle of the storage primary key that parents every key. */
  readonly primary = 0x81000001;

  private constructor(private readonly port: number) {}

  /** A started TPM with its storage primary key, or why swtpm cannot run here (the caller skips). */
  static async start(): Promise<SoftwareTpm | string> {
    for (const tool of ['swtpm', 'tpm2_certify', 'tpm2_send']) {
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      } catch {
        return `${tool} is not installed (scripts/setup.sh --test installs swtpm and tpm2-tools)`;
      }
    }
    const tpm = new SoftwareTpm(await freePortPair());
    try {
      await tpm.boot();
      tpm.tool('tpm2_createprimary', '-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', tpm.file('primary.ctx'));
      tpm.tool('tpm2_evictcontrol', '-C', 'o', '-c', tpm.file('primary.ctx'), hex(tpm.primary));
    } catch (err) {
      tpm.stop();
      return `swtpm could not be started: ${(err as Error).message}`;
    }
    return tpm;
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  private async boot(): Promise<void> {
    const child = spawn('swtpm', [
      'socket', '--tpm2', '--server', `type=tcp,port=${this.port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${this.port + 1},bindaddr=127.0.0.1`,
      '--flags', 'not-need-init,startup-clear', '--tpmstate', `dir=${this.dir}`,
    ], { stdio: 'ignore' });
    this.process = child;
    await waitForPort(this.port, child);
  }

  /** Kills swtpm without TPM2_Shutdown (an unorderly shutdown, as a power cut) and starts it again on the same state. */
  async powerCut(): Promise<void> {
    const child = this.process!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await this.boot();
  }

  stop(): void {
    this.client?.close();
    this.process?.kill('SIGTERM');
    this.process = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The TCTI that reaches this TPM (tpm2-tools read it from TPM2TOOLS_TCTI). */
  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, TPM2TOOLS_TCTI: this.tcti };
  }

  /** The client's view of this TPM (client/tpm.ts), with its TCTI. */
  get device(): Tpm {
    this.client ??= new Tpm(this.env());
    return this.client;
  }

  /** Runs a tpm2-tools command against this TPM, then flushes the transient objects it left loaded. */
  tool(name: string, ...args: string[]): string {
    const env = this.env();
    try {
      return execFileSync(name, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const failed = err as { stderr?: string; stdout?: string };
      throw Object.assign(new Error(`${name} ${args.join(' ')}: ${failed.stderr ?? ''}`), { stdout: failed.stdout ?? '' });
    } finally {
      execFileSync('tpm2_flushcontext', ['-t'], { env, stdio: 'ignore' });
    }
  }

  /** A key created under the primary with these TPMA_OBJECT attributes, made persistent; its handle. */
  createKey(algorithm: string, attributes: string): number {
    const handle = this.nextHandle++;
    const [pub, priv, ctx] = [`${handle}.pub`, `${handle}.priv`, `${handle}.ctx`].map((name) => this.file(name)) as [string, string, string];
    this.tool('tpm2_create', '-C', hex(this.primary), '-G', algorithm, '-a', attributes, '-u', pub, '-r', priv);
    this.tool('tpm2_load', '-C', hex(this.primary), '-u', pub, '-r', priv, '-c', ctx);
    this.tool('tpm2_evictcontrol', '-C', 'o', '-c', ctx, hex(handle));
    return handle;
  }

  /** The key's TPMT_PUBLIC without the TPM2B size (`-f tpmt`). */
  publicArea(handle: number): Buffer {
    return this.device.publicArea(handle);
  }

  /** The key's public key as SubjectPublicKeyInfo DER (`-f der`). */
  publicKeyDer(handle: number): Buffer {
    return this.device.publicKeyDer(handle);
  }

  /** The key's Name as the TPM computes it. */
  name(handle: number): Buffer {
    return this.device.name(handle);
  }

  /**
   * TPM2_Certify (Part 3, 18.2) of `key` by `signer` with qualifyingData,
   * sent as the client's raw command (client/tpm-certify.ts) through
   * tpm2_send: tpm2_certify 5.4 has no option for qualifyingData.
   * Returns certifyInfo (TPMS_ATTEST) and the marshalled TPMT_SIGNATURE.
   */
  certify(key: number, signer: number, qualifyingData: Buffer): { certInfo: Buffer; signature: Buffer } {
    return this.device.certifyRaw(key, signer, qualifyingData);
  }

  /** An ECDSA signature (DER) over SHA-256(data) by a restricted key, through TPM2_Hash and its ticket. */
  hashAndSign(handle: number, data: Buffer): Buffer {
    return this.device.hashAndSign(handle, data);
  }

  /** An ECDSA signature (DER) over SHA-256(data) by an unrestricted key, of a digest hashed outside the TPM. */
  signDigest(handle: number, digest: Buffer): Buffer {
    return this.device.signDigest(handle, digest);
  }

  /** The endorsement key of the TCG default RSA template (tpm2_createek), made persistent; its handle. */
  createEndorsementKey(): number {
    const handle = 0x81010001;
    this.tool('tpm2_createek', '-c', hex(handle), '-G', 'rsa', '-u', this.file('ek.pub'));
    return handle;
  }

  /** TPM2_ActivateCredential (Part 3, 12.5) of a CA's credential for `key`, with the EK's policy. */
  activateCredential(key: number, ek: number, credentialBlob: Buffer, encryptedSecret: Buffer): Buffer {
    return this.device.activateCredential(key, ek, credentialBlob, encryptedSecret);
  }

  /** TPM2_ReadClock's clock (ms). */
  clock(): number {
    const match = /^\s*clock:\s*(\d+)/m.exec(this.tool('tpm2_readclock'));
    return Number(match![1]);
  }

  /** TPM2_ClockSet forward: the TPM saves the clock, and it is safe again. */
  setClock(ms: number): void {
    this.tool('tpm2_setclock', String(ms));
  }
}

/** A started software TPM, or the suite skipped with the reason printed (swtpm or tpm2-tools missing). */
export async function softwareTpmOrSkip(suite: Mocha.Context): Promise<SoftwareTpm> {
  const started = await SoftwareTpm.start();
  if (typeof started === 'string') {
    console.log(`      skipped: ${started}`);
    suite.skip();
  }
  return started as SoftwareTpm;
}

/** Two free loopback ports, P and P + 1 (swtpm's command and control ports). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await listenOnce(0);
    if (port < 65535 && (await listenOnce(port + 1).catch(() => 0)) === port + 1) return port;
  }
  throw new Error('no two free adjacent loopback ports');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  let exited = false;
  child.once('exit', () => { exited = true; });
  for (let attempt = 0; attempt < 100 && !exited; attempt += 1) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(exited ? 'swtpm exited' : `swtpm did not listen on port ${port}`);
}
