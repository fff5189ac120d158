import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { curveInfo, digestFor, type Curve } from '../hsm/curves.ts';
import { acquireModule, releaseModule } from '../hsm/pkcs11-module.ts';
import { findTokenSlot, Pkcs11KeyProvider } from '../hsm/pkcs11-provider.ts';
import { defaultSoftHsmModule, ensureToken, softHsmLayout, writeSoftHsmConfig } from '../hsm/softhsm.ts';
import { throughput, throughputSync, type BenchResult } from './report.ts';

/**
 * Signatures per second through hsm/ (1 and 4 concurrent callers) against
 * the floor: raw synchronous C_Sign through pkcs11js on one session, the same
 * digest-and-sign work with nothing of ours around it.
 */
export async function benchHsm(ms: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-hsm-'));
  const layout = softHsmLayout(dir);
  writeSoftHsmConfig(layout);
  process.env.SOFTHSM2_CONF = layout.confPath;
  const modulePath = defaultSoftHsmModule();
  const token = { modulePath, tokenLabel: 'devid-bench', pin: randomBytes(8).toString('hex') };
  await ensureToken(modulePath, token.tokenLabel, randomBytes(8).toString('hex'), token.pin);
  const provider = await Pkcs11KeyProvider.open(token);
  const lib = acquireModule(modulePath);
  const results: BenchResult[] = [];
  try {
    const slot = (await findTokenSlot(lib, token.tokenLabel))!;
    const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    for (const curve of ['P-256', 'P-384'] as Curve[]) {
      const key = await provider.createKey(`bench-${curve}`, curve);
      lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: key.label }]);
      const [handle] = lib.C_FindObjects(session, 1);
      lib.C_FindObjectsFinal(session);
      const info = curveInfo(curve);
      const data = randomBytes(256);
      const floor = throughputSync(() => {
        lib.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, handle!);
        lib.C_Sign(session, digestFor(info, data), Buffer.alloc(info.size * 2));
      }, ms);
      for (const concurrency of [1, 4]) {
        const value = await throughput(() => provider.sign(key, data), concurrency, ms);
        results.push({ name: `hsm.sign.${curve.toLowerCase()}.c${concurrency}`, value, unit: 'ops/s', floor });
      }
    }
    lib.C_CloseSession(session);
  } finally {
    releaseModule(modulePath);
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
