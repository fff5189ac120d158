import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { WitnessKey, WitnessedHead } from '../../registry/tlog/witness.ts';
import { COSIGNATURE_TYPE, isValidKeyName, verifierKey } from '../../registry/tlog/signed-note.ts';

/** Makes a witness key: an Ed25519 private key, PKCS#8 PEM, in a new file of mode 0600 (never overwritten). */
export function createWitnessKeyFile(path: string): void {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(path, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
}

/** The witness key of a PEM file, under the witness's name. */
export function loadWitnessKey(path: string, name: string): WitnessKey {
  if (!isValidKeyName(name)) throw new Error(`"${name}" is not a valid note key name (no spaces, no "+")`);
  const privateKey = createPrivateKey(readFileSync(path, 'utf8'));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path} does not hold an Ed25519 private key`);
  const rawPublicKey = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  return { name, privateKey, rawPublicKey };
}

/** The witness's verifier key (type 0x04), what a log's operator configures. */
export function witnessVerifierKey(key: WitnessKey): string {
  return verifierKey(key.name, key.rawPublicKey, COSIGNATURE_TYPE);
}

interface StateFile {
  version: 1;
  logs: Record<string, { size: number; root: string }>;
}

/** The witness's memory of each log: the latest cosigned size and root by origin; an absent file is an empty state. */
export function readWitnessState(path: string): Map<string, WitnessedHead> {
  if (!existsSync(path)) return new Map();
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as StateFile;
  if (parsed.version !== 1 || typeof parsed.logs !== 'object' || parsed.logs === null) throw new Error(`${path} is not a witness state file`);
  return new Map(Object.entries(parsed.logs).map(([origin, head]) => {
    const root = Buffer.from(head.root, 'base64');
    if (!Number.isSafeInteger(head.size) || head.size < 0 || root.length !== 32) throw new Error(`${path}: the state of ${origin} is damaged`);
    return [origin, { size: head.size, root }];
  }));
}

/** Writes the state durably before the witness answers: a new file, synced, renamed over the old one. */
export async function writeWitnessState(path: string, heads: ReadonlyMap<string, WitnessedHead>): Promise<void> {
  const state: StateFile = { version: 1, logs: Object.fromEntries([...heads].map(([origin, head]) => [origin, { size: head.size, root: head.root.toString('base64') }])) };
  const temporary = `${path}.${process.pid}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(`${JSON.stringify(state, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  // The rename itself is durable only once the directory is synced.
  const directory = await open(dirname(path), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * One witness process per state file: two would each check against a state
 * the other is about to replace. A lock file holds the owner's pid; one
 * left by a process that is gone is taken over.
 */
export function lockWitnessState(path: string): () => void {
  const lock = `${path}.lock`;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => { try { unlinkSync(lock); } catch { /* already gone */ } };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) throw new Error(`the witness state ${path} is in use by process ${pid} (${lock})`);
      unlinkSync(lock);
    }
  }
  throw new Error(`cannot lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
