import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, webcrypto, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { AcmeClient, AcmeError } from './acme-client.ts';
import { buildAttestation, type AttestationInput } from './attestation.ts';
import type { FactoryKey } from './factory-key.ts';
import { writeAtomically } from './files.ts';

/** The files a device keeps in its state directory. */
export const FILES = {
  birth: 'birth.pem',
  accountKey: 'account-key.pem',
  signCount: 'sign-count',
  certificate: 'cert.pem',
  key: 'key.pem',
  /** A renewal under way: its new key (for a key in hardware: its reference) and its order, kept until the certificate is written, so a lost answer can be resumed. */
  pendingKey: 'pending-key.pem',
  pendingOrder: 'pending-order',
} as const;

export interface EnrollOptions {
  /** Attest with the current operational certificate and key (a class with staged renewal). */
  staged?: boolean;
  /** Name the current certificate in `replaces` (default: whenever there is one). */
  replaces?: boolean | string;
  firmware?: { version: string; digest: Buffer };
  /** Do not write the new certificate and key (tests). */
  keepFiles?: boolean;
  /** Test hooks: a chosen new key, CSR key, x5c, counter, or changes to the attestation. */
  newKey?: KeyObject;
  csrKey?: KeyObject;
  /** The CSR subject (the CA accepts only CN=<serial>, or none). */
  csrSubject?: string;
  x5c?: Buffer[];
  signCount?: number;
  attestation?: AttestationInput['override'];
  /** Builds the attestation object in another format than devid (tests of format plug-ins). */
  buildAttestation?: (input: AttestationInput) => Promise<Buffer>;
  /** Runs between the order and the attestation (tests: revoke something meanwhile). */
  beforeAttestation?: () => Promise<void>;
  /** Runs between the attestation and the finalize (tests: an answer lost there). */
  beforeFinalize?: () => Promise<void>;
}

/** A new operational key that hardware (a TPM) made and keeps. */
export interface HeldKey {
  /** What the device keeps to find it again (a TPM persistent handle). */
  ref: string;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  /** A PKCS#10 request for the key, signed by it (base64url DER). */
  csr(subject: string): Promise<string>;
}

/**
 * Hardware that makes the device's operational keys, keeps them, and
 * attests each one in its own format (client/tpm-device.ts: a TPM and the
 * `tpm` format). Without it, keys are software keys in PKCS#8 files and the
 * factory key attests in the `devid` format.
 */
export interface KeyHardware {
  create(): Promise<HeldKey>;
  /** The key a renewal under way kept (its ref). */
  open(ref: string): Promise<HeldKey>;
  /** The attestation object for `key`, in the hardware's format. */
  attest(key: HeldKey, input: AttestationInput): Promise<Buffer>;
  /** `ref` is the current operational key from now on: recorded before its certificate is written. */
  keep(ref: string): Promise<void>;
  /** Removes the keys that are not the current one, once its certificate is written (the replaced key, a key of a renewal that failed). */
  retire(): Promise<void>;
}

export interface EnrollResult {
  order: Record<string, unknown>;
  orderUrl: string;
  /** The certificate and the issuing intermediate, PEM. */
  chainPem: string;
  certificate: x509.X509Certificate;
  /** The new key as PKCS#8 PEM; for a key in hardware its reference. */
  keyPem: string;
}

export interface RenewalWindow {
  start: Date;
  end: Date;
  retryAfterSeconds: number;
}

function pemCertificates(pem: string): x509.X509Certificate[] {
  return pem.split(/(?<=-----END CERTIFICATE-----)/).map((part) => part.trim()).filter(Boolean).map((part) => new x509.X509Certificate(part));
}

