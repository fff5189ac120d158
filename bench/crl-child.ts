import { loadHierarchy } from '../ca/hierarchy.ts';
import { CrlPublisher } from '../publish/crl-publisher.ts';
import { loadConfig } from '../server/config.ts';
import { openContext } from '../server/context.ts';
import { createLogger } from '../platform/logger.ts';

/**
 * One CRL of the operational CA, in a process of its own so that its peak
 * memory is measured alone (bench/crl.bench.ts): prints the time to stream,
 * encode, sign and store it, and the resident memory before it started.
 */
const ctx = await openContext(loadConfig(), createLogger(), {});
try {
  const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: true });
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const published = (await new CrlPublisher(ctx.store, ctx.clock, ctx.config.crl).publish(hierarchy.operational, { force: true }))!;
  const ms = performance.now() - started;
  process.stdout.write(`${JSON.stringify({ ms, entries: published.record.entries, bytes: published.record.size, rssBeforeMiB: rssBefore / 2 ** 20 })}\n`);
} finally {
  await ctx.close();
}
