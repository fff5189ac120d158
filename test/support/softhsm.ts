import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultSoftHsmModule, ensureToken, softHsmLayout, writeSoftHsmConfig } from '../../hsm/softhsm.ts';

/**
 * One SoftHSM2 configuration for the whole test process (a PKCS#11 module is
 * initialised once per process); each test gets its own token in it.
 */
// The loader may evaluate this module twice (ESM and CJS): both must use the configuration the module was initialised with.
const root = process.env.DEVID_TEST_SOFTHSM_ROOT ?? mkdtempSync(join(tmpdir(), 'devid-test-softhsm-'));
if (!process.env.DEVID_TEST_SOFTHSM_ROOT) {
  process.env.DEVID_TEST_SOFTHSM_ROOT = root;
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
}
const layout = softHsmLayout(root);
writeSoftHsmConfig(layout);
process.env.SOFTHSM2_CONF = layout.confPath;

export const SOFTHSM_CONF = layout.confPath;
export const MODULE_PATH = defaultSoftHsmModule();

export interface TestToken {
  modulePath: string;
  tokenLabel: string;
  pin: string;
}

export function uniqueLabel(prefix = 'test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function createTestToken(label = uniqueLabel()): Promise<TestToken> {
  const pin = randomBytes(8).toString('hex');
  await ensureToken(MODULE_PATH, label, randomBytes(8).toString('hex'), pin);
  return { modulePath: MODULE_PATH, tokenLabel: label, pin };
}
