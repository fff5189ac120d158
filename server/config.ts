import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { extensionOidProblem } from '../ca/oid.ts';
import { GOOGLE_STATUS_URL } from '../pki/attestation/android-key/status-list.ts';
import type { CrlPolicy } from '../publish/crl-publisher.ts';
import { OCSP_CACHE_ENTRIES } from '../publish/ocsp-validity.ts';
import { durationMs } from '../registry/durations.ts';
import { COSIGNATURE_TYPE, parseVerifierKey } from '../registry/tlog/signed-note.ts';
import type { WitnessEndpoint } from '../registry/tlog/witnesses.ts';
import { defaultSoftHsmModule, softHsmLayout, type SoftHsmLayout } from '../hsm/softhsm-layout.ts';
import type { DatabaseLocation } from '../store/database.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Where the user PIN comes from: never from the command line, never logged. */
export type PinSource =
  /** DEVID_PKCS11_PIN, held in a closure so that logging the config cannot print it. */
  | { kind: 'env'; read: () => string }
  | { kind: 'file'; path: string }
  /** The SoftHSM default: generated at init, kept in the data directory (0600). */
  | { kind: 'generated'; path: string };

export interface Pkcs11Config {
  modulePath: string;
  tokenLabel: string;
  pin: PinSource;
  /** Set when devid-ca manages SoftHSM itself (the embedded default). */
  softhsm?: SoftHsmLayout & { ownConfig: boolean };
}

/** The whole configuration (docs/operators/configuration.md), parsed and validated once at start-up. */
export interface Config {
  dataDir: string;
  database: DatabaseLocation;
  pkcs11: Pkcs11Config;
  listen: ListenAddress;
  httpListen: ListenAddress;
  publicHost: string;
  httpBaseUrl: string;
  trustDomain: string;
  /** Which identity values the environment set, rather than defaulted (init records them; serve warns on drift). */
  explicit: Record<keyof PublicIdentity, boolean>;
  predecessorOid?: string;
  /** DEVID_ASSIGNER_OID: the assigner a permanent-identifier may name (docs/device-makers/protocol.md#identifiers). */
  assignerOid?: string;
  /** PostgreSQL connection and statement timeout (DEVID_DB_TIMEOUT_MS). */
  databaseTimeoutMs: number;
  /** CRL validity (DEVID_CRL_NEXT_UPDATE) and how long expired certificates stay listed (DEVID_CRL_EXPIRED_GRACE). */
  crl: CrlPolicy;
  /** OCSP responses kept in memory at most (DEVID_OCSP_CACHE_ENTRIES). */
  ocspCacheEntries: number;
  /** DEVID_METRICS_LISTEN: /metrics on a listener of its own instead of the plain-HTTP one. */
  metricsListen?: ListenAddress;
  /** DEVID_MANUFACTURER_CRL_POLL: how often other manufacturers' CRLs are read from their URLs (docs/operators/manufacturers.md). */
  manufacturerCrlPollMs: number;
  /** DEVID_ANDROID_STATUS_URL: Google's Android attestation status list, read by android-key attestations (docs/operators/manufacturers.md). */
  androidStatusUrl: string;
  /** DEVID_ACME_ANONYMOUS_RATE: nonces and new accounts per second one client address may get before it proves anything (burst: 10 s worth). */
  acmeAnonymousPerSecond: number;
  /** DEVID_TLS_CERT and DEVID_TLS_KEY: the operator's HTTPS certificate and key, served instead of the one devid-ca issues itself. */
  tls?: TlsFiles;
  /** DEVID_WITNESSES: the witnesses each new checkpoint of the Merkle log goes to (docs/operators/witnesses.md). */
  witnesses?: WitnessEndpoint[];
}

export interface TlsFiles {
  cert: string;
  key: string;
}

