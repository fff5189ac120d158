import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import acme from 'acme-client';
import { freePort } from '../test/support/cli.ts';
import { processCpuMs } from './server-process.ts';

/** Debian's Let's Encrypt test CA (`apt-get install pebble`). */
const PEBBLE = '/usr/bin/pebble';

/**
 * Pebble as the peer the enrollment bench is measured against: a reference
 * ACME server doing the same protocol work (JWS, nonces, orders, a
 * certificate) with every validation accepted at once, so its CPU per
 * issuance is the cost of ACME itself.
 */
export interface PebblePeer {
  directoryUrl: string;
  agent: Agent;
  cpuMs(): number;
  stop(): Promise<void>;
}

/** Pebble in its own process with a throwaway localhost certificate; undefined when Pebble is not installed. */
export async function startPebble(): Promise<PebblePeer | undefined> {
  if (!existsSync(PEBBLE)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-pebble-'));
  const openssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' });
  if (openssl.status !== 0) throw new Error(`openssl: ${openssl.stderr}`);
  const port = await freePort();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`, managementListenAddress: `127.0.0.1:${await freePort()}`,
      certificate: join(dir, 'cert.pem'), privateKey: join(dir, 'key.pem'), httpPort: 5002, tlsPort: 5001, ocspResponderURL: '', externalAccountBindingRequired: false,
    },
  }));
  const env = { ...process.env, PEBBLE_VA_ALWAYS_VALID: '1', PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' };
  const child = spawn(PEBBLE, ['-config', join(dir, 'config.json')], { env, stdio: 'ignore' });
  const agent = new Agent({ keepAlive: true, ca: readFileSync(join(dir, 'cert.pem'), 'utf8') });
  const directoryUrl = `https://localhost:${port}/dir`;
  for (let i = 0; ; i += 1) {
    const up = await fetchDirectory(directoryUrl, agent);
    if (up) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
      throw new Error('pebble did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    directoryUrl, agent,
    cpuMs: () => processCpuMs(child.pid!),
    stop: async () => {
      agent.destroy();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function fetchDirectory(url: string, agent: Agent): Promise<boolean> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    request(url, { agent }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false)).end();
  });
}

function client(peer: PebblePeer, accountKey: Buffer): acme.Client {
  acme.axios.defaults.httpsAgent = peer.agent;
  // Pebble validates at once (PEBBLE_VA_NOSLEEP): poll quickly instead of acme-client's 5 s back-off.
  return new acme.Client({ directoryUrl: peer.directoryUrl, accountKey, backoffMin: 5, backoffMax: 50, backoffAttempts: 40 });
}

/** Server CPU per ACME account created (directory, nonce, newAccount), from `concurrency` callers for about `ms`. */
export async function pebbleAccounts(peer: PebblePeer, concurrency: number, ms: number): Promise<{ done: number; cpuMs: number }> {
  let done = 0;
  const before = peer.cpuMs();
  const deadline = performance.now() + ms;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      await client(peer, await acme.crypto.createPrivateEcdsaKey()).createAccount({ termsOfServiceAgreed: true });
      done += 1;
    }
  }));
  return { done, cpuMs: (peer.cpuMs() - before) / Math.max(1, done) };
}

/**
 * Server CPU per issuance, one account per worker as an ACME client keeps
 * it: newOrder, authorization, challenge, finalize, poll, download.
 */
export async function pebbleIssuances(peer: PebblePeer, concurrency: number, ms: number): Promise<{ done: number; errors: number; seconds: number; cpuMs: number }> {
  const workers = await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    const acmeClient = client(peer, await acme.crypto.createPrivateEcdsaKey());
    await acmeClient.createAccount({ termsOfServiceAgreed: true });
    const [, csr] = await acme.crypto.createCsr({ commonName: `d${i}.bench.test` }, await acme.crypto.createPrivateEcdsaKey());
    return { acmeClient, name: `d${i}.bench.test`, csr };
  }));
  let done = 0;
  let errors = 0;
  const before = peer.cpuMs();
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(workers.map(async ({ acmeClient, name, csr }) => {
    while (performance.now() < deadline) {
      try {
        const order = await acmeClient.createOrder({ identifiers: [{ type: 'dns', value: name }] });
        const [authz] = await acmeClient.getAuthorizations(order);
        const challenge = authz!.challenges.find((c) => c.type === 'http-01')!;
        await acmeClient.completeChallenge(challenge);
        await acmeClient.waitForValidStatus(authz!);
        await acmeClient.getCertificate(await acmeClient.finalizeOrder(order, csr));
        done += 1;
      } catch {
        errors += 1;
      }
    }
  }));
  return { done, errors, seconds: (performance.now() - started) / 1000, cpuMs: (peer.cpuMs() - before) / Math.max(1, done) };
}
