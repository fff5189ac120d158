import type { DeviceProofStore } from '../../store/subsets.ts';
import { StoredTree } from './proofs.ts';

/** One entry of a device, as GET /audit/v1/devices/<serial>/proof answers it. */
export interface ProvedEntry {
  index: number;
  /** The event's canonical JSON: its UTF-8 bytes are the entry. */
  entry: string;
  /** RFC 9162 inclusion proof (base64 hashes, leaf side first) in the tree of the checkpoint. */
  proof: string[];
}

export interface DeviceProof {
  size: number;
  /** The signed note of that size. */
  checkpoint: string;
  entries: ProvedEntry[];
}

/**
 * Every entry whose event names the device, each with its inclusion proof in
 * the tree of the checkpoint of `size` (the latest when absent): a device's
 * history is provable against a signed checkpoint without the rest of the
 * log. Undefined when there is no checkpoint of that size.
 */
export async function deviceProof(store: DeviceProofStore, serial: string, size?: number): Promise<DeviceProof | undefined> {
  const checkpoint = size === undefined ? await store.tlog.latestCheckpoint() : await store.tlog.checkpointAt(size);
  if (!checkpoint) return undefined;
  const tree = new StoredTree(store);
  const entries: ProvedEntry[] = [];
  for (const event of await store.audit.byDevice(serial)) {
    if (event.seq > checkpoint.size) break;
    const proof = await tree.inclusionProof(event.seq - 1, checkpoint.size);
    entries.push({ index: event.seq - 1, entry: event.canonical, proof: proof.map((hash) => hash.toString('base64')) });
  }
  return { size: checkpoint.size, checkpoint: checkpoint.note, entries };
}