/** `90s`, `15m`, `24h`, `7d`, within [min, max] milliseconds. */
export function parseDuration(name: string, raw: string, minMs: number, maxMs: number): number {
  const ms = durationMs(raw);
  if (ms === undefined || ms < minMs || ms > maxMs) throw new ConfigError(`${name}="${raw}" must be a duration such as 24h or 7d, from ${minMs / 1000} s to ${maxMs / 86_400_000} days`);
  return ms;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === '' ? undefined : v;
}

export function parseListen(name: string, raw: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(raw);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new ConfigError(`${name}="${raw}" is not host:port (for example 127.0.0.1:8443 or [::1]:8443; port 0 picks a free port)`);
  }
  return { host: match[1] ?? match[2]!, port };
}

function formatHostPort(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parseHost(name: string, raw: string): string {
  if (isIP(raw) || HOSTNAME.test(raw)) return raw.toLowerCase();
  throw new ConfigError(`${name}="${raw}" is not a DNS name or IP address`);
}

/**
 * The trust domain when DEVID_PUBLIC_HOST is no domain name (localhost, an
 * address): a SPIFFE URI's host must be a fully qualified domain name for
 * RFC 5280 (4.2.1.6), and `.internal` is reserved for private use.
 */
export const DEFAULT_TRUST_DOMAIN = 'devid.internal';

/** A name of two labels or more whose last label is not numeric: what RFC 5280 accepts as a URI host, and not an address. */
export function isDomainName(host: string): boolean {
  return isIP(host) === 0 && HOSTNAME.test(host) && host.includes('.') && !/^\d+$/.test(host.split('.').at(-1)!);
}

/** The SPIFFE trust domain (spiffe://<trust domain>/device/<serial>): a fully qualified domain name, lower case. */
export function parseTrustDomain(raw: string, name = 'DEVID_TRUST_DOMAIN'): string {
  if (!isDomainName(raw)) {
    throw new ConfigError(`${name}="${raw}" must be a fully qualified domain name such as devices.example.com (not a single label like localhost, nor an address): the SPIFFE URI in every operational certificate carries it, and RFC 5280 needs a URI's host to be one`);
  }
  return raw.toLowerCase();
}

/** DEVID_ANDROID_STATUS_URL: an http(s) URL without user or fragment (a mirror of Google's list may be plain http on an internal network). */
function parseStatusUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`DEVID_ANDROID_STATUS_URL="${raw}" is not a URL (leave it unset for ${GOOGLE_STATUS_URL})`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.username || url.hash) throw new ConfigError('DEVID_ANDROID_STATUS_URL must be an http:// or https:// URL without user or fragment');
  return url.toString();
}

export function parseBaseUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name}="${raw}" is not a URL (for example http://pki.example.com)`);
  }
  if (url.protocol !== 'http:') {
    throw new ConfigError(`${name} must be a plain http:// URL: CRL and OCSP are fetched without TLS (RFC 5280, RFC 6960)`);
  }
  if (url.search || url.hash || url.username) throw new ConfigError(`${name} must not carry a query, fragment or user`);
  return url.toString().replace(/\/+$/, '');
}

