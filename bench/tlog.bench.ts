import { createHash } from 'node:crypto';
import { TileBuilder, type Tile } from '../registry/tlog/tile-builder.ts';
import { edgeFromStored, tileRecord } from '../registry/tlog/transparency-log.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { createTestDatabase } from '../test/support/databases.ts';
import type { BenchResult } from './report.ts';

/** Entries of the measured log: 2^18, so whole level-0 and level-1 tiles and a level-2 tile of 4 hashes. */
const ENTRIES = Number(process.env.DEVID_BENCH_TLOG_ENTRIES ?? 262_144);
/** As registry/tlog/transparency-log.ts extends: batches of events, the partial tiles rewritten each time. */
const BATCH = 4096;

const leaf = (i: number) => createHash('sha256').update(Buffer.of(0)).update(`entry ${i}`).digest();

/**
 * The Merkle log's storage: its hash tiles in PostgreSQL for ENTRIES leaves,
 * written as the log writes them (a batch at a time, the right edge
 * rewritten in place), measured with pg_total_relation_size (table, TOAST,
 * index) as written and after VACUUM FULL, and per million entries; against the formula
 * 32 bytes x (1 + 1/256 + 1/256^2 + ...) per entry.
 */
export async function benchTlog(): Promise<BenchResult[]> {
  const database = await createTestDatabase('postgres');
  const db = openDatabase(database.location);
  try {
    await migrate(db, database.location);
    const store = new Store(db);
    const started = process.hrtime.bigint();
    for (let size = 0; size < ENTRIES;) {
      const touched = new Map<string, Tile>();
      const keep = (tile: Tile) => touched.set(`${tile.level}/${tile.index}`, tile);
      const builder = new TileBuilder(edgeFromStored(await store.tlog.lastTiles()), keep);
      const end = Math.min(ENTRIES, size + BATCH);
      for (; size < end; size += 1) builder.appendLeaf(leaf(size));
      builder.partialTiles().forEach(keep);
      await store.tlog.putTiles([...touched.values()].map(tileRecord));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const size = async () => Number((await db.raw("select pg_total_relation_size('tlog_tiles') as bytes")).rows[0].bytes);
    const written = await size();
    await db.raw('vacuum full tlog_tiles');
    const compact = await size();
    const rows = Number((await db('tlog_tiles').count({ n: '*' }))[0]!.n);
    let formula = 0;
    for (let level = 0, width = ENTRIES; width >= 1; level += 1, width = Math.floor(width / 256)) formula += width * 32;
    const perMillion = (bytes: number) => (bytes / ENTRIES) * 1e6 / (1 << 20);
    return [
      { name: 'tlog.tiles.per-million', value: perMillion(compact), unit: 'MiB', note: `${ENTRIES} entries in ${rows} tile rows, table, TOAST and index: ${compact} bytes after VACUUM FULL, ${written} as written; the hashes alone ${formula} bytes, ${perMillion(formula).toFixed(2)} MiB per million` },
      { name: 'tlog.tiles.append', value: ENTRIES / seconds, unit: 'entries/s', note: `leaves hashed and tiles written in batches of ${BATCH}, one process` },
    ];
  } finally {
    await db.destroy();
    await database.drop();
  }
}
