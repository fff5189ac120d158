import { readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { benchDevices, enrollFor } from './enroll.bench.ts';
import type { BenchResult } from './report.ts';
import { startBenchCa } from './server-process.ts';

const PROCESSES = [1, 2, 4];

/** The whole machine's busy and total CPU time so far (/proc/stat), to show how much of it a run used. */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}
const DEVICES = 64;

/**
 * Full ACME enrollments per second from 64 devices against 1, 2 and 4
 * server processes (`serve --workers N`) on one PostgreSQL, each against one
 * process measured in the same run. The clients, PostgreSQL and the servers
 * share this machine's cores: the note says what the load generator (this
 * process) spent per enrollment, and each server process's memory.
 */
export async function benchScale(ms: number): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  let single: number | undefined;
  for (const processes of PROCESSES) {
    const bench = await startBenchCa('postgres', 256, processes > 1 ? ['--workers', String(processes)] : []);
    if (!bench) return [{ name: 'scale.enroll', value: 0, unit: 'ops/s', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
    try {
      const devices = await benchDevices(bench, DEVICES);
      await enrollFor(bench, devices, DEVICES, Math.min(ms, 1000)); // warm-up: every worker's JIT and pools
      const cpuBefore = bench.server.cpuMs();
      const clientBefore = process.cpuUsage();
      const machineBefore = machineCpu();
      const { done, errors, seconds } = await enrollFor(bench, devices, DEVICES, ms);
      const machineAfter = machineCpu();
      const busy = (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total);
      const rate = done / seconds;
      single ??= rate;
      const cpu = (bench.server.cpuMs() - cpuBefore) / Math.max(1, done);
      const client = process.cpuUsage(clientBefore);
      const clientCpu = (client.user + client.system) / 1000 / Math.max(1, done);
      const rss = bench.server.rssMiB().filter((m) => m > 0).map((m) => m.toFixed(0)).join('+');
      results.push({
        name: `scale.enroll.${processes}p.c${DEVICES}`, value: rate, unit: 'ops/s', floor: single,
        note: `server CPU ${cpu.toFixed(1)} ms/op, load generator ${clientCpu.toFixed(1)} ms/op, server RSS ${rss} MiB, machine ${Math.round(busy * 100)}% busy on ${cpus().length} cores${errors > 0 ? `, ${errors} failed` : ''}; floor: 1 process`,
      });
      for (const device of devices) rmSync(device.dir, { recursive: true, force: true });
    } finally {
      await bench.close();
    }
  }
  return results;
}
