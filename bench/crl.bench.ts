import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import type { BenchResult } from './report.ts';
import { seedCertificates } from './ocsp.bench.ts';
import { startBenchCa } from './server-process.ts';

const ENTRIES = Number(process.env.DEVID_BENCH_CRL_ENTRIES ?? 1_000_000);
const CHILD = fileURLToPath(new URL('./crl-child.ts', import.meta.url));
/** Runs a command and prints, after its own output, its wall time and peak resident memory (getrusage of the child). */
const RUSAGE = 'import resource, subprocess, sys, time\nt = time.time()\nr = subprocess.run(sys.argv[1:], capture_output=True, text=True)\nsys.stdout.write(r.stdout)\nsys.stderr.write(r.stderr)\nprint("RUSAGE %f %d %d" % (time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode))';

function measured(command: string[], env: Record<string, string | undefined>, cwd?: string): { seconds: number; maxRssMiB: number; stdout: string; ok: boolean } {
  const result = spawnSync('python3', ['-c', RUSAGE, ...command], { encoding: 'utf8', env, cwd, maxBuffer: 64 * 2 ** 20 });
  const match = /RUSAGE ([\d.]+) (\d+) (\d+)/.exec(result.stdout);
  if (!match) throw new Error(`${command.join(' ')}: ${result.stderr}`);
  return { seconds: Number(match[1]), maxRssMiB: Number(match[2]) / 1024, stdout: result.stdout, ok: match[3] === '0' };
}

/** `openssl ca -gencrl` over an index of the same size: the peer. */
function peer(): { seconds: number; maxRssMiB: number } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-crl-peer-'));
  try {
    const run = (args: string[]) => spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    run(['req', '-new', '-x509', '-key', 'ca.key', '-subj', '/CN=peer CA', '-days', '30', '-out', 'ca.pem']);
    const lines: string[] = [];
    for (let i = 0; i < ENTRIES; i += 1) {
      const serial = `7${i.toString(16).padStart(31, '0')}`.toUpperCase();
      lines.push(`R\t301231000000Z\t261120000000Z,keyCompromise\t${serial}\tunknown\t/CN=d${i}`);
    }
    writeFileSync(join(dir, 'index.txt'), `${lines.join('\n')}\n`);
    writeFileSync(join(dir, 'crlnumber'), '1000\n');
    writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca = peer\n[peer]\ndatabase = index.txt\ncrlnumber = crlnumber\ncertificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\ndefault_crl_days = 1\n');
    const result = measured(['openssl', 'ca', '-config', 'ca.cnf', '-gencrl', '-out', 'crl.pem'], process.env, dir);
    return result.ok ? result : undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Entries per shard at the fleet size the shards are planned for: ten million revoked over 64 shards. */
const ENTRIES_PER_SHARD = 10_000_000 / 64;

/**
 * The same revoked entries spread over shards (each certificate's shard as
 * issuance would fix it), every shard's CRL made at once in a process of its
 * own: the CPU for all of them, extrapolated to ten million entries, and the
 * largest shard against the 10 MB that root programs accept.
 */
async function shardedCrls(db: knexFactory.Knex, issuerId: number, env: NodeJS.ProcessEnv, benchEnv: Record<string, string>): Promise<BenchResult[]> {
  const shards = Math.max(2, Math.round(ENTRIES / ENTRIES_PER_SHARD));
  await db.raw(`update certificates set crl_shard = (('x' || right(serial, 8))::bit(32)::int & 2147483647) % ? where issuer_id = ?`, [shards, issuerId]);
  await db.raw('vacuum analyze certificates');
  const run = measured([process.execPath, '--import', 'tsx', '--import', 'reflect-metadata', CHILD], { ...env, ...benchEnv, DEVID_LOG_LEVEL: 'warn', DEVID_CRL_SHARDS: `operational=${shards}` });
  if (!run.ok) throw new Error(`sharded crl child failed: ${run.stdout}`);
  const report = JSON.parse(run.stdout.split('\n')[0]!) as { ms: number; cpuMs: number; crls: number; entries: number; bytes: number; largestBytes: number };
  const perTenMillion = (report.cpuMs / 1000) * (10_000_000 / Math.max(1, report.entries));
  return [
    { name: 'crl.sharded.cpu-seconds', value: report.cpuMs / 1000, unit: 's', note: `${report.crls - 1} shards and the whole CRL, ${report.entries} entries, ${(report.ms / 1000).toFixed(1)} s wall; at 10 million entries ${perTenMillion.toFixed(0)} s of CPU, target 60 s` },
    { name: 'crl.sharded.largest', value: report.largestBytes / 2 ** 20, unit: 'MiB', note: `the largest shard (${Math.round(report.entries / Math.max(1, report.crls - 1))} entries each, as 10 million over 64 shards); target 10 MB` },
  ];
}

/**
 * The time and peak memory to produce a signed CRL of a million revoked
 * entries (streamed from PostgreSQL, written as DER, signed in SoftHSM,
 * stored), beside `openssl ca -gencrl` on an index of the same size.
 */
export async function benchCrl(): Promise<BenchResult[]> {
  const bench = await startBenchCa('postgres', 1);
  if (!bench) return [{ name: 'crl.1m.seconds', value: 0, unit: 's', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const db = knexFactory({ client: 'pg', connection: bench.env.DEVID_DATABASE_URL });
  try {
    const issuer = await db('ca_certificates').select('id').where({ role: 'operational', active: true }).first();
    await seedCertificates(db, issuer.id, ENTRIES, true);
    // As autovacuum leaves a table in service: statistics and the visibility map (index-only scans) current.
    await db.raw('vacuum analyze certificates');
    const { SOFTHSM2_CONF: _ignored, ...env } = process.env;
    const profile = process.env.DEVID_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DEVID_BENCH_PROFILE}`] : [];
    const ours = measured([process.execPath, ...profile, '--import', 'tsx', '--import', 'reflect-metadata', CHILD], { ...env, ...bench.env, DEVID_LOG_LEVEL: 'warn' });
    if (!ours.ok) throw new Error(`crl child failed: ${ours.stdout}`);
    const report = JSON.parse(ours.stdout.split('\n')[0]!) as { ms: number; entries: number; bytes: number; rssBeforeMiB: number };
    const other = peer();
    const peerSeconds = other ? { peer: 'openssl ca -gencrl', peerValue: Math.round(other.seconds * 100) / 100 } : {};
    const peerMemory = other ? { peer: 'openssl ca -gencrl', peerValue: Math.round(other.maxRssMiB) } : {};
    const note = `${report.entries} entries, ${(report.bytes / 2 ** 20).toFixed(1)} MiB DER`;
    const sharded = shardedCrls(db, issuer.id, env, bench.env);
    return [
      { name: 'crl.1m.seconds', value: report.ms / 1000, unit: 's', ...peerSeconds, note: `${note}; target 2 s` },
      { name: 'crl.1m.peak-rss', value: ours.maxRssMiB, unit: 'MiB', ...peerMemory, note: `whole process, ${report.rssBeforeMiB.toFixed(0)} MiB before the CRL; target 256 MiB` },
      ...(await sharded),
    ];
  } finally {
    await db.destroy();
    await bench.close();
  }
}
