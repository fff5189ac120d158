import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cosign, openCosignature } from '../registry/tlog/cosignature.ts';
import { WitnessSubmitter } from '../registry/tlog/witnesses.ts';
import { verifyConsistency } from '../registry/tlog/verify-proofs.ts';
import { leafHash, referenceRoot } from '../registry/tlog/merkle.ts';
import { checkpointText, COSIGNATURE_TYPE, openCheckpoint, parseVerifierKey, signedNote, splitNote, verifierKey } from '../registry/tlog/signed-note.ts';
import type { TransparencyLog } from '../registry/tlog/transparency-log.ts';
import { addCheckpointBody, parseAddCheckpoint, type AddCheckpoint } from '../registry/tlog/witness-request.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { DATABASE_KINDS } from './support/databases.ts';
import { BIN, freePort } from './support/cli.ts';
import { buildGoVerifier, runGoVerifier } from './support/go-verifier.ts';
import { httpRequest } from './support/publication.ts';
import { makeDeviceKey } from './support/device.ts';

const WITNESS = 'witness.devid.test/w1';
const ENV = { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp' };

async function until<T>(what: string, read: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() - started > ms) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `devid-ca witness serve` as a second organisation runs it, until it says it listens. */
async function startWitnessProcess(args: string[]): Promise<{ child: ChildProcess; output: () => string; stop: () => Promise<void> }> {
  const child = spawn(BIN, ['witness', 'serve', ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await until('the witness to listen', async () => (/listening on/.test(output) ? true : child.exitCode !== null ? Promise.reject(new Error(output)) : undefined), 30_000);
  return { child, output: () => output, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

for (const kind of DATABASE_KINDS) {
  describe(`tlog witnesses: devid-ca witness serve cosigns the log, refuses a fork, and a stopped one shows in /readyz (${kind})`, function () {
    this.timeout(240_000);
    let dir: string;
    let server: TestServer;
    let log: TransparencyLog;
    let witnessKey: string;
    let witnessUrl: string;
    let witness: Awaited<ReturnType<typeof startWitnessProcess>> | undefined;
    let serveArgs: string[];
    const http = (path: string) => httpRequest(server.running.httpPort, 'GET', path);
    const submit = (body: string) => fetch(`${witnessUrl}/add-checkpoint`, { method: 'POST', body }).then(async (res) => ({ status: res.status, type: res.headers.get('content-type'), body: await res.text() }));
    const state = () => JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { logs: Record<string, { size: number; root: string }> };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'devid-test-witness-'));
      const init = spawnSync(BIN, ['witness', 'init', '--name', WITNESS, '--key', join(dir, 'witness.key')], { env: ENV, encoding: 'utf8' });
      expect(init.status, init.stderr).to.equal(0);
      witnessKey = init.stdout.trim();
      expect(parseVerifierKey(witnessKey, [COSIGNATURE_TYPE])?.name).to.equal(WITNESS);
      expect(spawnSync(BIN, ['witness', 'init', '--name', WITNESS, '--key', join(dir, 'witness.key')], { env: ENV, encoding: 'utf8' }).status, 'never overwrites a key').to.equal(1);
      witnessUrl = `http://127.0.0.1:${await freePort()}`;
      server = await startTestServer(kind, { DEVID_WITNESSES: `${witnessUrl} ${witnessKey}` });
      if (!('log' in server.running.tlog)) throw new Error(`the log is disabled: ${server.running.tlog.disabled}`);
      log = server.running.tlog.log;
      serveArgs = ['--name', WITNESS, '--key', join(dir, 'witness.key'), '--state', join(dir, 'state.json'), '--log', log.logKey.verifierKey, '--listen', witnessUrl.slice('http://'.length)];
      witness = await startWitnessProcess(serveArgs);
      // One process per state file: a second one on the same state refuses to start.
      const second = spawnSync(BIN, ['witness', 'serve', ...serveArgs.slice(0, -1), '127.0.0.1:0'], { env: ENV, encoding: 'utf8', timeout: 30_000 });
      expect(second.status).to.equal(1);
      expect(second.stderr).to.match(/is in use by process \d+/);
    });
    after(async () => {
      await witness?.stop();
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('cosigns each new checkpoint: /log/checkpoint carries its cosignature/v1, and the witness keeps the size and root', async () => {
      const born = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-WIT-1', model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem } });
      expect(born.status).to.equal(201);
      const size = (await server.env.ctx.store.audit.head())!.seq;
      const note = await until('a cosigned checkpoint of the new events', async () => {
        const text = (await http('/log/checkpoint')).body.toString();
        return Number(text.split('\n')[1]) >= size && text.includes(`\u2014 ${WITNESS} `) ? text : undefined;
      });
      const key = log.logKey.key;
      const body = openCheckpoint(note, log.logKey.name, key.publicKey, key.rawPublicKey)!;
      expect(body, 'the log\'s own signature still verifies').to.not.equal(undefined);
      const { text, signatures } = splitNote(note)!;
      expect(signatures).to.have.length(2);
      const cosignature = openCosignature(signatures[1]!, text, parseVerifierKey(witnessKey, [COSIGNATURE_TYPE])!);
      expect(cosignature?.timestamp).to.be.within(Math.floor(Date.now() / 1000) - 60, Math.floor(Date.now() / 1000) + 1);
      expect(openCosignature(signatures[1]!, text.replace(/\n\d+\n/, '\n1\n'), parseVerifierKey(witnessKey, [COSIGNATURE_TYPE])!), 'over another text').to.equal(undefined);
      expect(state().logs[log.logKey.name]).to.deep.equal({ size: body.size, root: body.root.toString('base64') });
      const ready = await http('/readyz');
      expect(ready.status).to.equal(200);
      expect(JSON.parse(ready.body.toString()).witnesses).to.deep.equal({ [WITNESS]: 'ok' });
    });

    it('is checked by Go\'s sumdb/note with a cosignature/v1 verifier (note.Open takes any note.Verifier)', async function () {
      const built = buildGoVerifier(join(dir, 'go'));
      if ('reason' in built) {
        console.log(`      skipped: ${built.reason}`);
        return this.skip();
      }
      const note = (await http('/log/checkpoint')).body.toString();
      writeFileSync(join(dir, 'old-checkpoint'), note);
      writeFileSync(join(dir, 'root.pem'), server.rootPem);
      const args = [`http://127.0.0.1:${server.running.httpPort}`, `https://127.0.0.1:${server.running.httpsPort}`, join(dir, 'root.pem'), server.tokens.auditor, join(dir, 'old-checkpoint'), '0'];
      const run = await runGoVerifier(built.binary, args, 'ca.devid.test', { WITNESS_KEYS: witnessKey });
      expect(run.output).to.match(/^OK cosigned by 1 witnesses\nOK size=\d+ /);
      expect(run.status).to.equal(0);
      // A key the checkpoint has no cosignature of fails: the Go check can fail.
      const stranger = spawnSync(BIN, ['witness', 'init', '--name', 'other.devid.test/w9', '--key', join(dir, 'other.key')], { env: ENV, encoding: 'utf8' }).stdout.trim();
      const refused = await runGoVerifier(built.binary, args, 'ca.devid.test', { WITNESS_KEYS: `${witnessKey} ${stranger}` });
      expect(refused.output).to.match(/no valid cosignature by the witness other\.devid\.test\/w9/);
      expect(refused.status).to.equal(1);
    });

    it('refuses a log that forks: another root at the size it cosigned (409), a bad consistency proof (422), a stale old size (409 with its size)', async () => {
      const seen = state().logs[log.logKey.name]!;
      const sign = async (size: number, root: Buffer) => {
        const text = checkpointText({ origin: log.logKey.name, size, root });
        return signedNote(text, log.logKey.name, log.logKey.key.rawPublicKey, await server.env.ctx.provider.signEd25519(log.logKey.key, Buffer.from(text, 'utf8')));
      };
      // The same key signs another root at the size the witness saw: a split view.
      const forked = await submit(addCheckpointBody({ oldSize: seen.size, proof: [], checkpoint: await sign(seen.size, randomBytes(32)) }));
      expect(forked.status).to.equal(409);
      expect(forked.body).to.match(/forked/);
      // A larger tree whose proof does not lead from the witnessed root.
      const bad = await submit(addCheckpointBody({ oldSize: seen.size, proof: [randomBytes(32), randomBytes(32)], checkpoint: await sign(seen.size + 5, randomBytes(32)) }));
      expect(bad.status).to.equal(422);
      const stale = await submit(addCheckpointBody({ oldSize: 0, proof: [], checkpoint: await sign(seen.size + 5, randomBytes(32)) }));
      expect(stale).to.deep.include({ status: 409, type: 'text/x.tlog.size', body: `${seen.size}\n` });
      const backwards = await submit(addCheckpointBody({ oldSize: seen.size, proof: [], checkpoint: await sign(seen.size - 1, randomBytes(32)) }));
      expect(backwards.status).to.equal(400);
      // Another log key, an unknown origin.
      const note = (await http('/log/checkpoint')).body.toString();
      const otherKey = await startOtherSignature(note);
      expect((await submit(addCheckpointBody({ oldSize: seen.size, proof: [], checkpoint: otherKey }))).status).to.equal(403);
      expect((await submit(addCheckpointBody({ oldSize: 0, proof: [], checkpoint: note.replace(log.logKey.name, 'elsewhere.test/log') }))).status).to.equal(404);
      expect(state().logs[log.logKey.name], 'nothing refused changed the witness\'s state').to.deep.equal(seen);
      expect(witness!.output()).to.match(/refused \(409\): a different root/);
    });

    it('answers hostile requests without a 5xx and without changing its state', async () => {
      const seen = state().logs[log.logKey.name];
      const note = (await http('/log/checkpoint')).body.toString();
      const bodies = [
        '', 'old', 'old 01\n\n', 'old -1\n\n', `old ${'9'.repeat(30)}\n\n${note}`, randomBytes(300).toString('latin1'), `old 0\nnot base64!\n\n${note}`,
        `old 0\n${`${randomBytes(32).toString('base64')}\n`.repeat(64)}\n${note}`, `old 0\n\n${note.slice(0, -1)}`, `old 0\n${note}`, 'x'.repeat(70_000),
      ];
      for (const body of bodies) {
        const answer = await submit(body).catch(() => ({ status: 413, type: '', body: '' }));
        expect(answer.status, JSON.stringify(body.slice(0, 40))).to.be.within(400, 499);
      }
      expect((await fetch(`${witnessUrl}/add-checkpoint`)).status).to.equal(405);
      expect((await fetch(`${witnessUrl}/other`, { method: 'POST', body: 'x' })).status).to.equal(404);
      expect(state().logs[log.logKey.name]).to.deep.equal(seen);
    });

    it('the log follows a witness\'s 409 to the size it names, and names a witness that saw more of the log than it holds', async () => {
      const { ctx } = server.env;
      await log.step(ctx.store);
      const latest = (await ctx.store.tlog.latestCheckpoint())!;
      const { generateKeyPairSync } = await import('node:crypto');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
      const key = parseVerifierKey(verifierKey('fake.devid.test/w', raw, COSIGNATURE_TYPE), [COSIGNATURE_TYPE])!;
      const bodies: string[] = [];
      const witnessSize = 3;
      const answering = new WitnessSubmitter([{ url: 'http://fake.invalid', key }], ctx.clock, async (_url, body) => {
        bodies.push(body);
        if (!body.startsWith(`old ${witnessSize}\n`)) return { status: 409, type: 'text/x.tlog.size', body: `${witnessSize}\n` };
        return { status: 200, type: 'text/plain', body: `${cosign(splitNote(latest.note)!.text, key.name, privateKey, raw, 1_700_000_000)}\n` };
      });
      await answering.submitAll(ctx.store);
      expect(bodies.map((b) => b.split('\n')[0])).to.deep.equal(['old 0', `old ${witnessSize}`]);
      const request = parseAddCheckpoint(bodies[1]!) as AddCheckpoint;
      const rootAt3 = referenceRoot((await ctx.store.audit.page(0, 3)).map((e) => leafHash(Buffer.from(e.canonical, 'utf8'))));
      expect(verifyConsistency(witnessSize, latest.size, request.proof, rootAt3, latest.root), 'the proof sent is from the witness\'s size').to.equal(true);
      expect((await ctx.store.tlog.cosignaturesAt(latest.size)).map((c) => c.witness)).to.include('fake.devid.test/w');
      const ahead = new WitnessSubmitter([{ url: 'http://fake.invalid', key: { ...key, name: 'ahead.devid.test/w' } }], ctx.clock,
        async () => ({ status: 409, type: 'text/x.tlog.size', body: `${latest.size + 100}\n` }));
      await ahead.submitAll(ctx.store);
      const status = (await ctx.store.tlog.witnessStatuses()).find((w) => w.witness === 'ahead.devid.test/w');
      expect(status?.error).to.match(/beyond this log's \d+: the log was rolled back or forked/);
    });

    it('a stopped witness shows in /readyz\'s body and the metrics, never as a 503; restarted, it cosigns again', async () => {
      await witness!.stop();
      witness = undefined;
      await server.env.ctx.audit.recordAlone(server.env.ctx.store, { action: 'test.witnessed', actor: 'system', data: {} });
      const body = await until('readyz to name the stopped witness', async () => {
        const ready = await http('/readyz');
        expect(ready.status).to.equal(200);
        const parsed = JSON.parse(ready.body.toString());
        return /^failing: /.test(parsed.witnesses?.[WITNESS] ?? '') ? parsed : undefined;
      });
      expect(body.status).to.equal('ready');
      const metrics = (await http('/metrics')).body.toString();
      expect(metrics).to.include(`devid_tlog_witness_up{witness="${WITNESS}"} 0`);
      expect(metrics).to.match(new RegExp(`devid_tlog_witness_cosigned_size\\{witness="${WITNESS.replace(/[./]/g, '\\$&')}"\\} [1-9]\\d*`));
      // Enrollment goes on while the witness is away.
      const born = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'SN-WIT-2', model: 'thermo-2', batch: 'b1', csr: (await makeDeviceKey()).csrPem } });
      expect(born.status).to.equal(201);
      witness = await startWitnessProcess(serveArgs);
      await until('the restarted witness to cosign the newer checkpoint', async () => {
        const parsed = JSON.parse((await http('/readyz')).body.toString());
        return parsed.witnesses?.[WITNESS] === 'ok' ? true : undefined;
      });
      expect((await http('/metrics')).body.toString()).to.include(`devid_tlog_witness_up{witness="${WITNESS}"} 1`);
    });
  });
}

/** The checkpoint re-signed by a key the witness does not trust, under the log's name. */
async function startOtherSignature(note: string): Promise<string> {
  const { generateKeyPairSync, sign } = await import('node:crypto');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const { text } = splitNote(note)!;
  const name = text.split('\n')[0]!;
  return signedNote(text, name, raw, sign(null, Buffer.from(text, 'utf8'), privateKey));
}
