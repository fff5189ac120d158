import { certificatePem } from '../../ca/pem.ts';
import { BAD_TEXT, BAD_VALUES, NON_DER_SERIALS, badCertificateKeys, certificateAround, csrAround, ocspRequestWithSerial, prng } from '../support/hostile.ts';

/** One hostile request: sent exactly as built. `auth` picks a real token of that role, or none. */
export interface FuzzCase {
  name: string;
  method: string;
  path: string;
  auth?: 'factory' | 'operator' | 'auditor' | 'vendor';
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** What the cases aim at: a device and its certificate that exist, so refusals are tested beside real rows. */
export interface FuzzTargets {
  serial: string;
  certificateSerial: string;
}

/**
 * Every write endpoint with a real token of its role (so the refusal is the
 * body's, not the token's), every read endpoint without one (a read with a
 * token is an audited action, and would write), and the public ones (ACME,
 * OCSP, CRL, CA certificates, the console's files and session).
 */
function endpoints(t: FuzzTargets): Array<[method: string, path: string, auth?: FuzzCase['auth']]> {
  const d = encodeURIComponent(t.serial);
  return [
    ['POST', '/factory/v1/birth-certificates', 'factory'], ['POST', '/factory/v1/birth-certificates/batch', 'factory'],
    ['PUT', '/operator/v1/models/fuzz-model', 'operator'], ['PUT', '/operator/v1/models/fuzz-model/firmware', 'operator'],
    ['PUT', '/operator/v1/models/fuzz-model/firmware-legacy', 'operator'],
    ['PUT', '/operator/v1/device-classes/fuzz', 'operator'], ['PUT', `/operator/v1/devices/${d}/class`, 'operator'],
    ['POST', `/operator/v1/devices/${d}/transfer`, 'operator'], ['POST', `/operator/v1/devices/${d}/decommission`, 'operator'],
    ['POST', `/operator/v1/devices/${d}/reprovision`, 'operator'], ['POST', `/operator/v1/devices/${d}/suspend`, 'operator'],
    ['POST', `/operator/v1/devices/${d}/support-grants`, 'operator'], ['POST', `/operator/v1/devices/${d}/revoke`, 'operator'],
    ['POST', `/operator/v1/certificates/${t.certificateSerial}/revoke`, 'operator'], ['POST', '/operator/v1/batches/fuzz-batch/revoke', 'operator'],
    ['POST', `/operator/v1/support-grants/${'a'.repeat(24)}/approve`, 'operator'], ['POST', `/support/v1/grants/${'a'.repeat(24)}/certificate`, 'vendor'],
    ['PUT', '/operator/v1/manufacturers/fuzz-oem', 'operator'], ['POST', '/operator/v1/manufacturers/fuzz-oem/approve', 'operator'],
    ['POST', '/operator/v1/manufacturers/fuzz-oem/manifests', 'operator'], ['POST', '/operator/v1/manufacturers/fuzz-oem/crl', 'operator'],
    ['POST', '/operator/v1/manufacturers/fuzz-oem/withdraw', 'operator'], ['POST', `/operator/v1/devices/${d}/claim`, 'operator'],
    ['POST', `/operator/v1/devices/${d}/ownership-statement`, 'operator'], ['POST', '/operator/v1/ownership-statements', 'operator'],
    ['GET', '/operator/v1/reports/rotation'], ['GET', `/audit/v1/devices/${d}/history`], ['GET', '/audit/v1/verify'], ['GET', '/audit/v1/export'],
    ['GET', '/audit/v1/checkpoints'], ['POST', '/audit/v1/checkpoints'], ['GET', '/console/v1/fleet'], ['GET', '/console/v1/devices'], ['GET', '/console/v1/status'],
    ['GET', '/console/v1/firmware'], ['GET', '/console/v1/firmware/fuzz-model'],
    ['POST', '/console/v1/session'], ['DELETE', '/console/v1/session'],
    ['POST', '/acme/new-account'], ['POST', '/acme/new-order'], ['POST', '/acme/revoke-cert'], ['POST', '/acme/key-change'],
    ['POST', `/acme/order/${'A'.repeat(22)}`], ['POST', `/acme/chall/${'A'.repeat(22)}`], ['POST', `/acme/cert/${t.certificateSerial}`],
    ['POST', '/ocsp'],
    ['POST', '/.well-known/est/simpleenroll'], ['POST', '/.well-known/est/simplereenroll'], ['POST', '/.well-known/est/fuzz/simpleenroll'],
  ];
}

/**
 * A well-formed body around a key no certificate may carry (the EC point at
 * infinity, a point off the curve, a truncated one...), for the endpoints
 * that take a CSR, a certificate or a JWK; undefined for the others.
 */
function badKeyBody(path: string, key: Buffer): string | undefined {
  const csr = csrAround(key).toString('base64url');
  const certificate = certificateAround(key, true);
  const pem = certificatePem(certificate);
  const birth = { serial: 'SN-FUZZ-KEY', model: 'fuzz-model', batch: 'fuzz-batch', csr };
  if (path.endsWith('/birth-certificates')) return JSON.stringify(birth);
  if (path.endsWith('/birth-certificates/batch')) return JSON.stringify({ requests: [birth] });
  if (path.endsWith('/certificate')) return JSON.stringify({ csr });
  if (path === '/operator/v1/manufacturers/fuzz-oem') return JSON.stringify({ certificates: [pem], models: ['fuzz-model'], crl: null });
  if (path.endsWith('/manifests')) return JSON.stringify({ devices: [{ serial: 'SN-FUZZ-KEY', model: 'fuzz-model', birthCertificateSha256: '0'.repeat(64), birthCertificate: pem }], signature: 'AAAA', signer: pem });
  if (path === '/operator/v1/ownership-statements') {
    const statement = { type: 'devid-ca ownership statement', version: 1, device: 'SN-FUZZ-KEY', birthCertificateSha256: '0'.repeat(64), from: null, to: 'x', at: new Date().toISOString(), previous: null, signer: [certificate.toString('base64')], signature: 'AAAA' };
    return JSON.stringify({ statements: [statement], manufacturer: 'fuzz-oem', model: 'fuzz-model' });
  }
  if (path === '/acme/new-account') {
    const header = { alg: 'ES256', nonce: 'AAAA', url: path, jwk: { kty: 'EC', crv: 'P-256', x: key.subarray(-32).toString('base64url'), y: key.subarray(-32).toString('base64url') } };
    return JSON.stringify({ protected: Buffer.from(JSON.stringify(header)).toString('base64url'), payload: Buffer.from('{}').toString('base64url'), signature: Buffer.alloc(64).toString('base64url') });
  }
  return undefined;
}

/** Paths and query strings no route expects: traversal, encodings, sizes, odd characters. */
const ODD_SEGMENTS = ['..%2f..%2fetc%2fpasswd', '%00', '%ff%fe', '%', '%2', 'a'.repeat(3000), '\u00e9', '%C0%AE%C0%AE', '.', '..', '~', '%0d%0aX-Injected:%201', '{{7*7}}', '<script>', "'or'1'='1"];
const PREFIXES = ['/.well-known/est/', '/factory/v1/', '/operator/v1/devices/', '/operator/v1/manufacturers/', '/operator/v1/certificates/', '/audit/v1/devices/', '/acme/', '/acme/renewal-info/', '/ocsp/', '/crl/', '/ca/', '/console/assets/', '/console/v1/devices?q=', '/operator/v1/devices?owner='];

export function fuzzCases(targets: FuzzTargets, count: number, seed: number): FuzzCase[] {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]) => list[int(list.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const randomJson = (depth = 0): unknown => {
    const kind = int(depth > 4 ? 5 : 8);
    if (kind === 0) return null;
    if (kind === 1) return random() * 1e12 - 5e11;
    if (kind === 2) return random() > 0.5;
    if (kind === 3 || kind === 4) return pick([...BAD_TEXT, ...BAD_VALUES, String.fromCharCode(...Array.from({ length: int(30) }, () => int(0xffff)))]);
    if (kind === 5) return Array.from({ length: int(4) }, () => randomJson(depth + 1));
    return Object.fromEntries(Array.from({ length: 1 + int(4) }, () => [pick(['serial', 'model', 'batch', 'csr', 'reason', 'to', 'evidence', 'token', 'hwType', 'allowed', 'class', 'ttl', 'protected', 'payload', 'signature', '__proto__', 'constructor']), randomJson(depth + 1)]));
  };
  const jwsLike = () => JSON.stringify({
    protected: Buffer.from(JSON.stringify(randomJson())).toString('base64url'),
    payload: random() > 0.5 ? Buffer.from(JSON.stringify(randomJson())).toString('base64url') : '',
    signature: bytes(int(96)).toString('base64url'),
  });
  const list = endpoints(targets);
  const badKeys = badCertificateKeys();
  const cases: FuzzCase[] = [];
  while (cases.length < count) {
    const [method, path, auth] = pick(list);
    const acme = path.startsWith('/acme');
    const type = acme ? 'application/jose+json' : path === '/ocsp' ? 'application/ocsp-request' : path.startsWith('/.well-known/est/') ? 'application/pkcs10' : 'application/json';
    const n = cases.length;
    const kind = int(11);
    const base = { method, path, ...(auth ? { auth } : {}) };
    const [keyName, key] = pick(badKeys);
    const keyBody = kind === 10 ? badKeyBody(path, key) : undefined;
    if (kind <= 1 && path === '/ocsp') {
      const [what, serial] = pick(NON_DER_SERIALS);
      cases.push({ ...base, name: `#${n} OCSP CertID serial: ${what}`, headers: { 'content-type': type }, body: ocspRequestWithSerial(bytes(20), bytes(20), serial) });
    } else if (kind === 0) cases.push({ ...base, name: `#${n} random bytes`, headers: { 'content-type': type }, body: bytes(int(4000)) });
    else if (kind <= 3) cases.push({ ...base, name: `#${n} random JSON`, headers: { 'content-type': type }, body: JSON.stringify(randomJson()) });
    else if (kind === 4 && acme) cases.push({ ...base, name: `#${n} JWS-shaped`, headers: { 'content-type': type }, body: jwsLike() });
    else if (kind === 4) cases.push({ ...base, name: `#${n} odd content type`, headers: { 'content-type': pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', '']) }, body: '{}' });
    else if (kind === 5) cases.push({ ...base, name: `#${n} odd encoding`, headers: { 'content-type': type, 'content-encoding': pick(['gzip', 'deflate', 'br', 'zstd', 'gzip, gzip']) }, body: bytes(int(200)) });
    else if (kind === 6) cases.push({ ...base, name: `#${n} bad token`, headers: { 'content-type': type, authorization: pick(['Bearer ', 'Bearer devid_zz_zz', `Bearer devid_${'0'.repeat(16)}_${'A'.repeat(43)}`, 'Basic YTpi', 'Bearer \u00ff', `Bearer ${'x'.repeat(5000)}`]) }, body: '{}' });
    else if (kind === 7) cases.push({ name: `#${n} odd path`, method: pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']), path: `${pick(PREFIXES)}${pick(ODD_SEGMENTS)}` });
    else if (kind === 8) cases.push({ ...base, name: `#${n} deep nesting`, headers: { 'content-type': type }, body: `${'['.repeat(3000 + int(5000))}${']'.repeat(10)}` });
    else if (keyBody) cases.push({ ...base, name: `#${n} ${keyName}`, headers: { 'content-type': type }, body: keyBody });
    else cases.push({ ...base, name: `#${n} odd cookie`, headers: { 'content-type': type, cookie: `__Host-devid-session=${bytes(int(60)).toString('base64url')}` }, body: JSON.stringify(randomJson()) });
  }
  return cases;
}

/** Lines for the admin socket: random bytes, JSON of the wrong shape, argv that names no command, oversized lines. */
export function adminSocketCases(count: number, seed: number): Buffer[] {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const lines: Buffer[] = [];
  while (lines.length < count) {
    const kind = int(5);
    if (kind === 0) lines.push(Buffer.concat([Buffer.from(Array.from({ length: int(300) }, () => int(256)).filter((b) => b !== 10)), Buffer.from('\n')]));
    else if (kind === 1) lines.push(Buffer.from(`${JSON.stringify({ argv: ['token', 'list'] })}\n`));
    else if (kind === 2) lines.push(Buffer.from(`${JSON.stringify(Array.from({ length: int(6) }, () => String.fromCharCode(...Array.from({ length: int(12) }, () => 33 + int(90)))))}\n`));
    else if (kind === 3) lines.push(Buffer.from(`${JSON.stringify([1, null, {}])}\n`));
    else lines.push(Buffer.from(`["${'a'.repeat(70_000)}"]\n`));
  }
  return lines;
}
