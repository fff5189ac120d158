import type { Knex } from 'knex';
import { toBuffer } from './convert.ts';

/** A stored hash tile: `hashes` is 32 bytes per hash, 1 to 256 of them. */
export interface TileRecord {
  level: number;
  index: number;
  hashes: Buffer;
}

export interface TlogCheckpointRecord {
  size: number;
  root: Buffer;
  note: string;
  signedAt: Date;
}

/** A witness's cosignature of the checkpoint of `size`: its note signature line. */
export interface CosignatureRecord {
  size: number;
  witness: string;
  signature: string;
  receivedAt: Date;
}

/** A witness's last answer: `error` null after a cosignature; `cosignedSize` the largest size it cosigned. */
export interface WitnessStatusRecord {
  witness: string;
  attemptedAt: Date;
  error: string | null;
  cosignedSize: number;
}

/** The Merkle log's tiles and checkpoints (registry/tlog/); the tree rules live there. */
export class TlogStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async tile(level: number, index: number): Promise<TileRecord | undefined> {
    const row = await this.db('tlog_tiles').select('level', 'tile_index', 'hashes').where({ level, tile_index: index }).first();
    return row ? tileFromRow(row) : undefined;
  }

  /** The last tile of each level, level 0 first: the right edge the next extension starts from. */
  async lastTiles(): Promise<TileRecord[]> {
    const rows = await this.db('tlog_tiles as t').select('t.level', 't.tile_index', 't.hashes')
      .whereRaw('t.tile_index = (select max(u.tile_index) from tlog_tiles u where u.level = t.level)').orderBy('t.level');
    return rows.map(tileFromRow);
  }

  /** Writes tiles, a grown partial tile replacing its shorter self. */
  async putTiles(tiles: readonly TileRecord[]): Promise<void> {
    if (tiles.length === 0) return;
    await this.db('tlog_tiles').insert(tiles.map((t) => ({ level: t.level, tile_index: t.index, hashes: t.hashes })))
      .onConflict(['level', 'tile_index']).merge(['hashes']);
  }

  async insertCheckpoint(record: TlogCheckpointRecord): Promise<void> {
    await this.db('tlog_checkpoints').insert({ size: record.size, root: record.root, note: record.note, signed_at: record.signedAt });
  }

  async latestCheckpoint(): Promise<TlogCheckpointRecord | undefined> {
    const row = await this.db('tlog_checkpoints').select('size', 'root', 'note', 'signed_at').orderBy('size', 'desc').first();
    return row ? checkpointFromRow(row) : undefined;
  }

  async checkpointAt(size: number): Promise<TlogCheckpointRecord | undefined> {
    const row = await this.db('tlog_checkpoints').select('size', 'root', 'note', 'signed_at').where({ size }).first();
    return row ? checkpointFromRow(row) : undefined;
  }

  /** Keeps a cosignature; a second one of the same size by the same witness is not kept (the first stands). */
  async insertCosignature(record: CosignatureRecord): Promise<void> {
    await this.db('tlog_cosignatures').insert({ size: record.size, witness: record.witness, signature: record.signature, received_at: record.receivedAt })
      .onConflict(['size', 'witness']).ignore();
  }

  /** The cosignatures of the checkpoint of `size`, by witness name. */
  async cosignaturesAt(size: number): Promise<CosignatureRecord[]> {
    const rows = await this.db('tlog_cosignatures').select('size', 'witness', 'signature', 'received_at').where({ size }).orderBy('witness');
    return rows.map((row) => ({ size: Number(row.size), witness: String(row.witness), signature: String(row.signature), receivedAt: new Date(row.received_at as string) }));
  }

  /** The largest size each witness cosigned. */
  async cosignedSizes(): Promise<Map<string, number>> {
    const rows = await this.db('tlog_witness_status').select('witness', 'cosigned_size');
    return new Map(rows.map((row) => [String(row.witness), Number(row.cosigned_size)]));
  }

  /** Records a witness's answer; the cosigned size only ever grows. */
  async setWitnessStatus(record: WitnessStatusRecord): Promise<void> {
    await this.db('tlog_witness_status').insert({ witness: record.witness, attempted_at: record.attemptedAt, error: record.error, cosigned_size: record.cosignedSize })
      .onConflict('witness').merge({
        attempted_at: record.attemptedAt, error: record.error,
        cosigned_size: this.db.raw('greatest(tlog_witness_status.cosigned_size, excluded.cosigned_size)'),
      });
  }

  async witnessStatuses(): Promise<WitnessStatusRecord[]> {
    const rows = await this.db('tlog_witness_status').select('witness', 'attempted_at', 'error', 'cosigned_size').orderBy('witness');
    return rows.map((row) => ({
      witness: String(row.witness), attemptedAt: new Date(row.attempted_at as string), error: row.error === null ? null : String(row.error), cosignedSize: Number(row.cosigned_size),
    }));
  }

  async anyCheckpoint(): Promise<boolean> {
    return (await this.db('tlog_checkpoints').select('size').first()) !== undefined;
  }
}

function tileFromRow(row: Record<string, unknown>): TileRecord {
  return { level: Number(row.level), index: Number(row.tile_index), hashes: toBuffer(row.hashes) };
}

function checkpointFromRow(row: Record<string, unknown>): TlogCheckpointRecord {
  return { size: Number(row.size), root: toBuffer(row.root), note: String(row.note), signedAt: new Date(row.signed_at as string) };
}