/** A PKCS#10 request for the new key, asking for nothing but the CA decides anyway: CN=<serial>. */
async function csrFor(key: KeyObject, subject: string): Promise<string> {
  const algorithm = { name: 'ECDSA', namedCurve: key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256' };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', createPublicKey(key).export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys: { privateKey, publicKey }, signingAlgorithm: { name: 'ECDSA', hash: algorithm.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256' } });
  return Buffer.from(csr.rawData).toString('base64url');
}

/** RFC 9773 certID of a certificate: base64url(AKI keyIdentifier) "." base64url(serial DER contents). */
export function certIdOf(certificate: x509.X509Certificate): string {
  const aki = certificate.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId!;
  const serial = Buffer.from(certificate.serialNumber, 'hex');
  const contents = serial[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial;
  return `${Buffer.from(aki, 'hex').toString('base64url')}.${contents.toString('base64url')}`;
}

/**
 * The reference device (docs/device-makers/protocol.md): a factory key, a birth certificate
 * and a state directory; enrolls and renews over ACME with device-attest-01,
 * naming the certificate each renewal replaces, and writes its operational
 * certificate chain and key atomically.
 */
export class Device {
  constructor(
    readonly serial: string,
    readonly dir: string,
    readonly factoryKey: FactoryKey,
    readonly acme: AcmeClient,
    /** The CA's public host name: the rpId the attestation binds to. */
    readonly rpId: string,
    /** Where operational keys are made and attested when not in software (a TPM). */
    readonly hardware?: KeyHardware,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  static accountKey(dir: string): KeyObject {
    const path = join(dir, FILES.accountKey);
    if (existsSync(path)) return AcmeClient.loadAccountKey(readFileSync(path, 'utf8'));
    const key = AcmeClient.generateAccountKey();
    writeAtomically(path, key.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    return key;
  }

  path(file: keyof typeof FILES): string {
    return join(this.dir, FILES[file]);
  }

  birthCertificate(): x509.X509Certificate {
    return this.birthChain()[0]!;
  }

  /** birth.pem: the birth certificate, then (for a device born elsewhere) its manufacturer's intermediates: the x5c of an attestation. */
  birthChain(): x509.X509Certificate[] {
    return pemCertificates(readFileSync(this.path('birth'), 'utf8'));
  }

  /** The current operational certificate, or undefined before the first enrollment. */
  current(): x509.X509Certificate | undefined {
    return existsSync(this.path('certificate')) ? pemCertificates(readFileSync(this.path('certificate'), 'utf8'))[0] : undefined;
  }

  /** The counter a secure element would keep: strictly increasing, kept on disk before it is used. */
  nextSignCount(): number {
    const path = this.path('signCount');
    const next = (existsSync(path) ? Number(readFileSync(path, 'utf8')) : 0) + 1;
    writeAtomically(path, `${next}\n`, 0o600);
    return next;
  }

  private async ready(): Promise<void> {
    if (!this.acme.directory) await this.acme.init();
    if (!this.acme.accountUrl) await this.acme.newAccount();
  }

  /**
   * The successor of the current certificate that the CA issued but this
   * device never received (the answer was lost: a server killed, a network
   * cut after the commit), found among this account's valid orders; or
   * undefined. Its key was never kept, so the device renews it at once.
   */
  async lostSuccessor(): Promise<x509.X509Certificate | undefined> {
    const current = this.current();
    if (!current) return undefined;
    await this.ready();
    const currentId = certIdOf(current);
    const account = (await this.acme.post(this.acme.accountUrl!, '')).json as { orders?: string };
    if (!account.orders) return undefined;
    const orders = ((await this.acme.post(account.orders, '')).json as { orders: string[] }).orders;
    for (const url of [...orders].reverse()) {
      const order = (await this.acme.post(url, '')).json as { status: string; replaces?: string; certificate?: string };
      if (order.status === 'valid' && order.replaces === currentId && order.certificate) return pemCertificates((await this.acme.post(order.certificate, '')).text)[0];
    }
    return undefined;
  }

  /** One enrollment (or renewal): order, attestation, finalize, download. */
  async enroll(options: EnrollOptions = {}): Promise<EnrollResult> {
    try {
      return await this.enrollOnce(options);
    } catch (err) {
      if (options.replaces !== undefined || !(err instanceof AcmeError) || !err.problem?.type?.endsWith(':alreadyReplaced')) throw err;
      // An earlier renewal of this device holds the claim: finish it with the key it kept.
      const resumed = await this.resumePending();
      if (resumed) return resumed;
      // A renewal the CA already answered, to a device that did not hear it and kept no key: renew the lost successor instead.
      const lost = await this.lostSuccessor();
      if (!lost) throw err;
      return this.enrollOnce({ ...options, replaces: certIdOf(lost) });
    }
  }

  /**
   * Finishes the renewal whose answer was lost after its attestation: its
   * order, finalized with the new key kept in `pending-key.pem` (or
   * downloaded if the CA finished it); undefined when there is none to finish.
   */
  async resumePending(): Promise<EnrollResult | undefined> {
    if (!existsSync(this.path('pendingKey')) || !existsSync(this.path('pendingOrder'))) return undefined;
    await this.ready();
    const keyPem = readFileSync(this.path('pendingKey'), 'utf8');
    const orderUrl = readFileSync(this.path('pendingOrder'), 'utf8').trim();
    const answer = await this.acme.post(orderUrl, '').catch(() => undefined);
    let order = answer?.json as { status?: string; finalize?: string; certificate?: string } | undefined;
    if (order?.status === 'ready') {
      const csr = this.hardware ? await (await this.hardware.open(keyPem.trim())).csr(`CN=${this.serial}`) : await csrFor(createPrivateKey(keyPem), `CN=${this.serial}`);
      order = (await this.acme.post(order.finalize!, { csr })).json;
    }
    for (let polls = 0; order?.status === 'processing' && polls < 20; polls += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      order = (await this.acme.post(orderUrl, '')).json;
    }
    if (order?.status !== 'valid' || !order.certificate) {
      this.forgetPending();
      return undefined;
    }
    const chainPem = (await this.acme.post(order.certificate, '')).text;
    await this.keep(keyPem, chainPem);
    return { order: order as Record<string, unknown>, orderUrl, chainPem, certificate: pemCertificates(chainPem)[0]!, keyPem };
  }

  private async keep(keyPem: string, chainPem: string): Promise<void> {
    if (this.hardware) await this.hardware.keep(keyPem.trim());
    else writeAtomically(this.path('key'), keyPem, 0o600);
    writeAtomically(this.path('certificate'), chainPem);
    this.forgetPending();
    // Only now can the replaced key go: until the new certificate is written, the old one is the device's.
    await this.hardware?.retire();
  }

  private forgetPending(): void {
    rmSync(this.path('pendingKey'), { force: true });
    rmSync(this.path('pendingOrder'), { force: true });
  }

  private async enrollOnce(options: EnrollOptions): Promise<EnrollResult> {
    await this.ready();
    const current = this.current();
    const replaces = typeof options.replaces === 'string' ? options.replaces : options.replaces !== false && current ? certIdOf(current) : undefined;
    const ordered = await this.acme.post(this.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: this.serial }], ...(replaces ? { replaces } : {}) });
    const orderUrl = ordered.headers.location as string;
    const authz = (await this.acme.post(ordered.json.authorizations[0], '')).json;
    const challenge = authz.challenges.find((c: { type: string }) => c.type === 'device-attest-01');
    await options.beforeAttestation?.();
    if (this.hardware && !options.newKey) return this.enrollHeld(options, this.hardware, { ordered, orderUrl, challenge, current });
    const newKey = options.newKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const staged = options.staged === true && current !== undefined;
    const operationalKey = staged ? createPrivateKey(readFileSync(this.path('key'), 'utf8')) : undefined;
    const signer = operationalKey ? { coseAlg: -7, sign: async (data: Buffer) => nodeSign('sha256', data, operationalKey) } : this.factoryKey;
    const attObj = await (options.buildAttestation ?? buildAttestation)({
      factoryKey: signer,
      x5c: options.x5c ?? (staged ? [current!] : this.birthChain()).map((c) => Buffer.from(c.rawData)),
      keyAuthorization: `${challenge.token}.${await this.acme.thumbprint()}`,
      rpId: this.rpId,
      newKeySpki: createPublicKey(newKey).export({ format: 'der', type: 'spki' }),
      signCount: options.signCount ?? this.nextSignCount(),
      ...(options.firmware ? { firmware: options.firmware } : {}),
      ...(options.attestation ? { override: options.attestation } : {}),
    });
    const keyPem = newKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    // Kept before the attestation commits this key to the order: an answer lost from here on can be resumed.
    const resumable = !options.keepFiles && !options.newKey && !options.csrKey;
    if (resumable) {
      writeAtomically(this.path('pendingKey'), keyPem, 0o600);
      writeAtomically(this.path('pendingOrder'), `${orderUrl}\n`);
    }
    await this.acme.post(challenge.url, { attObj: attObj.toString('base64url') });
    await options.beforeFinalize?.();
    return this.finish(options, ordered.json.finalize, orderUrl, await csrFor(options.csrKey ?? newKey, options.csrSubject ?? `CN=${this.serial}`), keyPem);
  }

  /** The enrollment of a key made in hardware, attested in the hardware's format. */
  private async enrollHeld(
    options: EnrollOptions, hardware: KeyHardware,
    open: { ordered: { json: { finalize: string } }; orderUrl: string; challenge: { url: string; token: string }; current: x509.X509Certificate | undefined },
  ): Promise<EnrollResult> {
    if (options.staged) throw new Error('staged renewal attests with the current operational key: a device whose keys are in a TPM attests with its attestation key only');
    const held = await hardware.create();
    const attObj = await (options.buildAttestation ?? ((input) => hardware.attest(held, input)))({
      factoryKey: this.factoryKey,
      x5c: options.x5c ?? this.birthChain().map((c) => Buffer.from(c.rawData)),
      keyAuthorization: `${open.challenge.token}.${await this.acme.thumbprint()}`,
      rpId: this.rpId,
      newKeySpki: held.spki,
      // The TPM's own clock is the counter of the tpm format.
      signCount: options.signCount ?? 0,
      ...(options.firmware ? { firmware: options.firmware } : {}),
      ...(options.attestation ? { override: options.attestation } : {}),
    });
    if (!options.keepFiles) {
      writeAtomically(this.path('pendingKey'), `${held.ref}\n`, 0o600);
      writeAtomically(this.path('pendingOrder'), `${open.orderUrl}\n`);
    }
    await this.acme.post(open.challenge.url, { attObj: attObj.toString('base64url') });
    await options.beforeFinalize?.();
    return this.finish(options, open.ordered.json.finalize, open.orderUrl, await held.csr(options.csrSubject ?? `CN=${this.serial}`), held.ref);
  }

  /** finalize with the CSR, wait while the order is processing, download and keep the certificate. */
  private async finish(options: EnrollOptions, finalizeUrl: string, orderUrl: string, csr: string, keyPem: string): Promise<EnrollResult> {
    let order = (await this.acme.post(finalizeUrl, { csr })).json;
    for (let polls = 0; order.status === 'processing' && polls < 20; polls += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      order = (await this.acme.post(orderUrl, '')).json;
    }
    if (order.status !== 'valid') throw new AcmeError(400, order.error);
    const chainPem = (await this.acme.post(order.certificate, '')).text;
    if (!options.keepFiles) await this.keep(keyPem, chainPem);
    return { order, orderUrl, chainPem, certificate: pemCertificates(chainPem)[0]!, keyPem };
  }

  /** ACME revokeCert (RFC 8555 7.6) of the current operational certificate, by the account that ordered it. */
  async revoke(reason: number): Promise<x509.X509Certificate> {
    const current = this.current();
    if (!current) throw new Error('this device has no operational certificate to revoke');
    await this.ready();
    await this.acme.post(this.acme.directory.revokeCert, { certificate: Buffer.from(current.rawData).toString('base64url'), reason });
    return current;
  }

  /** RFC 9773: when the CA suggests renewing the current certificate. */
  async renewalWindow(): Promise<RenewalWindow | undefined> {
    const current = this.current();
    if (!current) return undefined;
    if (!this.acme.directory) await this.acme.init();
    const answer = await this.acme.get(`${this.acme.directory.renewalInfo}/${certIdOf(current)}`);
    if (answer.status !== 200) throw new AcmeError(answer.status, answer.json);
    const window = answer.json.suggestedWindow;
    return { start: new Date(window.start), end: new Date(window.end), retryAfterSeconds: Number(answer.headers['retry-after'] ?? 3600) };
  }

  /**
   * Renews when due: at a random moment of the suggested window (RFC 9773
   * 4.2), or now when the window has begun or there is no certificate yet.
   * Returns the new certificate, or the time to ask again.
   */
  async renewIfDue(now = new Date(), options: EnrollOptions = {}): Promise<{ renewed: EnrollResult } | { next: Date }> {
    const window = await this.renewalWindow();
    if (window) {
      const chosen = new Date(window.start.getTime() + Math.random() * Math.max(0, window.end.getTime() - window.start.getTime()));
      const askAgain = new Date(now.getTime() + window.retryAfterSeconds * 1000);
      if (chosen > now) return { next: chosen < askAgain ? chosen : askAgain };
    }
    return { renewed: await this.enroll(options) };
  }
}
