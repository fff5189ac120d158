import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certifyCommand, parseCertifyResponse } from './tpm-certify.ts';

/** An attestation key: a restricted signing key that never leaves its TPM (TPMA_OBJECT, Part 2, 8.3). */
export const AK_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';
/** An operational key: it signs any digest (a CSR, a TLS handshake), and never leaves its TPM either. */
export const KEY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';
/** The storage primary key's handle the TCG's provisioning guidance gives (the SRK). */
export const SRK_HANDLE = 0x81000001;

export const hex = (handle: number): string => `0x${handle.toString(16)}`;

/** The tpm2-tools programs the client runs; a missing one is named before anything is done. */
const TOOLS = ['tpm2_createprimary', 'tpm2_create', 'tpm2_load', 'tpm2_evictcontrol', 'tpm2_readpublic', 'tpm2_hash', 'tpm2_sign', 'tpm2_certify', 'tpm2_send', 'tpm2_flushcontext', 'tpm2_getcap'];

/** A tpm2-tools program that failed: what it was asked, and what it said. */
export class TpmToolError extends Error {
  constructor(readonly tool: string, args: string[], readonly stderr: string) {
    super(`${tool} ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-2).join(' ') || 'no message'}`);
  }
}

/**
 * The device's TPM 2.0, spoken to only through tpm2-tools processes, with
 * the TCTI they take from the environment (TPM2TOOLS_TCTI, e.g.
 * `device:/dev/tpmrm0`, or `swtpm:host=127.0.0.1,port=2321`). A TPM reached
 * without a resource manager keeps what each program loads, so every
 * program is followed by a flush of the transient objects: keys live at
 * persistent handles, which also survive a reboot.
 */
