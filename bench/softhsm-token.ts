import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pkcs11KeyProvider, type Pkcs11Options } from '../hsm/pkcs11-provider.ts';
import { defaultSoftHsmModule, ensureToken, softHsmLayout, writeSoftHsmConfig } from '../hsm/softhsm.ts';

/** A throwaway SoftHSM token for an in-process floor: its own configuration, removed with it. */
export async function withSoftHsmToken<T>(label: string, work: (provider: Pkcs11KeyProvider, token: Pkcs11Options) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `devid-bench-${label}-`));
  try {
    const layout = softHsmLayout(dir);
    writeSoftHsmConfig(layout);
    process.env.SOFTHSM2_CONF = layout.confPath;
    const token = { modulePath: defaultSoftHsmModule(), tokenLabel: `devid-${label}`, pin: randomBytes(8).toString('hex') };
    await ensureToken(token.modulePath, token.tokenLabel, randomBytes(8).toString('hex'), token.pin);
    const provider = await Pkcs11KeyProvider.open(token);
    try {
      return await work(provider, token);
    } finally {
      await provider.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
