/** One benchmark figure in the shape of docs/developers/benchmarks.md. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  floor?: number;
  peer?: string;
  peerValue?: number;
  ratio?: number;
  /** value / peerValue, when a figure has both a floor and a peer. */
  peerRatio?: number;
  note?: string;
}

const round = (n: number) => Math.round(n * 10) / 10;

const ratioOf = (value: number, base: number) => Math.round((value / base) * 1000) / 1000;

export function withRatio(result: BenchResult): BenchResult {
  const base = result.floor ?? result.peerValue;
  const rounded = { ...result, value: round(result.value), ...(result.floor ? { floor: round(result.floor) } : {}), ...(result.peerValue ? { peerValue: round(result.peerValue) } : {}) };
  if (!base) return rounded;
  return { ...rounded, ratio: ratioOf(result.value, base), ...(result.floor && result.peerValue ? { peerRatio: ratioOf(result.value, result.peerValue) } : {}) };
}

export function print(results: BenchResult[], json: boolean): void {
  for (const r of results.map(withRatio)) {
    if (json) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      continue;
    }
    const floor = r.floor !== undefined ? `  floor ${r.floor} ${r.unit}  ratio ${r.ratio}` : '';
    const peer = r.peerValue !== undefined ? `  ${r.peer} ${r.peerValue}  ratio ${r.peerRatio ?? r.ratio}` : '';
    const against = floor + peer;
    process.stdout.write(`${r.name.padEnd(36)} ${String(r.value).padStart(10)} ${r.unit}${against}${r.note ? `  (${r.note})` : ''}\n`);
  }
}

/** Runs `operation` from `concurrency` callers for about `ms`; returns operations per second. */
export async function throughput(operation: () => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      await operation();
      done += 1;
    }
  }));
  return done / ((performance.now() - started) / 1000);
}

/** The same, for a synchronous operation on one caller. */
export function throughputSync(operation: () => void, ms: number): number {
  let done = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  while (performance.now() < deadline) {
    operation();
    done += 1;
  }
  return done / ((performance.now() - started) / 1000);
}
