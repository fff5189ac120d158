import { expect } from 'chai';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/x509';
import { subjectPublicKeyBits } from '../ca/profiles.ts';
import { loadHierarchy, type Hierarchy } from '../ca/hierarchy.ts';
import { unsignedInteger } from '../ca/der.ts';
import { ocspErrorResponse } from '../publish/ocsp-der.ts';
import { RESPONDER_TAKEOVER_MS } from '../publish/ocsp-responders.ts';
import { Publication } from '../publish/publication.ts';
import { rolloverOperationalCa } from '../server/ceremonies.ts';
import { openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { rawConnection } from '../store/test-access.ts';
import { makeDevice } from './support/acme-device.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { NON_DER_SERIALS, ocspRequestWithSerial } from './support/hostile.ts';
import { basicOcspResponse, httpRequest, issuerHashes, opensslOcsp, opensslOcspRequest, opensslOcspResponse } from './support/publication.ts';

const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const OCSP_NOCHECK = '1.3.6.1.5.5.7.48.1.5';
const DAY_MS = 24 * 3600 * 1000;
const UNAUTHORIZED = ocspErrorResponse('unauthorized');
const MALFORMED = ocspErrorResponse('malformedRequest');

/** The contents of a minimal non-negative INTEGER (what a CertID carries after its 02 and length). */
const integer = (magnitude: Buffer) => unsignedInteger(magnitude).subarray(2);
const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest();
const post = (server: TestServer, body: Buffer) => httpRequest(server.running.httpPort, 'POST', '/ocsp', { 'content-type': 'application/ocsp-request' }, body);

/** Every key the token signs with while `work` runs, by CKA_ID (hex): the real provider, watched. */
async function signingKeys(server: TestServer, work: () => Promise<void>): Promise<string[]> {
  const provider = server.env.ctx.provider;
  const original = provider.sign.bind(provider);
  const used: string[] = [];
  provider.sign = (key, data) => {
    used.push(key.id.toString('hex'));
    return original(key, data);
  };
  try {
    await work();
  } finally {
    provider.sign = original;
  }
  return used;
}

/** The one SingleResponse's status of a response, and its responder certificate. */
function singleStatus(der: Buffer): { status: string; responder: x509.X509Certificate; byKey: Buffer; tbs: Buffer; signature: Buffer } {
  const { basic, tbs } = basicOcspResponse(der);
  const status = basic.tbsResponseData.responses[0]!.certStatus;
  const certs = basic.certs ?? [];
  expect(certs, 'the responder certificate rides along').to.have.length(1);
  return {
    status: status.good !== undefined ? 'good' : status.revoked ? 'revoked' : 'unknown',
    responder: new x509.X509Certificate(AsnConvert.serialize(certs[0]!)),
    byKey: Buffer.from(basic.tbsResponseData.responderID.byKey!.buffer),
    tbs,
    signature: Buffer.from(basic.signature),
  };
}

describe('OCSP responders (RFC 6960 4.2.2.2) and what a request may learn', function () {
  this.timeout(180_000);
  let server: TestServer;
  let hierarchy: Hierarchy;
  let pems: { root: string; factory: string; operational: string; birth: string; leaf: string };
  let ocspUrl: string;

  before(async () => {
    server = await startTestServer('pglite');
    hierarchy = server.running.hierarchy;
    ocspUrl = `http://127.0.0.1:${server.running.httpPort}/ocsp`;
    const device = await makeDevice(server, 'or-0001');
    await device.enroll();
    pems = {
      root: server.rootPem, factory: hierarchy.factory.certificate.toString('pem'), operational: hierarchy.operational.certificate.toString('pem'),
      birth: device.birthCertificate().toString('pem'), leaf: device.current()!.toString('pem'),
    };
  });
  after(async () => server?.close());

  it('a request naming the root as issuer is unauthorized, for the factory intermediate and any serial, and the root key signs nothing', async () => {
    const root = issuerHashes(pems.root);
    const used = await signingKeys(server, async () => {
      const forIntermediate = await opensslOcspRequest(pems.root, pems.factory);
      expect((await post(server, forIntermediate)).body.equals(UNAUTHORIZED), 'the factory intermediate under the root').to.equal(true);
      const get = await httpRequest(server.running.httpPort, 'GET', `/ocsp/${encodeURIComponent(forIntermediate.toString('base64'))}`);
      expect(get.body.equals(UNAUTHORIZED), 'GET').to.equal(true);
      const random = ocspRequestWithSerial(root.nameHash, root.keyHash, integer(randomBytes(16)));
      expect((await post(server, random)).body.equals(UNAUTHORIZED), 'a random serial under the root').to.equal(true);
      const openssl = await opensslOcsp({ issuerPem: pems.root, rootPem: pems.root, url: ocspUrl, certPem: pems.operational });
      expect(openssl.output).to.match(/unauthorized/i);
    });
    expect(used).to.not.include(hierarchy.root.record.keyId.toString('hex'));
  });

  it('each intermediate answers through a responder of its own: a key in the token, a 30-day certificate with OCSPSigning and ocsp-nocheck; OpenSSL verifies it without -VAfile', async () => {
    const recorded = await server.env.ctx.store.ocspResponders.current();
    for (const [certPem, issuer] of [[pems.birth, hierarchy.factory], [pems.leaf, hierarchy.operational]] as const) {
      const issuerPem = issuer.certificate.toString('pem');
      // The intermediate certifies keyCertSign and cRLSign only (RFC 5280 4.2.1.3): it may not sign OCSP itself.
      expect(issuer.certificate.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.digitalSignature).to.equal(0);
      for (const digest of ['sha1', 'sha256'] as const) {
        const answer = await opensslOcsp({ issuerPem, rootPem: pems.root, url: ocspUrl, certPem, digest });
        expect(answer.ok, answer.output).to.equal(true);
        expect(answer.output).to.match(/Response verify OK/).and.match(/cert\.pem: good/);
      }
      const request = await opensslOcspRequest(issuerPem, certPem);
      const der = (await post(server, request)).body;
      const { status, responder, byKey, tbs, signature } = singleStatus(der);
      expect(status).to.equal('good');
      const text = (await opensslOcspResponse(der, issuerPem, pems.root, certPem)).output;
      expect(text).to.match(/Response verify OK/).and.match(/Responder Id: [0-9A-F]{40}/);

      // The responder certificate: issued by the intermediate, RFC 6960 4.2.2.2 profile.
      expect(responder.issuer).to.equal(issuer.certificate.subject);
      expect(responder.subject).to.contain(`${issuer.certificate.subjectName.getField('CN')[0]} OCSP Responder`);
      expect(await responder.verify({ publicKey: issuer.certificate.publicKey, signatureOnly: true })).to.equal(true);
      const keyUsage = responder.getExtension(x509.KeyUsagesExtension)!;
      expect([keyUsage.critical, keyUsage.usages]).to.deep.equal([true, x509.KeyUsageFlags.digitalSignature]);
      expect(responder.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OCSP_SIGNING]);
      const noCheck = responder.getExtension(OCSP_NOCHECK)!;
      expect([noCheck.critical, Buffer.from(noCheck.value).toString('hex')]).to.deep.equal([false, '0500']);
      expect(responder.getExtension(x509.BasicConstraintsExtension)!.ca).to.equal(false);
      const keyBits = subjectPublicKeyBits(new Uint8Array(responder.publicKey.rawData));
      expect(responder.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId).to.equal(sha1(keyBits).toString('hex'));
      expect(responder.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(issuer.record.ski.toString('hex'));
      const lifetime = responder.notAfter.getTime() - responder.notBefore.getTime();
      expect(lifetime).to.equal(30 * DAY_MS + 5 * 60 * 1000);
      expect(responder.notBefore.getTime()).to.be.below(Date.now() - 4 * 60 * 1000);

      // ResponderID byKey names the responder's key, which signed the response.
      expect(byKey.equals(sha1(keyBits))).to.equal(true);
      const responderKey = createPublicKey({ key: Buffer.from(responder.publicKey.rawData), format: 'der', type: 'spki' });
      expect(verify('sha256', tbs, { key: responderKey, dsaEncoding: 'der' }, signature)).to.equal(true);

      // Made in the token, found by its recorded CKA_ID.
      const record = recorded.find((r) => r.issuerId === issuer.id)!;
      expect(record.serial).to.equal(responder.serialNumber);
      expect(record.keyLabel).to.equal(`devid-ocsp-${issuer.slug}-1`);
      const key = await server.env.ctx.provider.findKeyById(record.keyId);
      expect(key?.label).to.equal(record.keyLabel);
      expect(key!.publicKey.equals(responderKey)).to.equal(true);
    }
    expect(recorded.map((r) => r.issuerId).sort()).to.deep.equal([hierarchy.factory.id, hierarchy.operational.id].sort());

    // A response signed on the spot (an unknown serial) is the responder's too: the intermediate's key signs nothing.
    const operational = issuerHashes(pems.operational);
    const used = await signingKeys(server, async () => {
      const der = (await post(server, ocspRequestWithSerial(operational.nameHash, operational.keyHash, integer(randomBytes(16))))).body;
      expect(singleStatus(der).status).to.equal('unknown');
    });
    expect(used).to.have.length(1);
    expect(used).to.not.include(hierarchy.operational.record.keyId.toString('hex'));
  });

  it('a serial of another of our CAs is answered as one that exists nowhere: same status, same queries, its row never read', async () => {
    const operational = issuerHashes(pems.operational);
    const birthSerial = Buffer.from(new x509.X509Certificate(pems.birth).serialNumber, 'hex');
    const db = rawConnection(server.env.ctx.store);
    const ask = async (serial: Buffer) => {
      const queries: string[] = [];
      const rows: unknown[] = [];
      // Only the lookups a request makes (and what they return): the server's background rounds (OCSP refresh and purge, sync,
      // audit chaining, the CRL round's count of shards) share the connection.
      const lookup = (sql: string) => /^select "serial", .* from "(ocsp_responses|certificates)" where/.test(sql);
      const onQuery = (query: { sql: string }) => { if (lookup(query.sql)) queries.push(query.sql); };
      const onResponse = (response: unknown, query: { sql: string }) => { if (lookup(query.sql)) rows.push(response); };
      db.on('query', onQuery).on('query-response', onResponse);
      try {
        const der = (await post(server, ocspRequestWithSerial(operational.nameHash, operational.keyHash, integer(serial)))).body;
        return { der, queries, rows: JSON.stringify(rows) };
      } finally {
        db.off('query', onQuery).off('query-response', onResponse);
      }
    };
    const elsewhere = await ask(birthSerial);
    const nowhere = await ask(randomBytes(16));
    const [a, b] = [singleStatus(elsewhere.der), singleStatus(nowhere.der)];
    expect([a.status, b.status]).to.deep.equal(['unknown', 'unknown']);
    expect(a.responder.serialNumber).to.equal(b.responder.serialNumber);
    expect(nowhere.queries, 'the lookups are seen').to.have.length.above(0);
    expect(elsewhere.queries).to.deep.equal(nowhere.queries);
    expect(elsewhere.rows, 'the factory CA\'s row for that serial is not read').to.not.contain(birthSerial.toString('hex'));
    // Asked again: both from memory, alike.
    const nowhereSerial = randomBytes(16);
    await ask(nowhereSerial);
    const [again, againNowhere] = [await ask(birthSerial), await ask(nowhereSerial)];
    expect(again.queries).to.deep.equal(againNowhere.queries);
    expect(again.der.equals(elsewhere.der), 'the same signed unknown, from memory').to.equal(true);

    // A CA that is not ours: unauthorized, whatever the serial.
    const stranger = ocspRequestWithSerial(randomBytes(20), randomBytes(20), integer(birthSerial));
    expect((await post(server, stranger)).body.equals(UNAUTHORIZED)).to.equal(true);
  });

  it('a CertID serial that is not a DER INTEGER, or is negative, is malformedRequest on the fast path and the parser\'s, even for a real certificate', async () => {
    const operational = issuerHashes(pems.operational);
    for (const [name, contents] of NON_DER_SERIALS) {
      expect((await post(server, ocspRequestWithSerial(operational.nameHash, operational.keyHash, contents))).body.equals(MALFORMED), name).to.equal(true);
    }
    const serial = Buffer.from(new x509.X509Certificate(pems.leaf).serialNumber, 'hex');
    const padded = Buffer.concat([Buffer.from(serial[0]! & 0x80 ? [0, 0] : [0]), serial]);
    const paddedRequest = ocspRequestWithSerial(operational.nameHash, operational.keyHash, padded);
    expect((await post(server, paddedRequest)).body.equals(MALFORMED), 'the real serial with a redundant 0x00').to.equal(true);
    // Two CertIDs go through @peculiar/asn1-ocsp, which takes any INTEGER.
    for (const [name, contents] of [...NON_DER_SERIALS, ['the real serial with a redundant 0x00', padded] as const]) {
      const two = ocspRequestWithSerial(operational.nameHash, operational.keyHash, integer(serial), contents);
      expect((await post(server, two)).body.equals(MALFORMED), `two CertIDs, ${name}`).to.equal(true);
    }
    // The same serial in DER is answered.
    const der = (await post(server, ocspRequestWithSerial(operational.nameHash, operational.keyHash, integer(serial)))).body;
    expect(singleStatus(der).status).to.equal('good');
  });
});

describe('OCSP responder rotation across processes on PostgreSQL', function () {
  this.timeout(180_000);
  let server: TestServer;

  before(async () => {
    server = await startTestServer('postgres');
  });
  after(async () => server?.close());

  it('a rollover gets its responder at start; near a responder\'s end two processes make one new one per CA, and the pre-signed responses are signed again by it', async () => {
    const { ctx } = server.env;
    const device = await makeDevice(server, 'or-0002');
    await device.enroll();
    const birth = new x509.X509Certificate(device.birthCertificate().toString('pem'));
    await rolloverOperationalCa(ctx, 'cli');
    const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: true });
    const other = new Store(openDatabase(ctx.config.database));
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const processes = [ctx.store, other].map((store) => new Publication(store, hierarchy, ctx, clock, ctx.logger));
    try {
      // The new operational intermediate gets its responder when a process starts on the new hierarchy; the old one keeps its own.
      await processes[0]!.responders.maintain();
      const numbers = async () => Object.fromEntries((await ctx.store.ocspResponders.current()).map((r) => [hierarchy.byId(r.issuerId)!.slug, r.number]));
      expect(await numbers()).to.deep.equal({ factory: 1, operational: 1, 'operational-2': 1 });
      const old = hierarchy.byId(hierarchy.issuers.find((i) => i.slug === 'operational')!.id)!;
      const answer = await opensslOcsp({ issuerPem: old.certificate.toString('pem'), rootPem: server.rootPem, url: `http://127.0.0.1:${server.running.httpPort}/ocsp`, certPem: device.current()!.toString('pem') });
      expect(answer.output).to.match(/Response verify OK/).and.match(/cert\.pem: good/);

      // 21 days on, 9 left: both processes see it at once; one makes the next responder of each CA, the other loads it.
      offset = 21 * DAY_MS;
      const oldStillLive = await ctx.store.ocsp.hasLive(old.id, clock());
      await Promise.all(processes.map((p) => p.responders.maintain()));
      expect(await numbers()).to.deep.equal({ factory: 2, operational: oldStillLive ? 2 : 1, 'operational-2': 2 });
      for (const p of processes) expect(p.responders.get(hierarchy.factory.id)?.record.number).to.equal(2);
      const newFactory = processes[0]!.responders.get(hierarchy.factory.id)!.record;
      expect(newFactory.keyLabel).to.equal('devid-ocsp-factory-2');

      // Once every process has loaded it, what the old responder signed is signed again by the new one.
      offset += RESPONDER_TAKEOVER_MS + 1000;
      await processes[1]!.ocspRound();
      const row = await ctx.store.ocsp.find(birth.serialNumber, hierarchy.factory.id);
      expect(singleStatus(row!.sha1!).responder.serialNumber).to.equal(newFactory.serial);
      expect(singleStatus(row!.sha256!).responder.serialNumber).to.equal(newFactory.serial);
    } finally {
      for (const p of processes) p.stop();
      await other.close();
    }
  });
});
