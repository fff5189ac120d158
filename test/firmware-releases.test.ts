import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { declareModel } from '../registry/catalogue/models.ts';
import { initialise } from '../server/ceremonies.ts';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { serve, type RunningServer } from '../server/serve.ts';
import { createToken } from '../server/tokens.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { httpsRequest } from './support/https.ts';
import { checkAnswersAgainstOpenapi } from './support/openapi.ts';
import { httpRequest } from './support/publication.ts';
import { outsideVerify } from './support/suit-verifier.ts';
import { DATABASE_KINDS } from './support/databases.ts';

const IMAGE = Buffer.from('firmware image 1.0.0 of thermo-2\n'.repeat(100));
const DIGEST = createHash('sha256').update(IMAGE).digest('hex');
const RELEASES = '/operator/v1/models/thermo-2/firmware-releases';

/** An audit event's data, from its canonical JSON. */
const dataOf = (canonical: string) => (JSON.parse(canonical) as { data: Record<string, unknown> }).data;

/** RFC 8785 for an object of ASCII strings and integers: keys sorted, no spaces. */
const canonicalSha256 = (value: Record<string, string | number>) =>
  createHash('sha256').update(JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1))))).digest('hex');

for (const kind of DATABASE_KINDS) describe(`signed firmware releases on ${kind}: two operators, a SUIT envelope signed in the HSM, checked by an outside verifier`, function () {
  this.timeout(180_000);
  let env: TestEnvironment;
  let running: RunningServer;
  let rootPem: string;
  const tokens: Record<'alice' | 'aliceAgain' | 'bob', string> = { alice: '', aliceAgain: '', bob: '' };
  checkAnswersAgainstOpenapi();

  before(async () => {
    env = await createTestEnvironment(kind);
    await initialise(env.ctx);
    await declareModel(env.ctx.store, env.ctx.audit, 'cli', 'thermo-2', { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices' }, new Date());
    await declareModel(env.ctx.store, env.ctx.audit, 'cli', 'unsigned-1', { hwType: '1.3.6.1.4.1.99999.1.3', manufacturer: 'Acme Devices' }, new Date());
    await createFirmwareCa(env.ctx, 'cli');
    await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli');
    running = await serve(env.ctx, {});
    rootPem = running.hierarchy.root.certificate.toString('pem');
    const make = async (name: string) => (await createToken(env.ctx.store, env.ctx.audit, { role: 'operator', name }, 'cli', new Date())).token;
    tokens.alice = await make('alice');
    tokens.aliceAgain = await make('alice');
    tokens.bob = await make('bob');
  });
  after(async () => {
    await running?.close();
    await env?.cleanup();
  });

  const send = (method: string, path: string, token: string, body?: unknown) => {
    return httpsRequest(running.httpsPort, rootPem, method, path, {
      authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    }, body === undefined ? undefined : JSON.stringify(body));
  };
  const envelopeOf = (model: string, version: string) => httpRequest(running.httpPort, 'GET', `/firmware/${model}/${version}.suit`);

  it('a proposal answers its RFC 8785 hash; the envelope is not published before approval', async () => {
    const proposed = await send('POST', RELEASES, tokens.alice, { version: '1.0.0', digest: DIGEST.toUpperCase(), size: IMAGE.length, sequence: 10 });
    expect(proposed.status, proposed.text).to.equal(201);
    expect(proposed.json.proposal).to.equal(canonicalSha256({ model: 'thermo-2', version: '1.0.0', digest: DIGEST, size: IMAGE.length, sequence: 10 }));
    expect(proposed.json).to.include({ status: 'proposed', proposedBy: 'alice', digest: DIGEST, envelope: null, minSequence: null });
    const read = await send('GET', `${RELEASES}/1.0.0`, tokens.bob);
    expect(read.json.proposal).to.equal(proposed.json.proposal);
    expect((await envelopeOf('thermo-2', '1.0.0')).status).to.equal(404);
  });

  it('refuses malformed proposals, a sequence that does not go up, a version taken, an unknown model', async () => {
    const bad = [
      { version: '1.0.1', digest: 'abc', size: 1, sequence: 11 },
      { version: '1.0.1', digest: DIGEST, size: 0, sequence: 11 },
      { version: '1.0.1', digest: DIGEST, size: 1, sequence: -1 },
      { version: '1.0.1', digest: DIGEST, size: 1, sequence: 1.5 },
      { version: '1.0.1', digest: DIGEST, size: 1, sequence: 11, minSequence: 12 },
      { version: '../x', digest: DIGEST, size: 1, sequence: 11 },
      { version: '1.0.1', digest: DIGEST, size: 1, sequence: 11, extra: true },
      { version: '1.0.1', digest: DIGEST, size: 1 },
    ];
    for (const body of bad) expect((await send('POST', RELEASES, tokens.alice, body)).status, JSON.stringify(body)).to.equal(400);
    const lower = await send('POST', RELEASES, tokens.alice, { version: '0.9.0', digest: DIGEST, size: 1, sequence: 10 });
    expect([lower.status, lower.json.detail]).to.deep.equal([409, 'sequence 10 is not above 10, the highest of model thermo-2\'s releases: sequence numbers only go up']);
    expect((await send('POST', RELEASES, tokens.alice, { version: '1.0.0', digest: DIGEST, size: 1, sequence: 99 })).status).to.equal(409);
    expect((await send('POST', '/operator/v1/models/nope/firmware-releases', tokens.alice, { version: '1.0.0', digest: DIGEST, size: 1, sequence: 1 })).status).to.equal(404);
    expect(lower.headers['content-type']).to.match(/^application\/problem\+json/);
  });

  it('approval: not by the proposer (even with another token), not without or with a wrong proposal hash; each refusal audited', async () => {
    const { proposal } = (await send('GET', `${RELEASES}/1.0.0`, tokens.bob)).json;
    const self = await send('POST', `${RELEASES}/1.0.0/approve`, tokens.aliceAgain, { proposal });
    expect([self.status, self.json.detail]).to.deep.equal([403, 'alice proposed this release: another operator must approve it']);
    expect((await send('POST', `${RELEASES}/1.0.0/approve`, tokens.bob, {})).status).to.equal(400);
    expect((await send('POST', `${RELEASES}/1.0.0/approve`, tokens.bob, { proposal: 'f'.repeat(64) })).status).to.equal(409);
    expect((await send('POST', `${RELEASES}/2.0.0/approve`, tokens.bob, { proposal })).status).to.equal(404);
    const events = await env.ctx.store.audit.page(0, 10_000);
    const refusals = events.filter((e) => e.action === 'firmware.release-approval-refused').map((e) => dataOf(e.canonical));
    expect(refusals.map((r) => r.principal)).to.deep.equal(['alice', 'bob']);
    expect((await envelopeOf('thermo-2', '1.0.0')).status).to.equal(404);
  });

  it('approved by another operator: signed; the envelope is served and the outside verifier accepts it', async () => {
    const { proposal } = (await send('GET', `${RELEASES}/1.0.0`, tokens.bob)).json;
    const approved = await send('POST', `${RELEASES}/1.0.0/approve`, tokens.bob, { proposal });
    expect(approved.status, approved.text).to.equal(200);
    expect(approved.json).to.include({ status: 'approved', approvedBy: 'bob', envelope: 'http://pki.devid.test/firmware/thermo-2/1.0.0.suit' });
    expect((await send('POST', `${RELEASES}/1.0.0/approve`, tokens.bob, { proposal })).status, 'approved once').to.equal(409);

    const served = await envelopeOf('thermo-2', '1.0.0');
    expect(served.status).to.equal(200);
    expect(served.headers['content-type']).to.equal('application/suit-envelope+cose');
    const verdict = outsideVerify(served.body, { rootPem });
    expect(verdict.ok, verdict.reason).to.equal(true);
    expect(verdict.facts).to.include({ sequence: 10, imageDigest: DIGEST, imageSize: IMAGE.length, manifestSha256: approved.json.manifestSha256 });
    expect(verdict.facts!.signer).to.equal('CN=thermo-2,OU=Firmware Signer,O=devid.test'.replace('devid.test', String(running.identity.trustDomain)));
    expect(verdict.facts!.components).to.deep.equal([['00']]);
    const events = await env.ctx.store.audit.page(0, 10_000);
    const approval = dataOf(events.find((e) => e.action === 'firmware.release-approved')!.canonical);
    expect(approval).to.include({ model: 'thermo-2', version: '1.0.0', principal: 'bob', proposedBy: 'alice', proposal, manifestSha256: approved.json.manifestSha256 });
  });

  it('the outside verifier refuses a flipped byte anywhere, and another root', async () => {
    const served = (await envelopeOf('thermo-2', '1.0.0')).body;
    for (const at of [20, Math.floor(served.length / 2), served.length - 30, served.length - 1]) {
      const flipped = Buffer.from(served);
      flipped[at]! ^= 0x01;
      expect(outsideVerify(flipped, { rootPem }).ok, `byte ${at}`).to.equal(false);
    }
    const other = await createTestEnvironment('pglite');
    try {
      const { hierarchy } = await initialise(other.ctx);
      expect(outsideVerify(served, { rootPem: hierarchy.root.certificate.toString('pem') }).reason).to.contain('does not verify under');
    } finally {
      await other.cleanup();
    }
  });

  it('the next release needs a higher sequence; a model without a signer cannot be approved; every answer is as documented', async () => {
    const next = await send('POST', RELEASES, tokens.bob, { version: '1.1.0', digest: 'ab'.repeat(32), size: 5000, sequence: 11, minSequence: 10 });
    expect(next.status).to.equal(201);
    expect(next.json.proposal).to.equal(canonicalSha256({ model: 'thermo-2', version: '1.1.0', digest: 'ab'.repeat(32), size: 5000, sequence: 11, minSequence: 10 }));
    const listed = await send('GET', RELEASES, tokens.alice);
    expect(listed.json.releases.map((r: { version: string }) => r.version)).to.deep.equal(['1.0.0', '1.1.0']);
    const unsigned = await send('POST', '/operator/v1/models/unsigned-1/firmware-releases', tokens.alice, { version: '1.0.0', digest: DIGEST, size: 1, sequence: 1 });
    const refused = await send('POST', '/operator/v1/models/unsigned-1/firmware-releases/1.0.0/approve', tokens.bob, { proposal: unsigned.json.proposal });
    expect([refused.status, refused.json.detail]).to.deep.equal([409, 'model unsigned-1 has no firmware signer yet: run "devid-ca ca firmware-signer unsigned-1"']);
    expect((await send('GET', `${RELEASES}/9.9.9`, tokens.alice)).status).to.equal(404);
    expect((await envelopeOf('thermo-2', '9.9.9')).status).to.equal(404);
    expect((await envelopeOf('thermo-2', '1.1.0')).status).to.equal(404);
  });

  it('a revoked signer signs no more; its replacement (devid-firmware-signer-<model>-2) does', async () => {
    const signer = (await env.ctx.store.firmwareSigners.ofModel('thermo-2'))!;
    const revoked = await send('POST', `/operator/v1/certificates/${signer.certificateSerial}/revoke`, tokens.alice, { reason: 'keyCompromise' });
    expect(revoked.status, revoked.text).to.equal(200);
    const { proposal } = (await send('GET', `${RELEASES}/1.1.0`, tokens.alice)).json;
    const refused = await send('POST', `${RELEASES}/1.1.0/approve`, tokens.alice, { proposal });
    expect([refused.status, refused.json.detail]).to.deep.equal([409, `the firmware signer of model thermo-2 (certificate ${signer.certificateSerial}) is revoked: make a new one with "devid-ca ca firmware-signer thermo-2"`]);
    const replacement = await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli');
    expect(replacement.keyLabel).to.equal('devid-firmware-signer-thermo-2-2');
    expect(String(await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli').catch((e: unknown) => e))).to.contain('revoke its certificate first');
    const approved = await send('POST', `${RELEASES}/1.1.0/approve`, tokens.alice, { proposal });
    expect([approved.status, approved.json.signer]).to.deep.equal([200, replacement.certificateSerial]);
    const verdict = outsideVerify((await envelopeOf('thermo-2', '1.1.0')).body, { rootPem });
    expect(verdict.ok, verdict.reason).to.equal(true);
    expect(verdict.facts).to.include({ sequence: 11, imageSize: 5000 });
    expect((await envelopeOf('thermo-2', '1.0.0')).status, 'what was signed stays published').to.equal(200);
  });

  it('two proposals racing for one sequence: one wins, the other is 409', async () => {
    const race = await Promise.all(['2.0.0', '2.0.1'].map((version) => send('POST', RELEASES, tokens.alice, { version, digest: DIGEST, size: 1, sequence: 20 })));
    expect(race.map((a) => a.status).sort()).to.deep.equal([201, 409]);
  });

  it('the publication listener answers odd firmware paths with a problem document (404, or 400 for a broken escape), never a 5xx', async () => {
    for (const path of ['/firmware/thermo-2/1.0.0', '/firmware/thermo-2/.suit', '/firmware/thermo-2/..%2F1.0.0.suit', '/firmware/..%2Fx/1.0.0.suit',
      `/firmware/${'a'.repeat(300)}/1.0.0.suit`, `/firmware/thermo-2/${'1'.repeat(70)}.suit`, '/firmware/thermo-2/%ff.suit', '/firmware/thermo-2']) {
      const answer = await httpRequest(running.httpPort, 'GET', path);
      expect(answer.status, path).to.equal(path.includes('%ff') ? 400 : 404);
      expect(answer.headers['content-type'], path).to.match(/^application\/problem\+json/);
    }
  });
});
