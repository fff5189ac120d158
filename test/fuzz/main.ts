import { adminSocketCases, fuzzCases } from './cases.ts';
import { fuzzAdminSocket, runFuzz, tableCounts } from './harness.ts';
import { startFuzzServer } from './setup.ts';

/**
 * `npm run fuzz [-- --cases=N --seed=S]`: N hostile requests (default
 * 12,000) over every endpoint of a real server on loopback, and 500 lines on
 * its admin socket. Fails on any 5xx, any hang, any refused request that
 * wrote a row, or a server that is not up afterwards. Bounded: a few minutes.
 */
const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const count = arg('cases', 12_000);
const seed = arg('seed', 20261124);
const { server, targets, tokens } = await startFuzzServer();
let failed = false;
try {
  const before = await tableCounts(server);
  const started = performance.now();
  const report = await runFuzz(server, fuzzCases(targets, count, seed), tokens);
  const admin = await fuzzAdminSocket(server.env.dataDir, adminSocketCases(500, seed));
  const after = await tableCounts(server);
  const written = Object.keys(before).filter((table) => before[table] !== after[table]).map((table) => `${table}: ${before[table]} -> ${after[table]}`);
  const health = await server.request('GET', '/healthz');
  process.stdout.write(`fuzz: ${report.cases} requests and 500 admin-socket lines in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${seed})\n`);
  process.stdout.write(`fuzz: answers by status ${JSON.stringify(report.byStatus)}\n`);
  for (const line of [...report.failures, ...admin, ...written.map((w) => `written by refused requests: ${w}`)].slice(0, 50)) process.stdout.write(`FAIL ${line}\n`);
  if (health.status !== 200) process.stdout.write('FAIL the server is not healthy afterwards\n');
  failed = report.failures.length + admin.length + written.length > 0 || health.status !== 200;
  process.stdout.write(failed ? 'fuzz: FAILED\n' : 'fuzz: no 5xx, no hang, nothing written, still up\n');
} finally {
  await server.close();
}
process.exit(failed ? 1 : 0);
