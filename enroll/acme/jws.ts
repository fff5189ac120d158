import type { KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, flattenedVerify, type FlattenedJWS } from 'jose';
import { DomainError } from '../../errors/domain-error.ts';
import type { AcmeAccountRecord } from '../../store/types.ts';
import { checkPublicKey, spkiOfJwk, type CheckedKey } from '../../pki/public-key.ts';
import { AcmeProblem, acmeProblem } from './problems.ts';
import type { AcmeUrls } from './urls.ts';

/** RFC 8555 6.2: asymmetric algorithms only; "none" and MACs are refused. docs/device-makers/protocol.md names these four. */
export const JWS_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256'] as const;
type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

const FITS: Record<JwsAlgorithm, (key: CheckedKey) => boolean> = {
  ES256: (k) => k.curve === 'P-256',
  ES384: (k) => k.curve === 'P-384',
  EdDSA: (k) => k.kind === 'ed25519',
  RS256: (k) => k.kind === 'rsa',
};

export interface ProtectedHeader {
  alg: JwsAlgorithm;
  nonce: string;
  url: string;
  jwk?: Record<string, unknown>;
  kid?: string;
}

/** Which key a resource accepts (RFC 8555 6.2): an embedded JWK (newAccount, revokeCert by the certificate's key) or an account URL. */
export type KeySource = 'jwk' | 'kid' | 'jwk-or-kid';

export interface VerifiedJws {
  header: ProtectedHeader;
  /** The payload bytes; empty for POST-as-GET. */
  payload: Uint8Array;
  /** The key that signed. */
  key: KeyObject;
  /** With an embedded JWK: the key as sent and its RFC 7638 thumbprint. */
  jwk?: { jwk: JsonWebKey; thumbprint: string; checked: CheckedKey };
  /** With a kid: the valid account it names. */
  account?: AcmeAccountRecord;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/**
 * Imported account keys by thumbprint: importing a JWK costs more than
 * verifying with it. `verifier` is the same key as a WebCrypto key: jose
 * turns a KeyObject into one on every verification otherwise (an export and
 * an import, more than the signature check itself).
 */
const keyCache = new Map<string, { key: KeyObject; verifier: CryptoKey; checked: CheckedKey }>();
const KEY_CACHE_SIZE = 10_000;

/** Checks a JWK as a public account key under the same key policy as device keys, and imports it (cached). */
export async function importAccountKey(jwk: unknown, knownThumbprint?: string): Promise<{ jwk: JsonWebKey; thumbprint: string; key: KeyObject; verifier: CryptoKey; checked: CheckedKey }> {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw acmeProblem.malformed('jwk must be a JSON object');
  const members = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in members)) throw acmeProblem.malformed('jwk must be a public key');
  if (!['EC', 'OKP', 'RSA'].includes(members.kty as string)) throw new AcmeProblem('badPublicKey', 400, 'jwk kty must be EC, OKP or RSA');
  let thumbprint: string;
  try {
    thumbprint = knownThumbprint ?? (await calculateJwkThumbprint(members as Parameters<typeof calculateJwkThumbprint>[0], 'sha256'));
  } catch {
    throw acmeProblem.malformed('jwk lacks the members of its key type');
  }
  let cached = keyCache.get(thumbprint);
  if (!cached) {
    let checked: CheckedKey;
    try {
      checked = checkPublicKey(spkiOfJwk(members));
    } catch (err) {
      if (err instanceof DomainError) throw new AcmeProblem('badPublicKey', 400, err.detail);
      throw err;
    }
    cached = { key: checked.key, verifier: await globalThis.crypto.subtle.importKey('spki', new Uint8Array(checked.spki), verifierAlgorithm(checked), false, ['verify']), checked };
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(thumbprint, cached);
  }
  return { jwk: publicMembers(members), thumbprint, ...cached };
}

/** The WebCrypto algorithm of the one JWS algorithm a checked key fits (FITS). */
function verifierAlgorithm(checked: CheckedKey): EcKeyImportParams | RsaHashedImportParams | Algorithm {
  if (checked.kind === 'ec') return { name: 'ECDSA', namedCurve: checked.curve! };
  if (checked.kind === 'ed25519') return { name: 'Ed25519' };
  return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

/** The members RFC 7638 names for each key type: the key as stored and shown, whatever else the client sent. */
const REQUIRED_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] };

function publicMembers(members: Record<string, unknown>): JsonWebKey {
  const names = REQUIRED_MEMBERS[members.kty as string]!;
  return Object.fromEntries(names.map((name) => [name, members[name]])) as JsonWebKey;
}

function decodeJson(base64url: string, what: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(base64url)) throw acmeProblem.malformed(`${what} is not base64url`);
  try {
    return JSON.parse(Buffer.from(base64url, 'base64url').toString('utf8'));
  } catch {
    throw acmeProblem.malformed(`${what} is not JSON`);
  }
}

