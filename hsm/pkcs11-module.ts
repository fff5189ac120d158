import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pkcs11js from 'pkcs11js';
import { HsmError, ckrName } from './errors.ts';

/**
 * A PKCS#11 library may be C_Initialize'd once per process, so every provider
 * in the process shares one loaded module per path, counted by reference.
 */
interface LoadedModule {
  lib: pkcs11js.PKCS11;
  users: number;
}

/** Process-wide, like the library itself: a second copy of this module (a dual ESM/CJS load) must share it. */
const REGISTRY = Symbol.for('devid-ca.pkcs11-modules');
const loaded: Map<string, LoadedModule> = ((globalThis as Record<symbol, unknown>)[REGISTRY] ??= new Map<string, LoadedModule>()) as Map<string, LoadedModule>;

export function acquireModule(path: string): pkcs11js.PKCS11 {
  const existing = loaded.get(path);
  if (existing) {
    existing.users += 1;
    return existing.lib;
  }
  if (!existsSync(path)) {
    throw new HsmError('module-not-found', `PKCS#11 module not found at ${path}: set DEVID_PKCS11_MODULE to the HSM vendor's library (or install softhsm2)`);
  }
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(path);
    lib.C_Initialize();
  } catch (err) {
    throw new HsmError('module-not-found', `cannot load PKCS#11 module ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  loaded.set(path, { lib, users: 1 });
  return lib;
}

export function releaseModule(path: string): void {
  const entry = loaded.get(path);
  if (!entry) return;
  entry.users -= 1;
  if (entry.users > 0) return;
  loaded.delete(path);
  try {
    entry.lib.C_Finalize();
  } finally {
    entry.lib.close();
  }
}

/**
 * C_Finalize and C_Initialize again: every session of every provider in the
 * process is gone afterwards, and each reopens its own on its next call
 * (CKR_SESSION_HANDLE_INVALID). The last resort of session recovery.
 */
export function reinitializeModule(path: string): void {
  const entry = loaded.get(path);
  if (!entry) return;
  try {
    entry.lib.C_Finalize();
  } catch {
    // Already finalised, or the library is in no state to say: initialise again regardless.
  }
  entry.lib.C_Initialize();
}

/**
 * SoftHSM2 can answer CKR_GENERAL_ERROR to C_GetTokenInfo or C_OpenSession
 * when several processes open the token at once (docs/developers/hsm.md): retry a few
 * times with a short back-off before giving up.
 */
export async function withRetry<T>(operation: () => T, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return operation();
    } catch (err) {
      if (ckrName(err) !== 'CKR_GENERAL_ERROR' || attempt >= attempts) throw err;
      await sleep(20 * 2 ** attempt + Math.random() * 20);
    }
  }
}
