import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (scripts/setup.sh --test installs it); nothing downloads a browser. */
export const CHROMIUM = process.env.DEVID_CHROMIUM ?? '/usr/bin/chromium';
/** Where the console tests leave their screenshots. */
export const ARTIFACTS = join(process.cwd(), 'test-artifacts');

/**
 * A headless chromium that resolves the test servers' public host to
 * loopback and does not reach out to anything else: this machine, like an
 * air-gapped CA, has no network for it.
 */
export async function launchBrowser(publicHost: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: run scripts/setup.sh --test, or set DEVID_CHROMIUM`);
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-dev-shm-usage', `--host-resolver-rules=MAP ${publicHost} 127.0.0.1`,
    ],
  });
}