/** A JWS whose header passed every check; its signature is verified once the account (kid) is read with the nonce. */
export interface ParsedJws {
  jws: FlattenedJWS;
  header: ProtectedHeader;
  /** With a kid: the account id it names (undefined for a kid that is not one of our account URLs). */
  accountId?: string | undefined;
  /** With a jwk: the imported key. */
  embedded?: { jwk: JsonWebKey; thumbprint: string; key: KeyObject; verifier: CryptoKey; checked: CheckedKey };
}

/**
 * RFC 8555 6.2 and 6.4, line by line (after smallstep's validateJWS): the
 * flattened JSON serialization only, no unprotected header; `alg` one of
 * ES256, ES384, EdDSA, RS256; `nonce` and `url` present, `url` equal to the
 * request URL; `jwk` xor `kid` as the resource needs. The caller then
 * redeems the nonce (reading the kid's account in the same round trip) and
 * calls verifyJws.
 */
export async function parseJws(body: Buffer, requestUrl: string, source: KeySource, urls: AcmeUrls): Promise<ParsedJws> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw acmeProblem.malformed('the body is not a JWS in the flattened JSON serialization');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw acmeProblem.malformed('the body must be a flattened JWS object');
  const jws = parsed as Record<string, unknown>;
  if ('signatures' in jws) throw acmeProblem.malformed('the general JWS serialization is not allowed: one signature, flattened');
  if ('header' in jws) throw acmeProblem.malformed('the JWS must not have an unprotected header');
  const members = Object.keys(jws);
  if (members.length !== 3 || typeof jws.protected !== 'string' || typeof jws.payload !== 'string' || typeof jws.signature !== 'string') {
    throw acmeProblem.malformed('the JWS must have exactly "protected", "payload" and "signature" strings');
  }
  const header = decodeJson(jws.protected, 'the protected header') as Record<string, unknown>;
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw acmeProblem.malformed('the protected header must be a JSON object');
  if (typeof header.alg !== 'string' || !(JWS_ALGORITHMS as readonly string[]).includes(header.alg)) throw acmeProblem.badSignatureAlgorithm(JWS_ALGORITHMS);
  if ('b64' in header || 'crit' in header) throw acmeProblem.malformed('the protected header must not use b64 or crit');
  if (typeof header.nonce !== 'string' || header.nonce.length === 0) throw new AcmeProblem('badNonce', 400, 'the protected header has no nonce');
  if (typeof header.url !== 'string') throw acmeProblem.malformed('the protected header has no url');
  if (header.url !== requestUrl) throw acmeProblem.unauthorized(`the url header ${JSON.stringify(header.url.slice(0, 200))} is not the URL of this request`);
  const hasJwk = 'jwk' in header;
  const hasKid = 'kid' in header;
  if (hasJwk === hasKid) throw acmeProblem.malformed('the protected header must have exactly one of jwk and kid');
  if (source === 'jwk' && !hasJwk) throw acmeProblem.malformed('this resource needs a jwk, not a kid');
  if (source === 'kid' && !hasKid) throw acmeProblem.malformed('this resource needs the account URL as kid, not a jwk');
  const result: ParsedJws = { jws: jws as unknown as FlattenedJWS, header: header as unknown as ProtectedHeader };
  if (hasJwk) result.embedded = await importAccountKey(header.jwk);
  else result.accountId = typeof header.kid === 'string' ? urls.accountId(header.kid) : undefined;
  return result;
}

/** The signature check, with the embedded key or the account's (which must exist and be valid). */
export async function verifyJws(parsed: ParsedJws, account: AcmeAccountRecord | undefined): Promise<VerifiedJws> {
  let key: KeyObject;
  let verifier: CryptoKey;
  let checked: CheckedKey;
  if (parsed.embedded) {
    ({ key, verifier, checked } = parsed.embedded);
  } else {
    if (!account) throw new AcmeProblem('accountDoesNotExist', 400, 'kid is not the URL of an account of this server');
    if (account.status !== 'valid') throw acmeProblem.unauthorized(`the account is ${account.status}`);
    // The account row holds its key's thumbprint: the cache is found without computing it again.
    ({ key, verifier, checked } = await importAccountKey(account.jwk, account.thumbprint));
  }
  const alg = parsed.header.alg;
  if (!FITS[alg](checked)) throw acmeProblem.badSignatureAlgorithm(JWS_ALGORITHMS);
  let payload: Uint8Array;
  try {
    ({ payload } = await flattenedVerify(parsed.jws, verifier, { algorithms: [alg] }));
  } catch {
    throw acmeProblem.malformed('the JWS signature does not verify');
  }
  const embedded = parsed.embedded ? { jwk: parsed.embedded.jwk, thumbprint: parsed.embedded.thumbprint, checked } : undefined;
  return { header: parsed.header, payload, key, ...(embedded ? { jwk: embedded } : {}), ...(parsed.embedded ? {} : { account: account! }) };
}

/** The JSON payload of a POST (an object), or undefined for POST-as-GET (an empty payload, RFC 8555 6.3). */
export function jsonPayload(jws: VerifiedJws): Record<string, unknown> | undefined {
  if (jws.payload.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(jws.payload).toString('utf8'));
  } catch {
    throw acmeProblem.malformed('the JWS payload is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw acmeProblem.malformed('the JWS payload must be a JSON object');
  return value as Record<string, unknown>;
}
