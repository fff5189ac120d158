import { Validator } from '@seriousme/openapi-schema-validator';
import { expect } from 'chai';
import { openapiDocument } from '../server/http/openapi/route.ts';
import { PUBLICATION_SERVER } from '../server/http/openapi/servers.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { prng } from './support/hostile.ts';
import { httpsRequest, type ApiResponse } from './support/https.ts';
import { acceptedBodyMismatches, answerMismatches, problemMismatches } from './support/openapi.ts';
import { httpRequest } from './support/publication.ts';
import { routesOf } from './support/routes.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const doc = openapiDocument as any;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** Every operation of the document, with the listeners it names (the HTTPS API unless its path says otherwise). */
function documentOperations(): Array<{ path: string; method: string; api: boolean; publication: boolean }> {
  return Object.entries(doc.paths as Record<string, Record<string, unknown> & { servers?: unknown[] }>).flatMap(([path, item]) => {
    const servers = item.servers ?? doc.servers;
    const publication = servers.includes(PUBLICATION_SERVER);
    const api = servers.some((s: unknown) => s !== PUBLICATION_SERVER);
    return Object.keys(item).filter((m) => METHODS.includes(m)).map((method) => ({ path, method, api, publication }));
  });
}

/** Operations answered before express (server/serve.ts): ACME and EST on the HTTPS listener, OCSP on the plain-HTTP one. */
const BEFORE_EXPRESS = new Set(['get /acme/directory', 'get /.well-known/est/cacerts', 'post /ocsp']);

