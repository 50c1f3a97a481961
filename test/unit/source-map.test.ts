/**
 * Stacks of a bundle mapped to the sources on demand (lib/source-map.ts): a bundle built with the
 * functions' esbuild settings throws in a fresh node process, which prints the stack as V8 wrote it and
 * as the project logs it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_BUILD_OPTIONS } from '../../scripts/build.ts';

const SOURCE_MAP_MODULE = fileURLToPath(new URL('../../lib/source-map.ts', import.meta.url));
/** The line of `throw` in the fixture below (1-based). */
const THROW_LINE = 4;
const FIXTURE = `import { originalStack } from ${JSON.stringify(SOURCE_MAP_MODULE)};

function failDeepInside(): never {
  throw new Error('boom');
}

try {
  failDeepInside();
} catch (error) {
  const stack = error instanceof Error ? (error.stack ?? '') : '';
  process.stdout.write(JSON.stringify({ raw: stack, mapped: originalStack(stack) }));
}
`;

let dir = '';
let bundle = '';

function run(...nodeArgs: string[]): { raw: string; mapped: string } {
  const child = spawnSync(process.execPath, [...nodeArgs, bundle], { encoding: 'utf8', timeout: 20_000 });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout) as { raw: string; mapped: string };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'source-map-'));
  await writeFile(path.join(dir, 'thrower.ts'), FIXTURE);
  bundle = path.join(dir, 'dist', 'index.mjs');
  await build({ ...FUNCTION_BUILD_OPTIONS, entryPoints: [path.join(dir, 'thrower.ts')], outfile: bundle });
});

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('originalStack', () => {
  it('maps the bundle’s frames to the source file, line and column, without --enable-source-maps', () => {
    const { raw, mapped } = run();
    // V8's own stack points into the minified bundle.
    expect(raw).toMatch(/index\.mjs:\d+:\d+/);
    expect(raw).not.toContain('thrower.ts');
    const frames = mapped.split('\n').filter((line) => line.trimStart().startsWith('at '));
    expect(frames[0]).toMatch(new RegExp(`thrower\\.ts:${THROW_LINE}:\\d+`));
    expect(mapped).not.toMatch(/index\.mjs:\d+:\d+/);
    // The message line and the frames' count are kept.
    expect(mapped.split('\n')[0]).toBe('Error: boom');
    expect(mapped.split('\n')).toHaveLength(raw.split('\n').length);
  });

  it('leaves the stack to Node when Node maps it itself', () => {
    const { raw, mapped } = run('--enable-source-maps');
    expect(raw).toMatch(new RegExp(`thrower\\.ts:${THROW_LINE}:\\d+`));
    expect(mapped).toBe(raw);
  });

  it('leaves the stack unchanged when the bundle has no map beside it', async () => {
    await rm(`${bundle}.map`);
    const { raw, mapped } = run();
    expect(raw).toMatch(/index\.mjs:\d+:\d+/);
    expect(mapped).toBe(raw);
  });
});
