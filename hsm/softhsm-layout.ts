import { existsSync } from 'node:fs';
import { join } from 'node:path';

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
