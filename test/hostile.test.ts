import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { NAME_PATTERN } from '../registry/identifiers.ts';
import { verifyCsr } from '../pki/csr.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { httpsRequest, type ApiResponse } from './support/https.ts';
import { makeDeviceKey } from './support/device.ts';
import { certificatePem } from '../ca/pem.ts';
import { BAD_TEXT, BAD_VALUES, certificateAround, csrAround, oddPublicKeys, prng } from './support/hostile.ts';

/** One hostile request: method, path, raw body and headers as a client could send them. */
interface Case {
  name: string;
  method: string;
  path: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
}

describe('hostile input: factory, batch, model and reprovision endpoints (no 5xx, nothing written, still up)', function () {
  this.timeout(300_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let existingCsr: string;
  let otherCsrDer: Uint8Array;
  const random = prng(20261123);
  const int = (n: number) => Math.floor(random() * n);

  before(async () => {
    server = await startTestServer('pglite');
    const first = await makeDeviceKey();
    const made = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-EXIST', model: 'thermo-2', batch: 'b1', csr: first.csrPem } });
    expect(made.status).to.equal(201);
    existingCsr = first.csrPem;
    otherCsrDer = (await makeDeviceKey()).csrDer;
  });
  after(() => server.close());

  /** Sends a case as raw bytes, so bodies and headers reach the server exactly as built. */
  function send(c: Case): Promise<ApiResponse> {
    const headers: Record<string, string> = { authorization: `Bearer ${c.path.startsWith('/factory') ? server.tokens.factory : server.tokens.operator}`, 'content-type': 'application/json', ...c.headers };
    for (const [name, value] of Object.entries(headers)) if (value === '') delete headers[name];
    return httpsRequest(server.running.httpsPort, server.rootPem, c.method, c.path, headers, c.body);
  }

  const BIRTH = '/factory/v1/birth-certificates';
  const BATCH = '/factory/v1/birth-certificates/batch';
  const json = (value: unknown) => JSON.stringify(value);
  const birthBody = (overrides: Record<string, unknown>) => ({ serial: 'SN-EXIST', model: 'thermo-2', batch: 'b1', csr: existingCsr, ...overrides });

  function randomJson(depth = 0): unknown {
    const pick = int(depth > 6 ? 5 : 8);
    if (pick === 0) return null;
    if (pick === 1) return random() * 1e20 - 1e10;
    if (pick === 2) return random() > 0.5;
    if (pick === 3 || pick === 4) return String.fromCharCode(...Array.from({ length: int(40) }, () => int(0xffff)));
    if (pick === 5) return Array.from({ length: int(5) }, () => randomJson(depth + 1));
    return Object.fromEntries(Array.from({ length: int(5) }, () => [String.fromCharCode(...Array.from({ length: int(12) }, () => 32 + int(0x2fff))), randomJson(depth + 1)]));
  }

  function flipped(der: Uint8Array, bit: number): Buffer {
    const copy = Buffer.from(der);
    copy[bit >> 3]! ^= 1 << (bit & 7);
    return copy;
  }

  function cases(): Case[] {
    const all: Case[] = [];
    const revokePaths = ['/operator/v1/certificates/00ff/revoke', '/operator/v1/devices/SN-EXIST/revoke', '/operator/v1/batches/b1/revoke'];
    const endpoints: Array<[string, string]> = [
      ['POST', BIRTH], ['POST', BATCH], ['PUT', '/operator/v1/models/thermo-9'], ['POST', '/operator/v1/devices/SN-EXIST/reprovision'],
      ...revokePaths.map((path) => ['POST', path] as [string, string]), ['POST', '/operator/v1/devices/SN-EXIST/suspend'],
      ['PUT', '/operator/v1/device-classes/hostile'], ['PUT', '/operator/v1/devices/SN-EXIST/class'], ['PUT', '/operator/v1/models/thermo-2/firmware'],
      ['PUT', '/operator/v1/models/thermo-2/firmware-legacy'],
      ['POST', '/operator/v1/devices/SN-EXIST/transfer'], ['POST', '/operator/v1/devices/SN-EXIST/decommission'], ['POST', '/operator/v1/devices/SN-EXIST/support-grants'],
      ['POST', `/operator/v1/support-grants/${'a'.repeat(24)}/approve`], ['POST', `/support/v1/grants/${'a'.repeat(24)}/certificate`],
      ['POST', '/operator/v1/devices'],
    ];
    for (const [method, path] of endpoints) {
      for (let i = 0; i < 40; i += 1) all.push({ name: `random bytes #${i} to ${path}`, method, path, body: Buffer.from(Array.from({ length: int(2000) }, () => int(256))) });
      for (let i = 0; i < 40; i += 1) all.push({ name: `random JSON #${i} to ${path}`, method, path, body: json(randomJson()) });
      all.push({ name: `deep nesting to ${path}`, method, path, body: `${'['.repeat(5000)}${']'.repeat(5000)}` });
      all.push({ name: `no token to ${path}`, method, path, body: '{}', headers: { authorization: '' } });
      all.push({ name: `malformed token to ${path}`, method, path, body: '{}', headers: { authorization: 'Bearer devid_zz_zz' } });
      all.push({ name: `basic auth to ${path}`, method, path, body: '{}', headers: { authorization: 'Basic YTpi' } });
      all.push({ name: `token with a NUL to ${path}`, method, path, body: '{}', headers: { authorization: 'Bearer devid_0123456789abcdef_%00' } });
      all.push({ name: `corrupt gzip to ${path}`, method, path, body: Buffer.from('not gzip at all'), headers: { 'content-encoding': 'gzip' } });
      all.push({ name: `truncated gzip to ${path}`, method, path, body: gzipSync('{"serial": "x"}').subarray(0, 12), headers: { 'content-encoding': 'gzip' } });
      all.push({ name: `corrupt deflate to ${path}`, method, path, body: Buffer.from('xx'), headers: { 'content-encoding': 'deflate' } });
      all.push({ name: `corrupt br to ${path}`, method, path, body: Buffer.from('xx'), headers: { 'content-encoding': 'br' } });
      all.push({ name: `unknown encoding to ${path}`, method, path, body: '{}', headers: { 'content-encoding': 'zstd' } });
      all.push({ name: `UTF-16 charset to ${path}`, method, path, body: Buffer.from('{}', 'utf16le'), headers: { 'content-type': 'application/json; charset=utf-16' } });
      all.push({ name: `latin1 charset to ${path}`, method, path, body: '{}', headers: { 'content-type': 'application/json; charset=latin1' } });
      all.push({ name: `multipart to ${path}`, method, path, body: '--x--', headers: { 'content-type': 'multipart/form-data; boundary=x' } });
      all.push({ name: `no content type to ${path}`, method, path, body: '{}', headers: { 'content-type': '' } });
      all.push({ name: `invalid UTF-8 to ${path}`, method, path, body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) });
      all.push({ name: `oversized body to ${path}`, method, path, body: json({ x: 'A'.repeat(3_000_000) }) });
    }
    for (const field of ['serial', 'model', 'batch', 'csr']) {
      for (const [i, value] of BAD_VALUES.entries()) {
        all.push({ name: `birth ${field} = bad value #${i}`, method: 'POST', path: BIRTH, body: json(birthBody({ [field]: value })) });
      }
      all.push({ name: `birth without ${field}`, method: 'POST', path: BIRTH, body: json(Object.fromEntries(Object.entries(birthBody({})).filter(([k]) => k !== field))) });
    }
    for (const extra of ['__proto__', 'constructor', 'owner', 'x'.repeat(5000)]) {
      all.push({ name: `birth with extra field ${extra.slice(0, 12)}`, method: 'POST', path: BIRTH, body: `{${json(extra)}: {"polluted": true}, "serial": "SN-EXIST", "model": "thermo-2", "batch": "b1", "csr": ${json(existingCsr)}}` });
    }
    all.push({ name: 'batch: every item bad', method: 'POST', path: BATCH, body: json({ requests: BAD_VALUES.map((value) => birthBody({ serial: value })) }) });
    for (const [i, value] of BAD_VALUES.entries()) all.push({ name: `batch requests = bad value #${i}`, method: 'POST', path: BATCH, body: json({ requests: value }) });
    all.push({ name: 'batch of 101', method: 'POST', path: BATCH, body: json({ requests: Array(101).fill(birthBody({})) }) });
    const badOids = [...BAD_VALUES, '2.25.329800735698586629295641978511506172918', `1.3${'.1'.repeat(100)}`, '1.3.6.1.4.1.99999.1'.padEnd(300, '9'), '1.40.2', '3.1', '1..2'];
    for (const [field, values] of [['hwType', badOids], ['manufacturer', [...BAD_TEXT, ' Acme', 'Acme ', 'A'.repeat(65)]]] as const) {
      for (const [i, value] of values.entries()) {
        all.push({ name: `model ${field} = bad value #${i}`, method: 'PUT', path: '/operator/v1/models/thermo-9', body: json({ hwType: '1.3.6.1.4.1.99999.9', manufacturer: 'Acme', [field]: value }) });
      }
    }
    all.push({ name: 'model: change thermo-2 after births', method: 'PUT', path: '/operator/v1/models/thermo-2', body: json({ hwType: '1.3.6.1.4.1.99999.77', manufacturer: 'Someone Else' }) });
    for (const [i, value] of [...BAD_TEXT, 'a'.repeat(1025)].entries()) {
      all.push({ name: `reprovision reason = bad value #${i}`, method: 'POST', path: '/operator/v1/devices/SN-EXIST/reprovision', body: json({ reason: value }) });
    }
    for (const path of revokePaths) {
      for (const [i, value] of [...BAD_VALUES, 'certificateHold', 'KeyCompromise', 'keyCompromise ', 6, 1.5, 'removeFromCRL'].entries()) {
        all.push({ name: `${path} reason = bad value #${i}`, method: 'POST', path, body: json({ reason: value }) });
      }
      all.push({ name: `${path} with an extra field`, method: 'POST', path, body: json({ reason: 'keyCompromise', evil: 1 }) });
    }
    const oddSegments = ['%FF', '%C0%AF', '%00', '..%2F..%2Fetc', '%E2%80%AE', 'a'.repeat(5000), '%25', '%', 'SN%20X', '%F0%9F%99%82', '..', '.'];
    const goodClass = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse', attestationFormats: ['devid'] };
    for (const field of Object.keys(goodClass)) {
      for (const [i, value] of [...BAD_VALUES, '0s', '-1h', '1e3h', '24H', ' 24h', '999999d', 'refuse ', 1, 0, null].entries()) {
        if (typeof value === 'boolean') continue; // BAD_VALUES holds true, which a flag takes
        all.push({ name: `device class ${field} = bad value #${i}`, method: 'PUT', path: '/operator/v1/device-classes/hostile', body: json({ ...goodClass, [field]: value }) });
      }
    }
    for (const [i, value] of [...BAD_VALUES, { models: [] }, { models: BAD_VALUES }, { models: ['thermo-2'], x: 1 }, { models: Array(65).fill('m') }].entries()) {
      if (value === null) continue; // null: not a gateway, valid
      all.push({ name: `device class gateway = bad value #${i}`, method: 'PUT', path: '/operator/v1/device-classes/hostile', body: json({ ...goodClass, gateway: value }) });
    }
    // A declaration never succeeds here: SN-EXIST is of no gateway class.
    const declaration = { serial: 'SN-DECL', model: 'thermo-2', gateways: ['SN-EXIST'] };
    for (const field of ['serial', 'model', 'class', 'gateways']) {
      for (const [i, value] of BAD_VALUES.entries()) {
        all.push({ name: `declaration ${field} = bad value #${i}`, method: 'POST', path: '/operator/v1/devices', body: json({ ...declaration, [field]: value }) });
      }
    }
    all.push({ name: 'declaration with a gateway of no gateway class', method: 'POST', path: '/operator/v1/devices', body: json(declaration) });
    for (const [i, value] of [...BAD_VALUES, [{ version: 'x', digest: 'g'.repeat(64) }], [{ version: 'x' }], Array(300).fill({ version: 'x', digest: 'ab'.repeat(32) })].entries()) {
      if (Array.isArray(value) && value.length === 0) continue; // [] removes the policy: valid
      all.push({ name: `firmware allowed = bad value #${i}`, method: 'PUT', path: '/operator/v1/models/thermo-2/firmware', body: json({ allowed: value }) });
    }
    for (const [i, value] of [...BAD_VALUES, '2027-01-01', '2027-01-01T00:00:00', '2027-02-30T00:00:00Z', ' 2027-01-01T00:00:00Z', '2027-01-01T00:00:00Z\n', 1798761600000].entries()) {
      all.push({ name: `legacy cut-off until = bad value #${i}`, method: 'PUT', path: '/operator/v1/models/thermo-2/firmware-legacy', body: json({ until: value }) });
    }
    for (const [i, value] of BAD_VALUES.entries()) {
      if (typeof value !== 'string' || !NAME_PATTERN.test(value)) all.push({ name: `transfer to = bad value #${i}`, method: 'POST', path: '/operator/v1/devices/SN-EXIST/transfer', body: json({ to: value, evidence: 'x' }) });
      all.push({ name: `support grant hours = bad value #${i}`, method: 'POST', path: '/operator/v1/devices/SN-EXIST/support-grants', body: json({ vendor: 'v', reason: 'r', hours: value }) });
      all.push({ name: `device class = bad value #${i}`, method: 'PUT', path: '/operator/v1/devices/SN-EXIST/class', body: json({ class: value }) });
    }
    for (const segment of oddSegments) {
      all.push({ name: `grant approve path ${segment.slice(0, 12)}`, method: 'POST', path: `/operator/v1/support-grants/${segment}/approve`, body: '{}' });
      all.push({ name: `export query ${segment.slice(0, 12)}`, method: 'GET', path: `/audit/v1/export?device=${segment}` });
      all.push({ name: `console firmware path ${segment.slice(0, 12)}`, method: 'GET', path: `/console/v1/firmware/${segment}` });
      all.push({ name: `report query ${segment.slice(0, 12)}`, method: 'GET', path: `/operator/v1/reports/rotation?owner=${segment}` });
    }
    all.push({ name: 'suspend with a field', method: 'POST', path: '/operator/v1/devices/SN-EXIST/suspend', body: json({ reason: 'x' }) });
    all.push({ name: 'reprovision with an extra field', method: 'POST', path: '/operator/v1/devices/SN-EXIST/reprovision', body: json({ reason: 'x', evil: 1 }) });
    for (const segment of oddSegments) {
      all.push({ name: `model path ${segment.slice(0, 12)}`, method: 'PUT', path: `/operator/v1/models/${segment}`, body: json({ hwType: '1.2.3', manufacturer: 'A' }) });
      all.push({ name: `reprovision path ${segment.slice(0, 12)}`, method: 'POST', path: `/operator/v1/devices/${segment}/reprovision`, body: json({ reason: 'x' }) });
      all.push({ name: `certificate revoke path ${segment.slice(0, 12)}`, method: 'POST', path: `/operator/v1/certificates/${segment}/revoke`, body: json({ reason: 'keyCompromise' }) });
      all.push({ name: `batch revoke path ${segment.slice(0, 12)}`, method: 'POST', path: `/operator/v1/batches/${segment}/revoke`, body: json({ reason: 'keyCompromise' }) });
    }
    for (const method of ['PATCH', 'DELETE', 'GET', 'PUT']) all.push({ name: `${method} ${BIRTH}`, method, path: BIRTH });
    all.push({ name: 'headers over the limit', method: 'POST', path: BIRTH, body: '{}', headers: { 'x-filler': 'a'.repeat(20_000) } });
    for (const [name, key] of oddPublicKeys()) {
      const csr = Buffer.from(csrAround(key)).toString('base64url');
      all.push({ name: `odd key: ${name}`, method: 'POST', path: BIRTH, body: json(birthBody({ csr })) });
      all.push({ name: `odd key in a batch: ${name}`, method: 'POST', path: BATCH, body: json({ requests: [birthBody({ csr })] }) });
      const root = certificatePem(certificateAround(key, true));
      all.push({ name: `odd key in a manufacturer's root: ${name}`, method: 'PUT', path: '/operator/v1/manufacturers/hostile-oem', body: json({ certificates: [root], models: ['thermo-2'], crl: null }) });
    }
    const der = Buffer.from(otherCsrDer);
    const encodings = [
      `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE-----`, '-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----',
      `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----`, der.toString('base64'), `${der.toString('base64url')}==`, der.toString('hex'),
      der.subarray(0, 40).toString('base64url'), Buffer.concat([der, Buffer.from([0])]).toString('base64url'), Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(3), Buffer.from([0, 0])]).toString('base64url'),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).toString('base64url'), 'A', '-----BEGIN CERTIFICATE REQUEST-----', `${'-----BEGIN CERTIFICATE REQUEST-----'.repeat(300)}`,
    ];
    for (const [i, csr] of encodings.entries()) all.push({ name: `CSR encoding #${i}`, method: 'POST', path: BIRTH, body: json(birthBody({ csr })) });
    for (let i = 0; i < 800; i += 1) {
      const bit = int(der.length * 8);
      const csr = flipped(der, bit).toString('base64url');
      all.push(i % 4 === 3
        ? { name: `CSR bit ${bit} flipped, in a batch`, method: 'POST', path: BATCH, body: json({ requests: [birthBody({ csr })] }) }
        : { name: `CSR bit ${bit} flipped`, method: 'POST', path: BIRTH, body: json(birthBody({ csr })) });
    }
    return all;
  }

  async function counts(): Promise<Record<string, number>> {
    const { store } = server.env.ctx;
    return { devices: await store.devices.count(), certificates: await store.certificates.count(), events: await store.audit.count(), models: await store.models.count() };
  }

  it('answers at least 1,500 hostile requests with 4xx problem documents only, and writes nothing', async () => {
    const list = cases();
    expect(list.length).to.be.at.least(1500);
    const before = await counts();
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < list.length; i = next++) {
        const c = list[i]!;
        const response = await send(c).catch((err: Error) => ({ status: 0, headers: {}, text: err.message, json: undefined }) as ApiResponse);
        const statuses = c.path === BATCH && response.status === 200 ? (response.json.results as Array<{ status: number }>).map((r) => r.status) : [response.status];
        for (const status of statuses) {
          if (status < 400 || status >= 500) failures.push(`${c.name}: ${status} ${response.text.slice(0, 200)}`);
        }
        if (response.status !== 200 && !String(response.headers['content-type']).includes('application/problem+json')) {
          failures.push(`${c.name}: ${response.status} without a problem document (${response.headers['content-type']})`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(failures, failures.slice(0, 20).join('\n')).to.deep.equal([]);
    expect(await counts()).to.deep.equal(before);
    const health = await server.request('GET', '/healthz');
    expect(health.status).to.equal(200);
    const device = await makeDeviceKey();
    const after = await server.request('POST', BIRTH, { token: server.tokens.factory, body: { serial: 'SN-AFTER', model: 'thermo-2', batch: 'b1', csr: device.csrPem } });
    expect(after.status, after.text).to.equal(201);
  });

  it('strict DER: no single-bit flip of a CSR verifies, for every bit of EC, Ed25519 and RSA requests', async () => {
    for (const type of ['ec-p256', 'ed25519', 'rsa2048'] as const) {
      const der = (await makeDeviceKey(type)).csrDer;
      expect(() => verifyCsr(Buffer.from(der).toString('base64url'))).not.to.throw();
      const verified: number[] = [];
      for (let bit = 0; bit < der.length * 8; bit += 1) {
        try {
          verifyCsr(flipped(der, bit).toString('base64url'));
          verified.push(bit);
        } catch {
          // refused, as it must be
        }
      }
      expect(verified, `${type}: flips of bits ${verified.join(', ')} still verify`).to.deep.equal([]);
    }
  });

  it('specific answers: 431 with a problem body, 400 for a bad percent-encoding, a lone surrogate and a corrupt gzip body', async () => {
    const cases: Array<[Case, number, string]> = [
      [{ name: '431', method: 'GET', path: '/healthz', headers: { 'x-filler': 'a'.repeat(20_000) } }, 431, 'headers-too-large'],
      [{ name: '%FF', method: 'PUT', path: '/operator/v1/models/%FF', body: json({ hwType: '1.2.3', manufacturer: 'A' }) }, 400, 'malformed'],
      [{ name: 'surrogate', method: 'POST', path: '/operator/v1/devices/SN-EXIST/reprovision', body: '{"reason": "RMA \\ud800"}' }, 400, 'malformed'],
      [{ name: 'gzip', method: 'POST', path: BIRTH, body: Buffer.from('junk'), headers: { 'content-encoding': 'gzip' } }, 400, 'malformed'],
      [{ name: 'EC params not an OID', method: 'POST', path: BIRTH, body: json(birthBody({ csr: Buffer.from(csrAround(oddPublicKeys().find(([n]) => n === 'EC parameters NULL')![1])).toString('base64url') })) }, 400, 'bad-public-key'],
      [{ name: 'point at infinity', method: 'POST', path: BIRTH, body: json(birthBody({ csr: Buffer.from(csrAround(oddPublicKeys()[0]![1])).toString('base64url') })) }, 400, 'bad-public-key'],
      [{ name: 'point at infinity in a manufacturer\'s root', method: 'PUT', path: '/operator/v1/manufacturers/hostile-oem', body: json({ certificates: [certificatePem(certificateAround(oddPublicKeys()[0]![1], true))], models: ['thermo-2'], crl: null }) }, 400, 'malformed'],
    ];
    for (const [c, status, type] of cases) {
      const response = await send(c);
      expect(response.status, `${c.name}: ${response.text}`).to.equal(status);
      expect(response.headers['content-type'], c.name).to.contain('application/problem+json');
      expect(response.json.type, c.name).to.equal(`urn:devid-ca:problem:${type}`);
    }
  });
});
