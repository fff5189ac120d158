import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';

/** An attestation key: a restricted signing key that never leaves its TPM (tpm2_create -a). */
export const AK_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** A PKCS#10 request for CN=<serial> and the key, signed by the TPM (RFC 2986: the signature is over the CertificationRequestInfo DER). */
export function tpmCsr(serial: string, spkiDer: Buffer, sign: (tbs: Buffer) => Buffer): Buffer {
  const subject = new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: serial }) })])]);
  const info = new CertificationRequestInfo({ version: 0, subject, subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo), attributes: new Attributes() });
  const tbs = Buffer.from(AsnConvert.serialize(info));
  const request = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(sign(tbs)).buffer });
  return Buffer.from(AsnConvert.serialize(request));
}

/**
 * A software TPM 2.0 (swtpm) on loopback, driven by tpm2-tools, written
 * from TPM 2.0 Part 2 and Part 3 and the tools' manuals, not from this CA's
 * code. swtpm speaks to the tools directly (no resource manager), so every
 * tool's transient objects are flushed after it, and keys live at
 * persistent handles, which also survive a restart of swtpm.
 */
export class SoftwareTpm {
  private process: ChildProcess | undefined;
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
    this.process?.kill('SIGTERM');
    this.process = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${this.port}` };
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
    this.tool('tpm2_readpublic', '-c', hex(handle), '-f', 'tpmt', '-o', this.file('public.tpmt'));
    return readFileSync(this.file('public.tpmt'));
  }

  /** The key's public key as SubjectPublicKeyInfo DER (`-f der`). */
  publicKeyDer(handle: number): Buffer {
    this.tool('tpm2_readpublic', '-c', hex(handle), '-f', 'der', '-o', this.file('public.der'));
    return readFileSync(this.file('public.der'));
  }

  /** The key's Name as the TPM computes it. */
  name(handle: number): Buffer {
    this.tool('tpm2_readpublic', '-c', hex(handle), '-n', this.file('name.bin'));
    return readFileSync(this.file('name.bin'));
  }

  /**
   * TPM2_Certify (Part 3, 18.2) of `key` by `signer` with qualifyingData,
   * sent as a raw command through tpm2_send: tpm2_certify 5.4 has no option
   * for qualifyingData. Both keys authorize with an empty password session
   * (TPM_RS_PW); inScheme TPM_ALG_NULL takes the signer's own scheme.
   * Returns certifyInfo (TPMS_ATTEST) and the marshalled TPMT_SIGNATURE.
   */
  certify(key: number, signer: number, qualifyingData: Buffer): { certInfo: Buffer; signature: Buffer } {
    const passwordSession = Buffer.from([0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const auth = Buffer.concat([passwordSession, passwordSession]);
    const qualifying = Buffer.alloc(2);
    qualifying.writeUInt16BE(qualifyingData.length);
    const parameters = Buffer.concat([qualifying, qualifyingData, Buffer.from([0x00, 0x10])]);
    const header = Buffer.alloc(22);
    header.writeUInt16BE(0x8002, 0); // TPM_ST_SESSIONS
    header.writeUInt32BE(0x00000148, 6); // TPM_CC_Certify
    header.writeUInt32BE(key, 10);
    header.writeUInt32BE(signer, 14);
    header.writeUInt32BE(auth.length, 18);
    const command = Buffer.concat([header, auth, parameters]);
    command.writeUInt32BE(command.length, 2);
    execFileSync('tpm2_send', ['-o', this.file('certify.rsp')], { env: this.env(), input: command, stdio: ['pipe', 'ignore', 'pipe'] });
    const response = readFileSync(this.file('certify.rsp'));
    const code = response.readUInt32BE(6);
    if (code !== 0) throw new Error(`TPM2_Certify answered 0x${code.toString(16)}`);
    const parameterSize = response.readUInt32BE(10);
    const attestSize = response.readUInt16BE(14);
    const certInfo = response.subarray(16, 16 + attestSize);
    const signature = response.subarray(16 + attestSize, 14 + parameterSize);
    return { certInfo: Buffer.from(certInfo), signature: Buffer.from(signature) };
  }

  /**
   * An ECDSA signature (DER) over SHA-256(data) by a restricted key: the TPM
   * hashes the data itself (TPM2_Hash) and proves with a ticket that it did
   * not start with TPM_GENERATED_VALUE, which TPM2_Sign then requires.
   */
  hashAndSign(handle: number, data: Buffer): Buffer {
    writeFileSync(this.file('message.bin'), data);
    this.tool('tpm2_hash', '-C', 'o', '-g', 'sha256', '-o', this.file('digest.bin'), '-t', this.file('ticket.bin'), this.file('message.bin'));
    this.tool('tpm2_sign', '-c', hex(handle), '-g', 'sha256', '-s', 'ecdsa', '-d', '-t', this.file('ticket.bin'), '-f', 'plain', '-o', this.file('signature.der'), this.file('digest.bin'));
    return readFileSync(this.file('signature.der'));
  }

  /** An ECDSA signature (DER) over SHA-256(data) by an unrestricted key, of a digest hashed outside the TPM. */
  signDigest(handle: number, digest: Buffer): Buffer {
    writeFileSync(this.file('digest.bin'), digest);
    this.tool('tpm2_sign', '-c', hex(handle), '-g', 'sha256', '-s', 'ecdsa', '-d', '-f', 'plain', '-o', this.file('signature.der'), this.file('digest.bin'));
    return readFileSync(this.file('signature.der'));
  }

  /** The endorsement key of the TCG default RSA template (tpm2_createek), made persistent; its handle. */
  createEndorsementKey(): number {
    const handle = 0x81010001;
    this.tool('tpm2_createek', '-c', hex(handle), '-G', 'rsa', '-u', this.file('ek.pub'));
    return handle;
  }

  /**
   * TPM2_ActivateCredential (Part 3, 12.5) of a CA's credential for `key`,
   * with the EK's policy (PolicySecret of the endorsement hierarchy): the
   * credential, or an Error when this TPM cannot recover it.
   */
  activateCredential(key: number, ek: number, credentialBlob: Buffer, encryptedSecret: Buffer): Buffer {
    // tpm2-tools' credential file: magic 0xBADCC0DE, version 1, the TPM2B_ID_OBJECT and the TPM2B_ENCRYPTED_SECRET.
    writeFileSync(this.file('credential.in'), Buffer.concat([Buffer.from('badcc0de00000001', 'hex'), credentialBlob, encryptedSecret]));
    const session = this.file('session.ctx');
    this.tool('tpm2_startauthsession', '--policy-session', '-S', session);
    try {
      this.tool('tpm2_policysecret', '-S', session, '-c', 'e');
      this.tool('tpm2_activatecredential', '-c', hex(key), '-C', hex(ek), '-i', this.file('credential.in'), '-o', this.file('credential.out'), '-P', `session:${session}`);
    } finally {
      try {
        execFileSync('tpm2_flushcontext', [session], { env: this.env(), stdio: 'ignore' });
      } catch {
        // A failed activation may have ended the session already.
      }
    }
    return readFileSync(this.file('credential.out'));
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

export const hex = (handle: number): string => `0x${handle.toString(16)}`;

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
