import { loadHierarchy } from '../ca/hierarchy.ts';
import { CrlPublisher } from '../publish/crl-publisher.ts';
import { loadConfig } from '../server/config.ts';
import { openContext } from '../server/context.ts';
import { createLogger } from '../platform/logger.ts';

/**
 * The operational CA's CRL (or, with DEVID_CRL_SHARDS, all its shards), in
 * a process of its own so that its peak memory is measured alone
 * (bench/crl.bench.ts): prints the time and CPU to stream, encode, sign and
 * store them, their sizes, and the resident memory before it started.
 */
const ctx = await openContext(loadConfig(), createLogger(), {});
try {
  const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: true });
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const publisher = new CrlPublisher(ctx.store, ctx.clock, ctx.config.crl, ctx.config.httpBaseUrl);
  // With DEVID_CRL_SHARDS, every shard of the operational CA's CRL and its whole CRL; without, its one whole CRL.
  const published = await publisher.publishAll(hierarchy.operational, { force: true });
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const sizes = published.map((p) => p.record.size);
  process.stdout.write(`${JSON.stringify({
    ms, cpuMs: (used.user + used.system) / 1000, crls: published.length, entries: published.reduce((n, p) => n + p.record.entries, 0),
    bytes: sizes.reduce((a, b) => a + b, 0), largestBytes: Math.max(...sizes), rssBeforeMiB: rssBefore / 2 ** 20,
  })}\n`);
} finally {
  await ctx.close();
}
