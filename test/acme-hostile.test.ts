import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { expect } from 'chai';
import { buildAttestation } from '../client/attestation.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, PUBLIC_HOST } from './support/acme-device.ts';
import { badCertificateKeys, certificateAround, prng } from './support/hostile.ts';

describe('ACME hostile input: mutated attestation objects and JWS bodies give only 4xx problem documents', function () {
  this.timeout(300_000);
  let server: TestServer;
  before(async () => {
    // Thousands of anonymous requests from one address: the rate limit is another test's subject.
    server = await startTestServer('pglite', { DEVID_ACME_ANONYMOUS_RATE: '100000' });
  });
  after(() => server.close());

  it('1,000+ mutations (bit flips, truncations, wrong CBOR types, huge lengths, broken JWS) and the device still enrolls', async () => {
    const random = prng(8555);
    const int = (n: number) => Math.floor(random() * n);
    const device = await makeDevice(server, 'SN-HOSTILE');
    const { acme } = device;
    await acme.init();
    await acme.newAccount();
    const thumbprint = await acme.thumbprint();

    let challengeUrl = '';
    let token = '';
    const newChallenge = async () => {
      const order = await acme.post(acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }] });
      const authz = (await acme.post(order.json.authorizations[0], '')).json;
      challengeUrl = authz.challenges[0].url;
      token = authz.challenges[0].token;
    };
    await newChallenge();
    const valid = await buildAttestation({
      factoryKey: device.factoryKey, x5c: [Buffer.from(device.birthCertificate().rawData)], keyAuthorization: `${token}.${thumbprint}`,
      rpId: PUBLIC_HOST, newKeySpki: createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).export({ format: 'der', type: 'spki' }), signCount: 7,
    });

    const encode = (value: unknown) => new Encoder({ useRecords: false, mapsAsObjects: false }).encode(value);
    const statement = (alg: unknown, sig: unknown, x5c: unknown) => new Map<string, unknown>([['alg', alg], ['sig', sig], ['x5c', x5c]]);
    const object = (fmt: unknown, attStmt: unknown, authData: unknown) => new Map<string, unknown>([['fmt', fmt], ['attStmt', attStmt], ['authData', authData]]);
    const birth = Buffer.from(device.birthCertificate().rawData);
    const mutations: Array<[string, Buffer]> = [];
    for (let i = 0; i < 500; i += 1) {
      const copy = Buffer.from(valid);
      const bit = int(copy.length * 8);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      mutations.push([`bit ${bit} flipped`, copy]);
    }
    for (let i = 0; i < 100; i += 1) mutations.push([`truncated to ${i}`, valid.subarray(0, int(valid.length))]);
    for (let i = 0; i < 100; i += 1) mutations.push([`random bytes #${i}`, Buffer.from(Array.from({ length: 1 + int(3000) }, () => int(256)))]);
    const wrongTypes: Array<[string, unknown]> = [
      ['fmt an integer', object(1, statement(-7, Buffer.alloc(70), [birth]), Buffer.alloc(100))],
      ['fmt packed', object('packed', statement(-7, Buffer.alloc(70), [birth]), Buffer.alloc(100))],
      ['attStmt an array', object('devid', [1, 2, 3], Buffer.alloc(100))],
      ['x5c a map', object('devid', statement(-7, Buffer.alloc(70), new Map([[1, birth]])), Buffer.alloc(100))],
      ['x5c empty', object('devid', statement(-7, Buffer.alloc(70), []), Buffer.alloc(100))],
      ['x5c of text', object('devid', statement(-7, Buffer.alloc(70), ['MIIB']), Buffer.alloc(100))],
      ['x5c of five', object('devid', statement(-7, Buffer.alloc(70), Array(5).fill(birth)), Buffer.alloc(100))],
      ['sig text', object('devid', statement(-7, 'sig', [birth]), Buffer.alloc(100))],
      ['alg text', object('devid', statement('ES256', Buffer.alloc(70), [birth]), Buffer.alloc(100))],
      ['alg a float', object('devid', statement(-7.5, Buffer.alloc(70), [birth]), Buffer.alloc(100))],
      ['authData text', object('devid', statement(-7, Buffer.alloc(70), [birth]), 'authData')],
      ['authData short', object('devid', statement(-7, Buffer.alloc(70), [birth]), Buffer.alloc(36))],
      ['a plain object', { fmt: 'devid' }],
      ['an array', ['devid', 1]],
      ['null', null],
      ['a tagged date', new Date()],
      ['a bignum', 2n ** 200n],
      ['a set', new Set([1, 2])],
      ['two objects', [valid, valid]],
    ];
    for (const [name, value] of wrongTypes) mutations.push([name, Buffer.from(encode(value))]);
    const huge = ['5bffffffffffffffff', '9bffffffffffffffff', 'bbffffffffffffffff', '7bffffffffffffffff', 'a1636d6170' + '81'.repeat(5000) + '00', '9f'.repeat(3000), 'bf'.repeat(3000), 'c6'.repeat(3000) + '00', 'a3636666' + 'ff'.repeat(10)];
    for (const hex of huge) mutations.push([`huge length ${hex.slice(0, 12)}`, Buffer.from(hex, 'hex')]);
    const cose: Array<Map<number, unknown>> = [new Map<number, unknown>([[1, 2], [-1, 1], [-2, Buffer.alloc(32)], [-3, Buffer.alloc(32)]]), new Map<number, unknown>([[1, 9]]), new Map<number, unknown>([[1, 3], [-1, Buffer.alloc(4000)], [-2, Buffer.from([1, 0, 1])]]), new Map<number, unknown>([[1, 1], [-1, 6], [-2, Buffer.alloc(31)]])];
    for (const [i, key] of cose.entries()) {
      const authData = Buffer.concat([Buffer.alloc(32), Buffer.from([0x41]), Buffer.alloc(4), Buffer.alloc(16), Buffer.from([0, 32]), Buffer.alloc(32), Buffer.from(encode(key))]);
      mutations.push([`odd COSE key #${i}`, Buffer.from(encode(object('devid', statement(-7, Buffer.alloc(70), [birth]), authData)))]);
    }

    // The valid attestation with x5c[0], or the intermediate above it, around a key no certificate may carry.
    const decoded = new Decoder({ useRecords: false, mapsAsObjects: false }).decode(valid) as Map<string, unknown>;
    for (const [name, key] of badCertificateKeys()) {
      for (const [where, x5c] of [['x5c[0]', [certificateAround(key), birth]], ['x5c[1]', [birth, certificateAround(key, true)]]] as const) {
        const attStmt = new Map(decoded.get('attStmt') as Map<string, unknown>).set('x5c', x5c);
        mutations.push([`${where} with ${name}`, Buffer.from(encode(new Map(decoded).set('attStmt', attStmt)))]);
      }
    }

    const jws: Array<[string, () => Promise<string>]> = [];
    for (let i = 0; i < 300; i += 1) {
      jws.push([`JWS mutation #${i}`, async () => {
        const text = Buffer.from(await acme.sign(challengeUrl, { attObj: valid.toString('base64url') }));
        const choice = i % 3;
        if (choice === 0) text[int(text.length)]! ^= 1 << int(8);
        if (choice === 1) return text.subarray(0, int(text.length)).toString('latin1');
        if (choice === 2) {
          const parsed = JSON.parse(text.toString());
          const field = ['protected', 'payload', 'signature'][int(3)]!;
          parsed[field] = int(2) === 0 ? Buffer.from(Array.from({ length: int(200) }, () => int(256))).toString('base64url') : 12345;
          return JSON.stringify(parsed);
        }
        return text.toString('latin1');
      }]);
    }
    expect(mutations.length + jws.length).to.be.at.least(1000);

    const failures: string[] = [];
    const check = (name: string, status: number, type: string | undefined, contentType: unknown) => {
      if (status < 400 || status >= 500 || !String(contentType).includes('application/problem+json') || !type?.startsWith('urn:ietf:params:acme:error:')) {
        failures.push(`${name}: ${status} ${type}`);
      }
    };
    for (const [name, bytes] of mutations) {
      const answer = await acme.send('POST', challengeUrl, await acme.sign(challengeUrl, { attObj: bytes.toString('base64url') }));
      check(name, answer.status, answer.json?.type, answer.headers['content-type']);
      // A well-formed attestation that fails a check invalidates the order: continue on a new one.
      if (answer.json?.type === 'urn:ietf:params:acme:error:badAttestationStatement') await newChallenge();
    }
    for (const [name, build] of jws) {
      const answer = await acme.send('POST', challengeUrl, await build());
      check(name, answer.status, answer.json?.type, answer.headers['content-type']);
      if (answer.json?.type === 'urn:ietf:params:acme:error:badAttestationStatement') await newChallenge();
    }
    expect(failures, failures.slice(0, 20).join('\n')).to.deep.equal([]);
    expect((await device.enroll({ signCount: 100 })).certificate.subject).to.equal('CN=SN-HOSTILE');
  });

  it('every ACME resource answers random bodies, odd payloads, odd paths and methods with 4xx problem documents', async () => {
    const random = prng(9773);
    const int = (n: number) => Math.floor(random() * n);
    const device = await makeDevice(server, 'SN-HOSTILE-2');
    const { acme } = device;
    await acme.init();
    await acme.newAccount();
    const order = await acme.post(acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }] });
    const base = acme.directory.newOrder.replace(/\/acme\/new-order$/, '');
    const resources = [
      acme.directory.newAccount, acme.directory.newOrder, acme.directory.revokeCert, acme.directory.keyChange, acme.accountUrl!, `${acme.accountUrl!}/orders`,
      order.headers.location as string, order.json.finalize, order.json.authorizations[0], order.json.authorizations[0].replace('/authz/', '/chall/'), `${base}/acme/cert/00ff`,
    ];
    const payloads: unknown[] = [null, [], 'text', 42, { identifiers: 'x' }, { identifiers: [{ type: 'dns', value: 'x' }] }, { identifiers: [{ type: 'permanent-identifier', value: '../x' }] },
      { identifiers: [{ type: 'hardware-module', value: `\u0000/1.2` }] }, { identifiers: [{ type: 'hardware-module', value: `x/${'1.'.repeat(600)}1` }] },
      { identifiers: [{ type: 'hardware-module', value: 'U04tMQ==/1.2.3' }] }, { identifiers: [{ type: 'permanent-identifier', value: 'SN-1/\ud800' }] },
      { identifiers: [{ type: 'permanent-identifier', value: 'SN-1/1.3.6.1.4.1.99999.42' }] }, { identifiers: [{ type: 'hardware-module', value: ['SN-1', '1.2'] }] },
      { csr: 'AAAA' }, { csr: 42 }, { certificate: '!!' }, { certificate: 'AAAA', reason: 'x' }, { status: 'valid' }, { contact: ['http://x'] }, { contact: 'mailto:a@b' },
      { onlyReturnExisting: 'yes' }, { replaces: 'AA.AA' }, { replaces: 42 }, { attObj: 42 }, { account: 'x', oldKey: {} }, { protected: 'x', payload: 'y', signature: 'z' }];
    const failures: string[] = [];
    for (const url of resources) {
      for (const payload of payloads) {
        const answer = await acme.send('POST', url, await acme.sign(url, payload, url.endsWith('new-account') || url.endsWith('revoke-cert') ? { jwkKey: acme.accountKey } : {}));
        if (answer.status >= 500 || (answer.status >= 400 && !String(answer.headers['content-type']).includes('problem+json'))) failures.push(`${url} ${JSON.stringify(payload)}: ${answer.status}`);
      }
      for (let i = 0; i < 10; i += 1) {
        const answer = await acme.send('POST', url, Buffer.from(Array.from({ length: int(500) }, () => int(256))).toString('latin1'));
        if (answer.status < 400 || answer.status >= 500) failures.push(`${url} random bytes: ${answer.status}`);
      }
    }
    // Account keys no key policy takes: off the curve, of the wrong length, too small, of another algorithm.
    const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64url');
    const badJwks = [
      { kty: 'EC', crv: 'P-256', x: b64(32, 0), y: b64(32, 0) }, { kty: 'EC', crv: 'P-256', x: b64(31), y: b64(32) }, { kty: 'EC', crv: 'P-256', x: b64(32, 0xff), y: b64(32, 0xff) },
      { kty: 'OKP', crv: 'Ed25519', x: b64(31) }, { kty: 'OKP', crv: 'Ed448', x: b64(57) }, { kty: 'RSA', n: b64(128, 0xc5), e: 'AQAB' }, { kty: 'RSA', n: b64(256, 0xc4), e: 'AQAB' },
    ];
    for (const jwk of badJwks) {
      const answer = await acme.send('POST', acme.directory.newAccount, await acme.sign(acme.directory.newAccount, { termsOfServiceAgreed: true }, { jwkKey: acme.accountKey, header: { jwk } }));
      if (answer.status !== 400 || !String(answer.headers['content-type']).includes('problem+json')) failures.push(`newAccount with jwk ${JSON.stringify(jwk).slice(0, 50)}: ${answer.status}`);
    }
    for (const [method, path] of [['GET', '/acme/new-order'], ['DELETE', '/acme/directory'], ['POST', '/acme/directory'], ['GET', '/acme/%FF'], ['GET', '/acme/renewal-info/!!'], ['GET', `/acme/renewal-info/${'A'.repeat(300)}`], ['PUT', '/acme/new-nonce'], ['GET', '/acme']] as const) {
      const answer = await acme.send(method, `${base}${path}`);
      if (answer.status < 400 || answer.status >= 500 || !String(answer.headers['content-type']).includes('problem+json')) failures.push(`${method} ${path}: ${answer.status}`);
    }
    expect(failures, failures.slice(0, 20).join('\n')).to.deep.equal([]);
  });
});
