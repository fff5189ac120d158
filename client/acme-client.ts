import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { request, type Agent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { calculateJwkThumbprint, exportJWK, FlattenedSign, type JWK } from 'jose';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert: string;
  keyChange: string;
  renewalInfo: string;
}

/** A failed ACME request, with the server's problem document. */
export class AcmeError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { type?: string; title?: string; detail?: string } | undefined,
  ) {
    super(`${status} ${problem?.type ?? ''}: ${problem?.detail ?? ''}`);
  }
}

/** What a test may change in a JWS: extra or replaced protected-header members, the key source, the signature. */
export interface SignOptions {
  header?: Record<string, unknown>;
  /** Sign with this key and embed its JWK (newAccount, revokeCert by the certificate key). */
  jwkKey?: KeyObject;
  alg?: string;
  tamper?: (jws: { protected: string; payload: string; signature: string }) => void;
}

const ALG_OF = (key: KeyObject): string => {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return details?.namedCurve === 'secp384r1' ? 'ES384' : 'ES256';
  return key.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'RS256';
};

/**
 * A small RFC 8555 client for the reference device: JWS by `jose`, nonces
 * from Replay-Nonce (a badNonce is retried once), HTTPS to one CA whose root
 * is trusted explicitly.
 */
export class AcmeClient {
  private nonce: string | undefined;
  directory!: Directory;
  accountUrl: string | undefined;

  constructor(
    readonly directoryUrl: string,
    readonly accountKey: KeyObject,
    private readonly ca: string,
    /** Name resolution for the CA's host (tests point a public name at loopback). */
    private readonly lookup?: LookupFunction,
    /** A keep-alive agent to share (benchmarks). */
    private readonly agent?: Agent,
  ) {}

  static generateAccountKey(): KeyObject {
    return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  }

  static loadAccountKey(pem: string): KeyObject {
    return createPrivateKey(pem);
  }

  async jwk(key: KeyObject = this.accountKey): Promise<JWK> {
    const { kty, crv, x, y, n, e } = await exportJWK(createPublicKey(key));
    return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined)) as JWK;
  }

  async thumbprint(): Promise<string> {
    return calculateJwkThumbprint(await this.jwk(), 'sha256');
  }

  async init(): Promise<void> {
    const answer = await this.get(this.directoryUrl);
    const directory = answer.json as Directory | undefined;
    if (answer.status !== 200 || typeof directory?.newOrder !== 'string') {
      const problem = answer.json as { type?: string; title?: string; detail?: string } | undefined;
      throw new AcmeError(answer.status, { ...problem, detail: `${this.directoryUrl} is not an ACME directory${problem?.detail ? ` (${problem.detail})` : ''}: devid-ca serves it at ${new URL(this.directoryUrl).origin}/acme/directory` });
    }
    this.directory = directory;
  }

  /** A plain HTTPS request to the CA. */
  send(method: string, url: string, body?: string, contentType?: string): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['content-type'] = contentType ?? 'application/jose+json';
      const req = request(url, { method, headers, ca: this.ca, ...(this.lookup ? { lookup: this.lookup } : {}), ...(this.agent ? { agent: this.agent } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const nonce = res.headers['replay-nonce'];
          if (typeof nonce === 'string') this.nonce = nonce;
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  get(url: string): Promise<HttpAnswer> {
    return this.send('GET', url);
  }

  async freshNonce(): Promise<string> {
    if (!this.nonce) await this.send('HEAD', this.directory.newNonce);
    const nonce = this.nonce!;
    this.nonce = undefined;
    return nonce;
  }

  /** The JWS for a POST to url, as RFC 8555 6.2 wants it (kid once there is an account). */
  async sign(url: string, payload: unknown, options: SignOptions = {}): Promise<string> {
    const key = options.jwkKey ?? this.accountKey;
    const header: Record<string, unknown> = { alg: options.alg ?? ALG_OF(key), nonce: await this.freshNonce(), url };
    if (options.jwkKey || !this.accountUrl) header.jwk = await this.jwk(key);
    else header.kid = this.accountUrl;
    Object.assign(header, options.header);
    for (const [name, value] of Object.entries(header)) if (value === undefined) delete header[name];
    const bytes = payload === '' ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    const jws = await new FlattenedSign(bytes).setProtectedHeader(header as { alg: string }).sign(key);
    const flat = jws as { protected: string; payload: string; signature: string };
    options.tamper?.(flat);
    return JSON.stringify(flat);
  }

  /** POST a signed request; retries once on badNonce (RFC 8555 6.5); throws AcmeError for 4xx/5xx. */
  async post(url: string, payload: unknown, options: SignOptions = {}): Promise<HttpAnswer> {
    let answer = await this.send('POST', url, await this.sign(url, payload, options));
    if (answer.status === 400 && answer.json?.type === 'urn:ietf:params:acme:error:badNonce' && !options.header?.nonce) {
      answer = await this.send('POST', url, await this.sign(url, payload, options));
    }
    if (answer.status >= 400) throw new AcmeError(answer.status, answer.json);
    return answer;
  }

  async newAccount(): Promise<string> {
    const answer = await this.post(this.directory.newAccount, { termsOfServiceAgreed: true });
    this.accountUrl = answer.headers.location as string;
    return this.accountUrl;
  }
}
