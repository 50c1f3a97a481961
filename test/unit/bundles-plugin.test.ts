/** The packaging check that the functions' bundles were built (serverless/bundles.ts), without osls. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import BundlesPlugin, { missingBundles } from '../../serverless/bundles.ts';

const FUNCTIONS = {
  allocation: { handler: 'dist/allocation/index.handler' },
  snapshot: { handler: 'dist/snapshot/index.handler' },
};

describe('the bundles check', () => {
  it('names each function whose bundle dist/ lacks, with the file', () => {
    const built = new Set(['dist/allocation/index.mjs']);
    expect(missingBundles(FUNCTIONS, (file) => built.has(file))).toEqual([
      { name: 'snapshot', file: 'dist/snapshot/index.mjs' },
    ]);
  });

  it('stops packaging before the build, saying to run npm run build', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bundles-'));
    const plugin = new BundlesPlugin({ service: { functions: FUNCTIONS }, serviceDir: dir });
    expect(() => plugin.hooks['before:package:initialize']?.()).toThrow(
      /dist\/allocation\/index\.mjs of allocation, dist\/snapshot\/index\.mjs of snapshot.*npm run build/,
    );
    for (const name of ['allocation', 'snapshot']) {
      mkdirSync(path.join(dir, 'dist', name), { recursive: true });
      writeFileSync(path.join(dir, 'dist', name, 'index.mjs'), '');
    }
    expect(() => plugin.hooks['before:package:initialize']?.()).not.toThrow();
  });

  it('is loaded by serverless.yml', async () => {
    const { readFileSync } = await import('node:fs');
    const yml = readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8');
    expect(yml).toMatch(/^ {2}- \.\/serverless\/bundles\.ts$/m);
  });
});
