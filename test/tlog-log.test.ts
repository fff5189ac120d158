import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DomainError } from '../errors/domain-error.ts';
import { leafHash, referenceRoot } from '../registry/tlog/merkle.ts';
import { logOrigin, openLogKey } from '../registry/tlog/log-key.ts';
import { openCheckpoint, verifierKey } from '../registry/tlog/signed-note.ts';
import type { TransparencyLog } from '../registry/tlog/transparency-log.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { DATABASE_KINDS } from './support/databases.ts';
import { buildGoVerifier, runGoVerifier } from './support/go-verifier.ts';
import { httpRequest } from './support/publication.ts';
import { makeDeviceKey } from './support/device.ts';
import { BIN, runCli } from './support/cli.ts';
import { DEVICE_PROOF_FORMAT, deviceProofExport } from '../registry/audit/audit-export.ts';
import { verifyDeviceExport } from '../registry/audit/device-export-verify.ts';
import { verifyTlog } from '../registry/tlog/tlog-verify.ts';
import { StoredTree } from '../registry/tlog/proofs.ts';
import { rawConnection } from '../store/test-access.ts';

/** An HTTPS GET whose body stays bytes (entry bundles are binary). */
function httpsBytes(server: TestServer, path: string, token?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const req = request({ host: '127.0.0.1', servername: 'ca.devid.test', port: server.running.httpsPort, path, headers, ca: server.rootPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function parseBundle(bundle: Buffer): Buffer[] {
  const entries: Buffer[] = [];
  for (let at = 0; at < bundle.length;) {
    const length = bundle.readUInt16BE(at);
    entries.push(bundle.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return entries;
}

/** RFC 9162 section 2.1.3.2, as written there, with node:crypto: whether `proof` proves `entry` at `index` in the tree of `size` and `root`. */
function verifyInclusion(entry: Buffer, index: number, size: number, proof: Buffer[], root: Buffer): boolean {
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = sha(Buffer.of(0), entry);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha(Buffer.of(1), p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = sha(Buffer.of(1), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

async function allEntries(server: TestServer): Promise<Buffer[]> {
  const entries: Buffer[] = [];
  for (;;) {
    const page = await server.env.ctx.store.audit.page(entries.length, 1000);
    if (page.length === 0) return entries;
    entries.push(...page.map((e) => Buffer.from(e.canonical, 'utf8')));
  }
}

for (const kind of DATABASE_KINDS) {
  describe(`tlog: the audit log as a Merkle log in tlog-tiles (${kind})`, function () {
    this.timeout(180_000);
    checkAnswersAgainstOpenapi();
    let server: TestServer;
    let log: TransparencyLog;
    let firstNote: string;
    const http = (path: string) => httpRequest(server.running.httpPort, 'GET', path);

    before(async () => {
      server = await startTestServer(kind);
      const born = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-TLOG-1', model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem } });
      if (born.status !== 201) throw new Error(`birth: ${born.status} ${born.text}`);
      if (!('log' in server.running.tlog)) throw new Error(`the log is disabled: ${server.running.tlog.disabled}`);
      log = server.running.tlog.log;
      firstNote = (await log.step(server.env.ctx.store))!.note;
    });
    after(() => server?.close());

    it('signs a first checkpoint over every event, named after the public HTTP base URL', async () => {
      const answer = await http('/log/checkpoint');
      expect(answer.status).to.equal(200);
      expect(answer.headers['content-type']).to.equal('text/plain; charset=utf-8');
      expect(answer.headers['cache-control']).to.equal('public, max-age=5');
      expect(answer.body.toString()).to.equal(firstNote);
      expect(logOrigin('http://pki.devid.test')).to.equal('pki.devid.test/log');
      const key = log.logKey.key;
      const body = openCheckpoint(firstNote, 'pki.devid.test/log', key.publicKey, key.rawPublicKey)!;
      const entries = await allEntries(server);
      expect(body.size).to.be.at.most(entries.length).and.above(0);
      expect(body.root.equals(referenceRoot(entries.slice(0, body.size).map(leafHash)))).to.equal(true);
      expect((await http('/log/key')).body.toString()).to.equal(`${log.logKey.verifierKey}\n`);
    });

    it('follows the chain by itself: a new checkpoint within 10 s of new events, its root an independent computation\'s', async () => {
      for (let i = 0; i < 600; i += 1) await server.env.ctx.audit.recordAlone(server.env.ctx.store, { action: 'test.filler', actor: 'system', data: { i } });
      const entries = await allEntries(server);
      const started = Date.now();
      let note = '';
      while (Date.now() - started < 10_000) {
        note = (await http('/log/checkpoint')).body.toString();
        if (Number(note.split('\n')[1]) >= entries.length) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const body = openCheckpoint(note, log.logKey.name, log.logKey.key.publicKey, log.logKey.key.rawPublicKey)!;
      expect(body.size, 'the checkpoint covers the new events within 10 s').to.be.at.least(entries.length);
      const covered = (await allEntries(server)).slice(0, body.size);
      expect(body.root.equals(referenceRoot(covered.map(leafHash)))).to.equal(true);
    });

    it('serves hash tiles, full (immutable) and partial, and the entry bundles to auditors and operators only', async () => {
      const size = Number((await http('/log/checkpoint')).body.toString().split('\n')[1]);
      const leaves = (await allEntries(server)).slice(0, size).map(leafHash);
      const full = await http('/log/tile/0/000');
      expect(full.status).to.equal(200);
      expect(full.headers['content-type']).to.equal('application/octet-stream');
      expect(full.headers['cache-control']).to.equal('public, max-age=31536000, immutable');
      expect(full.body.equals(Buffer.concat(leaves.slice(0, 256)))).to.equal(true);
      const width = size % 256 || 256;
      const lastIndex = Math.ceil(size / 256) - 1;
      const partial = await http(`/log/tile/0/${String(lastIndex).padStart(3, '0')}${width < 256 ? `.p/${width}` : ''}`);
      expect(partial.body.equals(Buffer.concat(leaves.slice(lastIndex * 256, size)))).to.equal(true);
      const level1 = await http(`/log/tile/1/000.p/${Math.floor(size / 256)}`);
      expect(level1.body.equals(Buffer.concat([0, 1].slice(0, Math.floor(size / 256)).map((t) => referenceRoot(leaves.slice(t * 256, t * 256 + 256)))))).to.equal(true);

      const bundle = await httpsBytes(server, '/log/tile/entries/000', server.tokens.auditor);
      expect(bundle.status).to.equal(200);
      const entries = parseBundle(bundle.body);
      expect(entries).to.have.length(256);
      expect(entries.map(leafHash).every((h, i) => h.equals(leaves[i]!))).to.equal(true);
      expect((await httpsBytes(server, '/log/tile/entries/000.p/3', server.tokens.operator)).status).to.equal(200);
      expect((await httpsBytes(server, '/log/tile/entries/000', server.tokens.factory)).status).to.equal(403);
      expect((await httpsBytes(server, '/log/tile/entries/000')).status).to.equal(401);
      expect((await http('/log/tile/entries/000')).status).to.equal(400);
    });

    it('answers hostile tile paths with problem documents, never a 5xx', async () => {
      const hostile = [
        '/log/tile/0/1', '/log/tile/0/0000', '/log/tile/0/x000/001', '/log/tile/0/000.p/0', '/log/tile/0/000.p/256', '/log/tile/0/000.p/999',
        '/log/tile/64/000', '/log/tile/-1/000', '/log/tile/0/%2e%2e/000', '/log/tile/0/000%2Fx', '/log/tile/', '/log/tile', '/log/tile/0/999',
        '/log/tile/0/x999/x999/x999/x999/999', '/log/tile/9/000', '/log/tile/0/x001/x001/x001/x001/x001/001', `/log/tile/0/${'x001/'.repeat(200)}001`,
        '/log/tile/1/x001/000', '/log/checkpoint/x',
      ];
      for (const path of hostile) {
        const answer = await http(path);
        expect([400, 404], path).to.include(answer.status);
        expect(answer.headers['content-type'], path).to.match(/^application\/problem\+json/);
      }
      expect((await http('/log/tile/0/000?x=1%ZZ')).status, 'a query string is ignored').to.be.below(500);
      for (const path of ['/log/tile/entries/999', '/log/tile/entries/000.p/0', '/log/tile/entries/x000/000', '/log/tile/entries/002.p/255']) {
        const answer = await httpsBytes(server, path, server.tokens.auditor);
        expect([400, 404], path).to.include(answer.status);
        expect(String(answer.headers['content-type']), path).to.match(/^application\/problem\+json/);
      }
    });

    it('refuses an action whose event would exceed 65,535 bytes, writing nothing', async () => {
      const { ctx } = server.env;
      const before = await ctx.store.audit.count();
      const attempt = ctx.audit.record(ctx.store, async (tx) => {
        await tx.settings.set('tlog-test', 'written');
        return { value: undefined, events: [{ action: 'test.huge', actor: 'system', data: { text: 'x'.repeat(65_500) } }] };
      });
      const err = await attempt.then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(DomainError);
      expect((err as DomainError).kind).to.equal('malformed');
      expect(await ctx.store.audit.count()).to.equal(before);
      expect((await ctx.store.settings.all())['tlog-test']).to.equal(undefined);
      await ctx.audit.recordAlone(ctx.store, { action: 'test.large', actor: 'system', data: { text: 'x'.repeat(65_000) } });
      expect(await ctx.store.audit.count()).to.equal(before + 1);
    });

    it('refuses a person\'s action whose free text is over 4 KiB of UTF-8 with 400, writing nothing; the CA\'s own records are not refused', async () => {
      const { ctx } = server.env;
      // A device of its own: the proofs below count SN-TLOG-1's events.
      const born = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-TLOG-2', model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem } });
      expect(born.status).to.equal(201);
      const before = await ctx.store.audit.count();
      const owner = (await ctx.store.devices.find('SN-TLOG-2'))!.owner;
      // 2,048 characters pass the field's own check, but '€' is 3 bytes of UTF-8: 6 KiB.
      const tooLong = await server.request('POST', '/operator/v1/devices/SN-TLOG-2/transfer', { token: server.tokens.operator, body: { to: 'acme-corp', evidence: '€'.repeat(2048) } });
      expect(tooLong.status).to.equal(400);
      expect(tooLong.json.detail).to.match(/data\.evidence .* longer than 4096 bytes/);
      expect(await ctx.store.audit.count()).to.equal(before);
      expect((await ctx.store.devices.find('SN-TLOG-2'))!.owner).to.equal(owner);
      const nested = ctx.audit.recordAlone(ctx.store, { action: 'test.note', actor: 'cli:0', data: { grant: { comment: 'x'.repeat(4097) } } });
      expect(await nested.then(() => '', (e: DomainError) => e.message)).to.match(/data\.grant\.comment/);
      const atCap = await server.request('POST', '/operator/v1/devices/SN-TLOG-2/transfer', { token: server.tokens.operator, body: { to: 'acme-corp', evidence: '€'.repeat(1365) } });
      expect(atCap.status, atCap.text).to.equal(200);
      await ctx.audit.recordAlone(ctx.store, { action: 'test.refusal', actor: 'device:SN-TLOG-2', data: { reason: 'x'.repeat(5000) } });
      expect(await ctx.store.audit.count()).to.equal(before + 2);
    });

    it('audit verify rebuilds the tree from the events and finds a changed tile or checkpoint key', async () => {
      const { ctx } = server.env;
      await log.step(ctx.store);
      const key = { name: log.logKey.name, publicKey: log.logKey.key.publicKey, rawPublicKey: log.logKey.key.rawPublicKey };
      const report = await verifyTlog(ctx.store, key);
      expect(report.ok, JSON.stringify(report)).to.equal(true);
      const db = rawConnection(ctx.store);
      const [row] = await db('tlog_tiles').select('hashes').where({ level: 0, tile_index: 1 });
      const changed = Buffer.from(row.hashes as Buffer);
      changed[40]! ^= 1;
      await db('tlog_tiles').update({ hashes: changed }).where({ level: 0, tile_index: 1 });
      try {
        expect(await verifyTlog(ctx.store, key)).to.deep.equal({ ok: false, reason: 'the stored tile 0/1 differs from the one rebuilt from the events' });
      } finally {
        await db('tlog_tiles').update({ hashes: row.hashes }).where({ level: 0, tile_index: 1 });
      }
      const other = generateKeyPairSync('ed25519').publicKey;
      const otherRaw = Buffer.from(other.export({ format: 'jwk' }).x!, 'base64url');
      expect((await verifyTlog(ctx.store, { ...key, publicKey: other, rawPublicKey: otherRaw })).ok).to.equal(false);
      if (kind === 'postgres') {
        // The command itself, beside the running server (PostgreSQL lets both open the database).
        const output = await new Promise<string>((resolve, reject) => {
          execFile(BIN, ['audit', 'verify'], { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...server.env.env }, encoding: 'utf8', timeout: 60_000 },
            (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}${stderr}`)) : resolve(stdout)));
        });
        expect(output).to.match(/\nOK: Merkle log, \d+ entries in tiles, checkpoint at size \d+ \(root [A-Za-z0-9+/=]{44}\)\n$/);
      }
    });

    it('proves a device\'s entries: every event naming it, each with an RFC 9162 inclusion proof in a signed checkpoint', async () => {
      const { ctx } = server.env;
      for (let i = 0; i < 3; i += 1) await ctx.audit.recordAlone(ctx.store, { action: 'test.device-note', actor: 'system', device: 'SN-TLOG-1', data: { i } });
      await log.step(ctx.store);
      const first = openCheckpoint(firstNote, log.logKey.name, log.logKey.key.publicKey, log.logKey.key.rawPublicKey)!;
      const latest = await server.request('GET', '/audit/v1/devices/SN-TLOG-1/proof', { token: server.tokens.auditor });
      expect(latest.status).to.equal(200);
      const earlier = await server.request('GET', `/audit/v1/devices/SN-TLOG-1/proof?size=${first.size}`, { token: server.tokens.operator });
      expect(earlier.status).to.equal(200);
      const events = await ctx.store.audit.byDevice('SN-TLOG-1');
      for (const answer of [latest.json, earlier.json]) {
        const body = openCheckpoint(answer.checkpoint, log.logKey.name, log.logKey.key.publicKey, log.logKey.key.rawPublicKey)!;
        expect(body.size).to.equal(answer.size);
        const named = events.filter((e) => e.seq <= body.size);
        expect(answer.entries.map((e: { index: number }) => e.index)).to.deep.equal(named.map((e) => e.seq - 1));
        expect(answer.entries.length).to.be.above(0);
        for (const item of answer.entries as Array<{ index: number; entry: string; proof: string[] }>) {
          const proof = item.proof.map((h) => Buffer.from(h, 'base64'));
          expect(verifyInclusion(Buffer.from(item.entry, 'utf8'), item.index, body.size, proof, body.root), `entry ${item.index}`).to.equal(true);
          expect(verifyInclusion(Buffer.from(`${item.entry} `, 'utf8'), item.index, body.size, proof, body.root)).to.equal(false);
        }
      }
      expect(latest.json.entries.length).to.equal(earlier.json.entries.length + 3);
      for (const [path, status] of [
        ['/audit/v1/devices/SN-TLOG-1/proof?size=abc', 400], ['/audit/v1/devices/SN-TLOG-1/proof?size=01', 400], ['/audit/v1/devices/SN-TLOG-1/proof?size=99999999999999999', 400],
        ['/audit/v1/devices/SN-TLOG-1/proof?size=999999', 404], ['/audit/v1/devices/SN-TLOG-1/proof?other=1', 400], ['/audit/v1/devices/SN-NOPE/proof', 404],
        ['/audit/v1/devices/SN-TLOG-1/proof?size=1&size=2', 400],
      ] as const) {
        expect((await server.request('GET', path, { token: server.tokens.auditor })).status, path).to.equal(status);
      }
      expect((await server.request('GET', '/audit/v1/devices/SN-TLOG-1/proof', { token: server.tokens.factory })).status).to.equal(403);
    });

    it('exports one device\'s entries with their proofs and the checkpoint, which verify-export checks with the log key alone, any changed byte failing', async () => {
      const { ctx } = server.env;
      for (let i = 0; i < 2; i += 1) await ctx.audit.recordAlone(ctx.store, { action: 'test.device-export', actor: 'system', device: 'SN-TLOG-1', data: { i } });
      await log.step(ctx.store);
      const text = (await deviceProofExport(ctx.store, 'SN-TLOG-1'))!;
      const doc = JSON.parse(text);
      expect(doc.format).to.equal(DEVICE_PROOF_FORMAT);
      const answer = await server.request('GET', `/audit/v1/devices/SN-TLOG-1/proof?size=${doc.size}`, { token: server.tokens.auditor });
      const { format: _f, serial: _s, ...sameShape } = doc;
      expect(sameShape, 'the same shape as the proof endpoint').to.deep.equal(answer.json);
      expect(doc.entries.length).to.be.at.least(3);
      const key = log.logKey.verifierKey;
      const report = verifyDeviceExport(text, key);
      expect(report, JSON.stringify(report.problems)).to.deep.include({ ok: true, serial: 'SN-TLOG-1', size: doc.size, entries: doc.entries.length });
      expect(verifyDeviceExport(JSON.stringify(answer.json), key, 'SN-TLOG-1').ok, 'a saved proof answer, with the serial').to.equal(true);
      expect(verifyDeviceExport(JSON.stringify(answer.json), key).ok, 'a proof answer names no device').to.equal(false);
      expect(verifyDeviceExport(text, key, 'SN-OTHER').ok).to.equal(false);
      const otherKey = verifierKey(log.logKey.name, Buffer.alloc(32, 7));
      expect(verifyDeviceExport(text, otherKey).ok, 'another log key').to.equal(false);
      const bytes = Buffer.from(text, 'utf8');
      for (let at = 0; at < bytes.length; at += 1) {
        const changed = Buffer.from(bytes);
        changed[at]! ^= 1;
        expect(verifyDeviceExport(changed.toString('utf8'), key).ok, `byte ${at} (${JSON.stringify(text.slice(Math.max(0, at - 10), at + 10))}) changed`).to.equal(false);
      }
      // An entry of another device, proved in the same tree, is refused: every entry must name the device.
      const first = (await ctx.store.audit.page(0, 1))[0]!;
      const proof = await new StoredTree(ctx.store).inclusionProof(0, doc.size);
      const mixed = { ...doc, entries: [{ index: 0, entry: first.canonical, proof: proof.map((h) => h.toString('base64')) }, ...doc.entries] };
      expect(verifyDeviceExport(JSON.stringify(mixed), key).problems).to.deep.equal(['entry 0: the event names null, not the device SN-TLOG-1']);
      // The command line: written by `audit export --proofs` (PostgreSQL lets it open the database beside the server), checked by `audit verify-export --log-key`.
      const dir = mkdtempSync(join(tmpdir(), 'devid-test-proofs-'));
      try {
        const file = join(dir, 'device.json');
        const keyFile = join(dir, 'log.key');
        writeFileSync(keyFile, `${key}\n`);
        if (kind === 'postgres') {
          // Not spawnSync: the server this command shares the database with runs in this process, and may hold a lock.
          await new Promise<void>((resolve, reject) => {
            execFile(BIN, ['audit', 'export', '--device', 'SN-TLOG-1', '--proofs', '--out', file], { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...server.env.env }, encoding: 'utf8', timeout: 60_000 },
              (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}${stderr}`)) : resolve()));
          });
        } else {
          writeFileSync(file, text);
        }
        const ok = runCli(['audit', 'verify-export', file, '--log-key', keyFile], {});
        expect(ok.stdout, ok.stderr).to.match(/^OK: \d+ entries of SN-TLOG-1, each proved in the checkpoint of size \d+ signed by the log key\n$/);
        expect(runCli(['audit', 'verify-export', file, '--log-key', key, '--json'], {}).status).to.equal(0);
        const changed = readFileSync(file, 'utf8').replace('"proof":["', '"proof":["A');
        writeFileSync(file, changed);
        const failed = runCli(['audit', 'verify-export', file, '--log-key', keyFile], {});
        expect(failed.status).to.equal(1);
        expect(failed.stdout).to.match(/^FAILED:\n/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('extends and signs once when several steps run together (the log\'s lock), and the tree still verifies', async () => {
      const { ctx } = server.env;
      for (let i = 0; i < 50; i += 1) await ctx.audit.recordAlone(ctx.store, { action: 'test.filler', actor: 'system', data: { i } });
      const results = await Promise.all([log.step(ctx.store), log.step(ctx.store), log.step(ctx.store)]);
      expect(new Set(results.map((r) => r!.note)).size).to.equal(1);
      const key = { name: log.logKey.name, publicKey: log.logKey.key.publicKey, rawPublicKey: log.logKey.key.rawPublicKey };
      expect((await verifyTlog(ctx.store, key)).ok).to.equal(true);
    });

    it('keeps the log disabled, saying why, when the public base URL no longer names the signed checkpoints', async () => {
      const { ctx } = server.env;
      const again = await openLogKey(ctx.provider, ctx.store, 'http://pki.devid.test/');
      expect(again.ok && again.logKey.verifierKey).to.equal(log.logKey.verifierKey);
      const moved = await openLogKey(ctx.provider, ctx.store, 'https://elsewhere.example');
      expect(moved).to.deep.equal({ ok: false, reason: 'the newest log checkpoint is not signed by "devid-log" under the name "elsewhere.example/log": was DEVID_HTTP_BASE_URL or the token changed?' });
      expect(await openLogKey(ctx.provider, ctx.store, 'http://bad host')).to.deep.include({ ok: false });
    });

    it('is verified by Go\'s sumdb/note and sumdb/tlog: the checkpoint, an inclusion proof and a consistency proof from the tiles', async function () {
      const dir = mkdtempSync(join(tmpdir(), 'devid-test-go-'));
      try {
        const built = buildGoVerifier(dir);
        if ('reason' in built) {
          console.log(`      skipped: ${built.reason}`);
          return this.skip();
        }
        await log.step(server.env.ctx.store);
        writeFileSync(join(dir, 'old-checkpoint'), firstNote);
        writeFileSync(join(dir, 'root.pem'), server.rootPem);
        const size = Number((await http('/log/checkpoint')).body.toString().split('\n')[1]);
        for (const index of [0, 300, size - 1]) {
          const run = await runGoVerifier(built.binary, [
            `http://127.0.0.1:${server.running.httpPort}`, `https://127.0.0.1:${server.running.httpsPort}`,
            join(dir, 'root.pem'), server.tokens.auditor, join(dir, 'old-checkpoint'), String(index),
          ], 'ca.devid.test');
          expect(run.output, `entry ${index}`).to.match(new RegExp(`^OK size=${size} old=\\d+ entry=\\{.*"seq":${index + 1}\\}\\n$`));
          expect(run.status).to.equal(0);
        }
        // A checkpoint the tiles contradict fails: the same verifier, told of an entry the tree does not hold.
        const bad = await runGoVerifier(built.binary, [`http://127.0.0.1:${server.running.httpPort}`, `https://127.0.0.1:${server.running.httpsPort}`, join(dir, 'root.pem'), server.tokens.auditor, join(dir, 'old-checkpoint'), String(size + 5)], 'ca.devid.test');
        expect(bad.status).to.equal(1);
        // A device's proof, offline: the per-device export, with nothing but the log's verifier key; any changed proof byte fails.
        const exported = (await deviceProofExport(server.env.ctx.store, 'SN-TLOG-1'))!;
        writeFileSync(join(dir, 'device.json'), exported);
        const device = await runGoVerifier(built.binary, ['device-proof', log.logKey.verifierKey, join(dir, 'device.json'), 'SN-TLOG-1'], 'ca.devid.test');
        expect(device.output).to.match(/^OK device=SN-TLOG-1 entries=[1-9]\d* size=\d+\n$/);
        expect(device.status).to.equal(0);
        const doc = JSON.parse(exported);
        const proofHash: string = doc.entries[0].proof[0];
        for (const at of [0, 10, 42]) {
          const changed = `${proofHash.slice(0, at)}${proofHash[at] === 'A' ? 'B' : 'A'}${proofHash.slice(at + 1)}`;
          writeFileSync(join(dir, 'device.json'), exported.replace(proofHash, changed));
          const refused = await runGoVerifier(built.binary, ['device-proof', log.logKey.verifierKey, join(dir, 'device.json'), 'SN-TLOG-1'], 'ca.devid.test');
          expect(refused.status, `proof character ${at} changed: ${refused.output}`).to.equal(1);
        }
        const otherDevice = await runGoVerifier(built.binary, ['device-proof', log.logKey.verifierKey, join(dir, 'device.json'), 'SN-TLOG-9'], 'ca.devid.test');
        expect(otherDevice.status).to.equal(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