describe('OpenAPI document', function () {
  this.timeout(180_000);
  let server: TestServer;
  before(async () => { server = await startTestServer('pglite'); });
  after(() => server.close());

  const send = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<ApiResponse> =>
    httpsRequest(server.running.httpsPort, server.rootPem, method, path, headers, body);

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(openapiDocument));
    expect(result.errors, JSON.stringify(result.errors, null, 2)).to.equal(undefined);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal('3.1');
  });

  it('GET /openapi.json answers it, without a token, cacheable (ETag, 304)', async () => {
    const answer = await send('GET', '/openapi.json');
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.match(/^application\/json/);
    expect(answer.json).to.deep.equal(openapiDocument);
    expect(answer.headers['cache-control']).to.equal('public, max-age=3600');
    const etag = String(answer.headers.etag);
    expect((await send('GET', '/openapi.json', { 'if-none-match': etag })).status).to.equal(304);
    const head = await send('HEAD', '/openapi.json');
    expect([head.status, head.text]).to.deep.equal([200, '']);
  });

  it('every route of the two express apps is in the document, on its listener', () => {
    const missing: string[] = [];
    for (const [name, app] of [['api', server.running.apps.api], ['publication', server.running.apps.publication]] as const) {
      for (const { path, method } of routesOf(app)) {
        const operation = documentOperations().find((o) => o.path === path && o.method === method);
        if (!operation || !operation[name]) missing.push(`${method.toUpperCase()} ${path} (${name} listener)`);
      }
    }
    expect(missing, 'routes the document does not describe').to.deep.equal([]);
  });

  it('every operation of the document is a route of its listener\'s app, or answered before express', async () => {
    const api = routesOf(server.running.apps.api);
    const publication = routesOf(server.running.apps.publication);
    const has = (routes: typeof api, path: string, method: string) => routes.some((r) => r.path === path && r.method === method);
    const missing: string[] = [];
    for (const { path, method, api: onApi, publication: onPublication } of documentOperations()) {
      if (BEFORE_EXPRESS.has(`${method} ${path}`)) continue;
      if (onApi && !has(api, path, method)) missing.push(`${method.toUpperCase()} ${path} (api listener)`);
      if (onPublication && !has(publication, path, method)) missing.push(`${method.toUpperCase()} ${path} (publication listener)`);
    }
    expect(missing, 'operations no app answers').to.deep.equal([]);
    // Those answered before express, asked for real.
    const directory = await send('GET', '/acme/directory');
    expect(answerMismatches('GET', '/acme/directory', directory)).to.deep.equal([]);
    expect(directory.status).to.equal(200);
    const cacerts = await send('GET', '/.well-known/est/cacerts');
    expect(answerMismatches('GET', '/.well-known/est/cacerts', cacerts)).to.deep.equal([]);
    expect([cacerts.status, cacerts.headers['content-type']]).to.deep.equal([200, 'application/pkcs7-mime']);
    const ocsp = await httpRequest(server.running.httpPort, 'POST', '/ocsp', { 'content-type': 'application/ocsp-request' }, Buffer.from([0x30, 0x00]));
    expect([ocsp.status, ocsp.headers['content-type']]).to.deep.equal([200, 'application/ocsp-response']);
  });

  it('hostile requests to /openapi.json get the document, a problem, 404 or 405: never a 5xx', async () => {
    const random = prng(20261207);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const cases: Array<{ method: string; path: string; headers?: Record<string, string>; body?: Buffer | string }> = [
      ...['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'MKCOL', 'LOCK', 'SEARCH', 'PURGE', 'QUERY', 'FOO', 'TRACE'].map((method) => ({ method, path: '/openapi.json' })),
      ...[
        '/openapi.json/', '/openapi.json/x', '//openapi.json', '/OPENAPI.JSON', '/openapi.json;x=1', '/openapi.json%00', '/openapi%2ejson', '/openapi.json%2f',
        '/%2e/openapi.json', '/./openapi.json', '/x/../openapi.json', '/openapi.json?%', '/openapi.json?a[b]=1&a[c]=2', `/openapi.json?${'x'.repeat(6000)}`,
        '/openapi.json%', '/openapi.json%zz', '/openapi.yaml', '/openapi', `/${'openapi.json/'.repeat(300)}`,
      ].map((path) => ({ method: 'GET', path })),
      ...Array.from({ length: 12 }, (_, i) => ({
        method: i % 3 === 0 ? 'GET' : 'POST',
        path: '/openapi.json',
        headers: { 'content-type': ['application/json', 'application/octet-stream', 'text/plain; charset=utf-7', 'application/json; charset=latin1'][i % 4]!, ...(i % 5 === 0 ? { 'content-encoding': 'gzip' } : {}) },
        body: bytes(1 + Math.floor(random() * 4096)),
      })),
      { method: 'GET', path: '/openapi.json', headers: { 'if-none-match': bytes(40).toString('latin1').replace(/[^\x21-\x7e]/g, 'x') } },
      { method: 'GET', path: '/openapi.json', headers: { accept: 'application/yaml', 'accept-encoding': 'br;q=2, *;q=-1' } },
    ];
    for (const c of cases) {
      const answer = await send(c.method, c.path, c.headers ?? {}, c.body);
      const what = `${c.method} ${c.path.slice(0, 60)} → ${answer.status} ${answer.text.slice(0, 200)}`;
      // 400 and 431 are Node's own refusals (server/http/client-errors.ts); 413 and 415 a body no route reads.
      expect(answer.status, what).to.be.oneOf([200, 304, 400, 404, 405, 413, 415, 431]);
      if (answer.status === 200) expect(answer.json, what).to.deep.equal(c.method === 'HEAD' ? undefined : openapiDocument);
      if (answer.status >= 400) {
        expect(answer.headers['content-type'], what).to.match(/^application\/problem\+json/);
        expect(problemMismatches(answer.json), what).to.deep.equal([]);
        expect(answer.json.status, what).to.equal(answer.status);
      }
      if (answer.status === 405) expect(answer.headers.allow, what).to.equal('GET, HEAD');
    }
    expect((await send('GET', '/openapi.json')).status, 'still serving').to.equal(200);
  });

  it('the answer check refuses what the document does not describe', () => {
    const json = (status: number, body: unknown, type = 'application/json'): ApiResponse => ({ status, headers: { 'content-type': type }, text: JSON.stringify(body), json: body });
    const problem = (status: number) => json(status, { type: 'urn:devid-ca:problem:conflict', title: 'Conflict', status, detail: 'x' }, 'application/problem+json');
    expect(answerMismatches('GET', '/healthz', json(200, { status: 'ok' }))).to.deep.equal([]);
    expect(answerMismatches('POST', '/factory/v1/birth-certificates', problem(409))).to.deep.equal([]);
    expect(answerMismatches('GET', '/no/such/path', problem(404))).to.deep.equal([]);
    // A status the operation does not list.
    expect(answerMismatches('GET', '/healthz', json(418, { status: 'ok' }))[0]).to.match(/lists no 418/);
    // A body its schema refuses: a wrong value, a member too many, a member missing.
    expect(answerMismatches('GET', '/healthz', json(200, { status: 'fine' }))[0]).to.match(/constant/);
    expect(answerMismatches('GET', '/healthz', json(200, { status: 'ok', extra: 1 }))[0]).to.match(/additional properties/);
    expect(answerMismatches('POST', '/factory/v1/birth-certificates', json(409, { type: 'x', status: 409 }, 'application/problem+json')).join()).to.match(/title/);
    // A media type it does not list, and a success on a path it does not have.
    expect(answerMismatches('GET', '/healthz', { ...json(200, {}), headers: { 'content-type': 'text/html' } })[0]).to.match(/media type text\/html/);
    expect(answerMismatches('GET', '/operator/v1/secrets', json(200, {}))[0]).to.match(/no operation GET/);
    // A request body the server took (2xx) that the document's request schema refuses; a refused one is not held against it.
    expect(acceptedBodyMismatches('POST', '/operator/v1/devices/d-1/revoke', 200, '{"reason":"keyCompromise"}')).to.deep.equal([]);
    expect(acceptedBodyMismatches('POST', '/operator/v1/devices/d-1/revoke', 200, '{"reason":"keyCompromise","why":1}')[0]).to.match(/request body the document refuses/);
    expect(acceptedBodyMismatches('POST', '/operator/v1/devices/d-1/revoke', 400, '{"reason":1}')).to.deep.equal([]);
  });

  describe('in a suite that checks answers', () => {
    checkAnswersAgainstOpenapi();

    it('a documented answer passes; an undocumented one fails the request', async () => {
      expect((await server.request('GET', '/healthz')).status).to.equal(200);
      // Express answers OPTIONS on a route itself (200 text/plain, Allow), which the document does not describe.
      let failure: Error | undefined;
      await server.request('OPTIONS', '/healthz').catch((err: Error) => { failure = err; });
      expect(failure?.message).to.match(/no operation OPTIONS \/healthz/);
    });
  });
});
