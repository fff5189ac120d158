import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import pkcs11js from 'pkcs11js';
import { HsmError } from './errors.ts';
import { acquireModule, releaseModule, withRetry } from './pkcs11-module.ts';
import { findTokenSlot } from './pkcs11-provider.ts';
import type { SoftHsmLayout } from './softhsm-layout.ts';

// Paths only, in a module of their own: the configuration reads them without loading PKCS#11.
export { defaultSoftHsmModule, softHsmLayout, type SoftHsmLayout } from './softhsm-layout.ts';

/** Writes the SoftHSM config (token directory beside it) unless it exists. */
export function writeSoftHsmConfig(layout: SoftHsmLayout): void {
  mkdirSync(layout.tokenDir, { recursive: true, mode: 0o700 });
  if (existsSync(layout.confPath)) return;
  const conf = [
    `directories.tokendir = ${layout.tokenDir}`,
    'objectstore.backend = file',
    'log.level = ERROR',
    'slots.removable = false',
    '',
  ].join('\n');
  writeFileSync(layout.confPath, conf, { mode: 0o600 });
}

/** Reads a PIN file, creating it with a fresh random PIN (mode 0600) when absent. */
export function ensurePinFile(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  return readFileSync(path, 'utf8').trim();
}

/**
 * C_InitToken on a free slot when no token carries the label (SoftHSM always
 * offers one uninitialised slot), then sets the user PIN. Real HSMs are
 * initialised by their own tools, so this is only used for SoftHSM.
 */
export async function ensureToken(modulePath: string, label: string, soPin: string, userPin: string): Promise<boolean> {
  const lib = acquireModule(modulePath);
  try {
    if (await findTokenSlot(lib, label)) return false;
    let free: Buffer | undefined;
    for (const slot of lib.C_GetSlotList(true)) {
      const info = await withRetry(() => lib.C_GetTokenInfo(slot));
      if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) {
        free = slot;
        break;
      }
    }
    if (!free) throw new HsmError('token-not-found', `no free slot to create token "${label}" in ${modulePath}`);
    // PKCS#11 labels are blank-padded to 32 bytes; pkcs11js would pad with NULs.
    lib.C_InitToken(free, soPin, label.padEnd(32, ' '));
    // SoftHSM renumbers the slot only at the next C_Initialize; the old handle still reaches the token.
    const session = await withRetry(() => lib.C_OpenSession(free, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
    try {
      lib.C_Login(session, pkcs11js.CKU_SO, soPin);
      lib.C_InitPIN(session, userPin);
      lib.C_Logout(session);
    } finally {
      lib.C_CloseSession(session);
    }
    return true;
  } finally {
    releaseModule(modulePath);
  }
}
