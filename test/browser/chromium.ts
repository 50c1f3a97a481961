/**
 * Headless Chromium for browser tests: the Debian `chromium` package driven by playwright-core (which
 * downloads no browser), with a fresh profile that is deleted on close.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
/** Quiet and offline: no sandbox (containers), no GPU, no background traffic to Google. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Chromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Starts Chromium with a fresh user data directory; fails with the install command when it is missing. */
export async function launchChromium(viewport = { width: 900, height: 1000 }): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with 'apt-get install -y chromium'.`);
  }
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'chart-chromium-'));
  let context: BrowserContext;
  try {
    // A persistent context is how Playwright takes a user data directory (it refuses --user-data-dir).
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    async close() {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
