import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { HsmError } from './errors.ts';
import { acquireModule, releaseModule, withRetry } from './pkcs11-module.ts';
import { findTokenSlot } from './pkcs11-provider.ts';

/** Where Debian, Ubuntu, Fedora and Homebrew put SoftHSM2's library. */
const SOFTHSM_PATHS = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

export function defaultSoftHsmModule(): string {
  return SOFTHSM_PATHS.find((path) => existsSync(path)) ?? SOFTHSM_PATHS[0]!;
}

/** The SoftHSM files kept under the data directory for the embedded default. */
export interface SoftHsmLayout {
  confPath: string;
  tokenDir: string;
  userPinFile: string;
  soPinFile: string;
}

export function softHsmLayout(dataDir: string): SoftHsmLayout {
  const dir = join(dataDir, 'softhsm');
  return {
    confPath: join(dir, 'softhsm2.conf'),
    tokenDir: join(dir, 'tokens'),
    userPinFile: join(dir, 'user.pin'),
    soPinFile: join(dir, 'so.pin'),
  };
}

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