/** Reads the environment into one validated Config; every failure names the variable to change. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const dataDir = resolve(cwd, value(env, 'DEVID_DATA_DIR') ?? './var');

  const databaseUrl = value(env, 'DEVID_DATABASE_URL');
  let database: DatabaseLocation = { kind: 'pglite', dir: join(dataDir, 'db') };
  if (databaseUrl) {
    if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
      throw new ConfigError('DEVID_DATABASE_URL must be a postgres:// URL; leave it unset for the embedded PGlite database');
    }
    database = { kind: 'postgres', url: databaseUrl };
  }
  const ownerUrl = value(env, 'DEVID_DATABASE_OWNER_URL');
  if (ownerUrl) {
    if (database.kind !== 'postgres') throw new ConfigError('DEVID_DATABASE_OWNER_URL needs DEVID_DATABASE_URL: the roles are PostgreSQL\'s (PGlite has one user)');
    if (!/^postgres(ql)?:\/\//.test(ownerUrl)) throw new ConfigError('DEVID_DATABASE_OWNER_URL must be a postgres:// URL');
    database = { ...database, ownerUrl };
  }

  const customModule = value(env, 'DEVID_PKCS11_MODULE');
  const modulePath = customModule ?? defaultSoftHsmModule();
  const pinFile = value(env, 'DEVID_PKCS11_PIN_FILE');
  let pin: PinSource;
  const envPin = value(env, 'DEVID_PKCS11_PIN');
  if (envPin !== undefined) pin = { kind: 'env', read: () => envPin };
  else if (pinFile) pin = { kind: 'file', path: resolve(cwd, pinFile) };
  else if (customModule && !/softhsm/i.test(customModule)) {
    throw new ConfigError('DEVID_PKCS11_MODULE is set: also set DEVID_PKCS11_PIN or DEVID_PKCS11_PIN_FILE with the token user PIN');
  } else pin = { kind: 'generated', path: softHsmLayout(dataDir).userPinFile };
  const usesSoftHsm = !customModule || /softhsm/i.test(customModule);
  const pkcs11: Pkcs11Config = { modulePath, tokenLabel: value(env, 'DEVID_PKCS11_TOKEN') ?? 'devid-ca', pin };
  if (usesSoftHsm) {
    const layout = softHsmLayout(dataDir);
    const userConf = value(env, 'SOFTHSM2_CONF');
    pkcs11.softhsm = { ...layout, confPath: userConf ? resolve(cwd, userConf) : layout.confPath, ownConfig: !userConf };
  }
  if (customModule && !existsSync(customModule)) {
    throw new ConfigError(`DEVID_PKCS11_MODULE="${customModule}" does not exist`);
  }

  const listen = parseListen('DEVID_LISTEN', value(env, 'DEVID_LISTEN') ?? '127.0.0.1:8443');
  const httpListen = parseListen('DEVID_HTTP_LISTEN', value(env, 'DEVID_HTTP_LISTEN') ?? '127.0.0.1:8080');
  const publicHost = parseHost('DEVID_PUBLIC_HOST', value(env, 'DEVID_PUBLIC_HOST') ?? 'localhost');
  const baseUrl = value(env, 'DEVID_HTTP_BASE_URL');
  if (!baseUrl && (isUnspecified(httpListen.host) || httpListen.port === 0)) {
    throw new ConfigError(`DEVID_HTTP_LISTEN=${formatHostPort(httpListen)} is no address a client can use: set DEVID_HTTP_BASE_URL (for example http://pki.example.com), which every certificate carries`);
  }
  const httpBaseUrl = parseBaseUrl('DEVID_HTTP_BASE_URL', baseUrl ?? `http://${formatHostPort(httpListen)}`);
  const trustDomainRaw = value(env, 'DEVID_TRUST_DOMAIN');
  const trustDomain = trustDomainRaw ? parseTrustDomain(trustDomainRaw) : isDomainName(publicHost) ? publicHost : DEFAULT_TRUST_DOMAIN;

  const predecessorOid = value(env, 'DEVID_PREDECESSOR_OID');
  if (predecessorOid) {
    const problem = extensionOidProblem(predecessorOid);
    if (problem) throw new ConfigError(`DEVID_PREDECESSOR_OID: ${problem}`);
  }
  // Carried in certificates (PermanentIdentifier's assigner): the same arc rules as an extension OID.
  const assignerOid = value(env, 'DEVID_ASSIGNER_OID');
  if (assignerOid) {
    const problem = extensionOidProblem(assignerOid);
    if (problem) throw new ConfigError(`DEVID_ASSIGNER_OID: ${problem}`);
  }

  const timeout = value(env, 'DEVID_DB_TIMEOUT_MS') ?? '10000';
  const databaseTimeoutMs = Number(timeout);
  if (!/^\d+$/.test(timeout) || databaseTimeoutMs < 100 || databaseTimeoutMs > 600_000) {
    throw new ConfigError(`DEVID_DB_TIMEOUT_MS="${timeout}" must be a number of milliseconds from 100 to 600000`);
  }

  const crl: CrlPolicy = {
    validityMs: parseDuration('DEVID_CRL_NEXT_UPDATE', value(env, 'DEVID_CRL_NEXT_UPDATE') ?? '24h', 5 * 60_000, 30 * 86_400_000),
    expiredGraceMs: parseDuration('DEVID_CRL_EXPIRED_GRACE', value(env, 'DEVID_CRL_EXPIRED_GRACE') ?? '7d', 0, 3650 * 86_400_000),
    shards: parseCrlShards(value(env, 'DEVID_CRL_SHARDS')),
  };

  const manufacturerCrlPollMs = parseDuration('DEVID_MANUFACTURER_CRL_POLL', value(env, 'DEVID_MANUFACTURER_CRL_POLL') ?? '1h', 1000, 7 * 86_400_000);
  const androidStatusUrl = parseStatusUrl(value(env, 'DEVID_ANDROID_STATUS_URL') ?? GOOGLE_STATUS_URL);
  const anonymousRate = value(env, 'DEVID_ACME_ANONYMOUS_RATE') ?? '20';
  const acmeAnonymousPerSecond = Number(anonymousRate);
  if (!/^\d+(\.\d+)?$/.test(anonymousRate) || acmeAnonymousPerSecond < 0.1 || acmeAnonymousPerSecond > 100_000) {
    throw new ConfigError(`DEVID_ACME_ANONYMOUS_RATE="${anonymousRate}" must be a number of requests per second from 0.1 to 100000`);
  }
  const cacheRaw = value(env, 'DEVID_OCSP_CACHE_ENTRIES') ?? String(OCSP_CACHE_ENTRIES);
  const ocspCacheEntries = Number(cacheRaw);
  if (!/^\d+$/.test(cacheRaw) || ocspCacheEntries < 1000 || ocspCacheEntries > 50_000_000) {
    throw new ConfigError(`DEVID_OCSP_CACHE_ENTRIES="${cacheRaw}" must be a number of responses from 1000 to 50000000`);
  }
  const metricsRaw = value(env, 'DEVID_METRICS_LISTEN');
  const metricsListen = metricsRaw ? parseListen('DEVID_METRICS_LISTEN', metricsRaw) : undefined;

  const tls = tlsFiles(env, cwd);
  const witnesses = parseWitnesses(value(env, 'DEVID_WITNESSES'));

  const explicit = {
    publicHost: value(env, 'DEVID_PUBLIC_HOST') !== undefined,
    trustDomain: value(env, 'DEVID_TRUST_DOMAIN') !== undefined,
    httpBaseUrl: baseUrl !== undefined,
  };
  return {
    dataDir, database, pkcs11, listen, httpListen, publicHost, httpBaseUrl, trustDomain, explicit, databaseTimeoutMs, crl, manufacturerCrlPollMs, androidStatusUrl, acmeAnonymousPerSecond, ocspCacheEntries,
    ...(metricsListen ? { metricsListen } : {}),
    ...(tls ? { tls } : {}),
    ...(witnesses.length > 0 ? { witnesses } : {}),
    ...(predecessorOid ? { predecessorOid } : {}),
    ...(assignerOid ? { assignerOid } : {}),
  };
}

/**
 * DEVID_WITNESSES: `<submission URL> <verifier key>`, comma-separated: each
 * witness's URL prefix (http or https; add-checkpoint is appended) and its
 * Ed25519 cosignature key (type 0x04) as the witness prints it.
 */
