import { benchAudit } from './audit.bench.ts';
import { benchBatch } from './batch.bench.ts';
import { benchCrl } from './crl.bench.ts';
import { benchEnroll } from './enroll.bench.ts';
import { benchExport } from './export.bench.ts';
import { benchFactory } from './factory.bench.ts';
import { benchHsm } from './hsm.bench.ts';
import { benchOcsp } from './ocsp.bench.ts';
import { benchOutsideBirth } from './outside-birth.bench.ts';
import { benchReports } from './reports.bench.ts';
import { benchScale } from './scale.bench.ts';
import { benchStartup } from './startup.bench.ts';
import { benchTlog } from './tlog.bench.ts';
import { print, type BenchResult } from './report.ts';

/**
 * `npm run bench [-- --json]`: every benchmark, each bounded in time and
 * load, loopback only (docs/developers/benchmarks.md). DEVID_BENCH_MS sets the time per figure.
 */
const json = process.argv.includes('--json');
const ms = Number(process.env.DEVID_BENCH_MS ?? 1500);
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const benches: Array<[string, (ms: number) => Promise<BenchResult[]>]> = [
  ['hsm', benchHsm],
  ['factory', benchFactory],
  ['enroll', benchEnroll],
  ['outside', benchOutsideBirth],
  ['ocsp', benchOcsp],
  ['crl', benchCrl],
  ['batch', benchBatch],
  ['export', benchExport],
  ['audit', benchAudit],
  ['reports', () => benchReports()],
  ['scale', benchScale],
  ['startup', () => benchStartup()],
  ['tlog', () => benchTlog()],
];

for (const [name, bench] of benches.filter(([name]) => !only || only.split(',').includes(name))) {
  if (!json) process.stderr.write(`bench: ${name}…\n`);
  print(await bench(ms), json);
}