export class Tpm {
  private readonly work = mkdtempSync(join(tmpdir(), 'devid-tpm-'));
  private qualifyingDataOption: boolean | undefined;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** The first tpm2-tools program not installed, or undefined when all are. */
  static missingTool(): string | undefined {
    return TOOLS.find((tool) => {
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
        return false;
      } catch {
        return true;
      }
    });
  }

  private file(name: string): string {
    return join(this.work, name);
  }

  /** Runs a tpm2-tools program, then flushes the transient objects it left loaded; its standard output. */
  tool(name: string, ...args: string[]): string {
    try {
      return execFileSync(name, args, { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const failed = err as { stderr?: string; code?: string };
      if (failed.code === 'ENOENT') throw new TpmToolError(name, args, `${name} is not installed (Debian: apt-get install tpm2-tools)`);
      throw new TpmToolError(name, args, failed.stderr ?? String(err));
    } finally {
      try {
        execFileSync('tpm2_flushcontext', ['-t'], { env: this.env, stdio: 'ignore' });
      } catch {
        // Nothing was loaded, or the TPM is unreachable: the program's own error says which.
      }
    }
  }

  /** The persistent handles in use (TPM2_GetCapability). */
  persistentHandles(): number[] {
    return this.tool('tpm2_getcap', 'handles-persistent').split('\n').map((line) => /0x[0-9a-fA-F]+/.exec(line)?.[0]).filter((h): h is string => h !== undefined).map((h) => Number.parseInt(h, 16));
  }

  has(handle: number): boolean {
    return this.persistentHandles().includes(handle);
  }

  /** The storage primary key (ECC P-256 under the owner hierarchy) at `handle`, created and made persistent unless it is there. */
  ensurePrimary(handle: number): void {
    if (this.has(handle)) return;
    this.tool('tpm2_createprimary', '-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', this.file('primary.ctx'));
    this.tool('tpm2_evictcontrol', '-C', 'o', '-c', this.file('primary.ctx'), hex(handle));
  }

  /** A key created under `parent` with these TPMA_OBJECT attributes (tpm2_create -a), made persistent at `handle`. */
  createKey(parent: number, handle: number, algorithm: string, attributes: string): void {
    const [pub, priv, ctx] = ['key.pub', 'key.priv', 'key.ctx'].map((name) => this.file(name)) as [string, string, string];
    this.tool('tpm2_create', '-C', hex(parent), '-G', algorithm, '-a', attributes, '-u', pub, '-r', priv);
    this.tool('tpm2_load', '-C', hex(parent), '-u', pub, '-r', priv, '-c', ctx);
    this.tool('tpm2_evictcontrol', '-C', 'o', '-c', ctx, hex(handle));
  }

  /** Removes a persistent key (the TPM forgets it for good). */
  evict(handle: number): void {
    this.tool('tpm2_evictcontrol', '-C', 'o', '-c', hex(handle));
  }

  /** The key's TPMT_PUBLIC, without the TPM2B size that tpm2_create writes (`-f tpmt`). */
  publicArea(handle: number): Buffer {
    this.tool('tpm2_readpublic', '-c', hex(handle), '-f', 'tpmt', '-o', this.file('public.tpmt'));
    return readFileSync(this.file('public.tpmt'));
  }

  /** The key's public key as SubjectPublicKeyInfo DER. */
  publicKeyDer(handle: number): Buffer {
    this.tool('tpm2_readpublic', '-c', hex(handle), '-f', 'der', '-o', this.file('public.der'));
    return readFileSync(this.file('public.der'));
  }

  /** The key's Name (nameAlg || H(TPMT_PUBLIC)), as the TPM computes it. */
  name(handle: number): Buffer {
    this.tool('tpm2_readpublic', '-c', hex(handle), '-n', this.file('name.bin'));
    return readFileSync(this.file('name.bin'));
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

  /** An ECDSA signature (DER) by an unrestricted key over a SHA-256 digest made outside the TPM. */
  signDigest(handle: number, digest: Buffer): Buffer {
    writeFileSync(this.file('digest.bin'), digest);
    this.tool('tpm2_sign', '-c', hex(handle), '-g', 'sha256', '-s', 'ecdsa', '-d', '-f', 'plain', '-o', this.file('signature.der'), this.file('digest.bin'));
    return readFileSync(this.file('signature.der'));
  }

  /** Whether this tpm2_certify takes qualifyingData (`-q, --qualifying-data`, tpm2-tools 5.8 and later). */
  private certifyTakesQualifyingData(): boolean {
    if (this.qualifyingDataOption === undefined) {
      let help = '';
      try {
        help = execFileSync('tpm2_certify', ['--help'], { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        help = String((err as { stdout?: string }).stdout ?? '');
      }
      this.qualifyingDataOption = help.includes('--qualifying-data');
    }
    return this.qualifyingDataOption;
  }

  /**
   * TPM2_Certify of `key` by `signer` (an ECC key with the ECDSA scheme)
   * with qualifyingData: certifyInfo (TPMS_ATTEST) and the marshalled
   * TPMT_SIGNATURE. With tpm2-tools 5.4 the one raw command of
   * client/tpm-certify.ts, through tpm2_send.
   */
  certify(key: number, signer: number, qualifyingData: Buffer): { certInfo: Buffer; signature: Buffer } {
    if (this.certifyTakesQualifyingData()) {
      writeFileSync(this.file('qualifying-data.bin'), qualifyingData);
      this.tool('tpm2_certify', '-c', hex(key), '-C', hex(signer), '-g', 'sha256', '--qualifying-data', this.file('qualifying-data.bin'),
        '-o', this.file('certify.attest'), '-s', this.file('certify.sig'), '-f', 'tss');
      return { certInfo: readFileSync(this.file('certify.attest')), signature: readFileSync(this.file('certify.sig')) };
    }
    return this.certifyRaw(key, signer, qualifyingData);
  }

  /** TPM2_Certify sent as client/tpm-certify.ts marshals it (tpm2-tools 5.4; tests call it on newer tools too). */
  certifyRaw(key: number, signer: number, qualifyingData: Buffer): { certInfo: Buffer; signature: Buffer } {
    try {
      execFileSync('tpm2_send', ['-o', this.file('certify.rsp')], { env: this.env, input: certifyCommand(key, signer, qualifyingData), stdio: ['pipe', 'ignore', 'pipe'] });
    } catch (err) {
      throw new TpmToolError('tpm2_send', ['TPM2_Certify'], String((err as { stderr?: string }).stderr ?? err));
    }
    return parseCertifyResponse(readFileSync(this.file('certify.rsp')));
  }

  /** The endorsement key of the TCG default RSA template (tpm2_createek), made persistent at `handle` unless it is there. */
  ensureEndorsementKey(handle: number): void {
    if (this.has(handle)) return;
    this.tool('tpm2_createek', '-c', hex(handle), '-G', 'rsa', '-u', this.file('ek.pub'));
  }

  /**
   * TPM2_ActivateCredential (Part 3, 12.5) of a CA's credential for `key`,
   * with the EK's policy (PolicySecret of the endorsement hierarchy): the
   * credential, or an error when this TPM cannot recover it.
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
        execFileSync('tpm2_flushcontext', [session], { env: this.env, stdio: 'ignore' });
      } catch {
        // A failed activation may have ended the session already.
      }
    }
    return readFileSync(this.file('credential.out'));
  }

  /** Removes the scratch files (public areas, digests, tickets: nothing secret). */
  close(): void {
    rmSync(this.work, { recursive: true, force: true });
  }
}