export function parseWitnesses(raw: string | undefined): WitnessEndpoint[] {
  if (!raw) return [];
  const witnesses = raw.split(',').map((item) => item.trim()).filter((item) => item !== '').map((item): WitnessEndpoint => {
    const [urlText, keyText, ...rest] = item.split(/\s+/);
    let url: URL;
    try {
      url = new URL(urlText!);
    } catch {
      throw new ConfigError(`DEVID_WITNESSES: "${urlText}" is not a URL; each witness is "<URL> <verifier key>", separated by commas`);
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.username || url.password || url.search || url.hash) throw new ConfigError(`DEVID_WITNESSES: "${urlText}" must be an http:// or https:// URL without user, query or fragment`);
    if (keyText && Buffer.from(keyText.split('+')[2] ?? '', 'base64')[0] === 0x06) {
      throw new ConfigError(`DEVID_WITNESSES: the key of ${urlText} is an ML-DSA-44 cosignature key (type 0x06), which this Node.js cannot verify: give the witness's Ed25519 key (type 0x04)`);
    }
    const key = keyText && rest.length === 0 ? parseVerifierKey(keyText, [COSIGNATURE_TYPE]) : undefined;
    if (!key) throw new ConfigError(`DEVID_WITNESSES: after ${urlText}, "${keyText ?? ''}" is not a witness verifier key <name>+<hash>+<base64> of type 0x04 (Ed25519 cosignature), as "devid-ca witness init" prints it`);
    return { url: url.toString().replace(/\/+$/, ''), key };
  });
  const names = witnesses.map((w) => w.key.name);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice) throw new ConfigError(`DEVID_WITNESSES names the witness ${twice} twice`);
  return witnesses;
}

