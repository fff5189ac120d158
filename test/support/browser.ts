import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

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

/** A console page signed in with a token, and the errors its scripts report (the one expected 401 before sign-in left out). */
export async function signInToConsole(browser: Browser, origin: string, token: string): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  // The test root is not in chromium's store; the certificate is checked by every other test.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  // The one expected failure: before sign-in, the page asks for a session and gets 401.
  page.on('console', (msg) => { if (msg.type() === 'error' && !msg.text().includes('status of 401')) errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${origin}/console`);
  await page.fill('input[name=token]', token);
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('header .me');
  return { context, page, errors };
}