/** DEVID_TLS_CERT with DEVID_TLS_KEY, both or neither; serve reads and checks the files. */
function tlsFiles(env: Env, cwd: string): TlsFiles | undefined {
  const cert = value(env, 'DEVID_TLS_CERT');
  const key = value(env, 'DEVID_TLS_KEY');
  if (!cert && !key) return undefined;
  if (!cert || !key) {
    const [set, unset] = cert ? ['DEVID_TLS_CERT', 'DEVID_TLS_KEY'] : ['DEVID_TLS_KEY', 'DEVID_TLS_CERT'];
    throw new ConfigError(`${set} is set without ${unset}: give both the HTTPS certificate and its key, or neither (devid-ca then serves a certificate of its own for DEVID_PUBLIC_HOST)`);
  }
  return { cert: resolve(cwd, cert), key: resolve(cwd, key) };
}

/** The three values certificates carry for ever (docs/reference/certificates.md). */
export interface PublicIdentity {
  publicHost: string;
  trustDomain: string;
  httpBaseUrl: string;
}

function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

function isLoopbackHost(host: string): boolean {
  return isUnspecified(host) || host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\./.test(host);
}

/** Warnings for loopback values that would be baked into certificates. */
export function loopbackWarnings(identity: PublicIdentity): string[] {
  const warnings: string[] = [];
  if (isLoopbackHost(identity.publicHost)) warnings.push(`DEVID_PUBLIC_HOST is ${identity.publicHost}: devices elsewhere cannot reach or attest to it`);
  const baseHost = new URL(identity.httpBaseUrl).hostname.replace(/^\[|\]$/g, '');
  if (!isDomainName(identity.trustDomain)) {
    warnings.push(`the trust domain ${identity.trustDomain} is no fully qualified domain name: the SPIFFE URIs of operational certificates are not valid RFC 5280 URIs; set one with "devid-ca identity set --trust-domain <name>"`);
  }
  if (isLoopbackHost(baseHost)) warnings.push(`DEVID_HTTP_BASE_URL is ${identity.httpBaseUrl}: certificates will point CRL and OCSP clients at a loopback address`);
  return warnings;
}

/** DEVID_CRL_SHARDS: `operational=64,factory=8`, or one number for the operational CA; shards of each intermediate's CRL for new certificates. */
function parseCrlShards(raw: string | undefined): CrlPolicy['shards'] {
  if (raw === undefined || raw.trim() === '') return {};
  const shards: CrlPolicy['shards'] = {};
  for (const item of raw.split(',')) {
    const match = /^\s*(?:(operational|factory)=)?(\d{1,4})\s*$/.exec(item);
    const count = match ? Number(match[2]) : NaN;
    if (!match || count > 1024) throw new ConfigError(`DEVID_CRL_SHARDS="${raw}" must be like "operational=64,factory=8" (0 to 1024 shards each)`);
    shards[(match[1] ?? 'operational') as 'operational' | 'factory'] = count;
  }
  return shards;
}
