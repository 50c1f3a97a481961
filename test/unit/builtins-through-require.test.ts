/**
 * Node's built-ins in the function bundles come through `require`, not ESM `import`
 * (scripts/build.ts BUILTINS_THROUGH_REQUIRE): an ESM import of `node:http` reads every export of the
 * module, and on Node 24 that loads undici, which none of the functions uses. A fixture with every
 * import form is bundled with the functions' settings and run in a fresh process; the built functions
 * themselves are imported in fresh processes and must not have loaded undici.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_BUILD_OPTIONS, listHandlers } from '../../scripts/build.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Every way a source file imports a built-in; prints what each one gave and whether undici loaded. */
const FIXTURE = `import http, { Agent } from 'node:http';
import * as crypto from 'node:crypto';
import { join } from 'path';
import { setTimeout as sleep } from 'node:timers/promises';

const https = await import('node:https');
await sleep(1);
const undici = process.moduleLoadList.filter((name) => name.includes('undici'));
process.stdout.write(JSON.stringify({
  agent: new Agent({ keepAlive: true }) instanceof http.Agent,
  hash: crypto.createHash('sha256').update('a').digest('hex').slice(0, 8),
  join: join('a', 'b'),
  https: typeof https.request === 'function' && typeof https.default.Agent === 'function',
  undici,
}));
`;

/** Runs Node with `args` in a fresh process and returns what it printed, parsed. */
function runNode(args: string[]): unknown {
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000 });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout);
}

let dir = '';
let bundle = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'builtins-'));
  await writeFile(path.join(dir, 'fixture.ts'), FIXTURE);
  bundle = path.join(dir, 'dist', 'index.mjs');
  await build({ ...FUNCTION_BUILD_OPTIONS, entryPoints: [path.join(dir, 'fixture.ts')], outfile: bundle });
});

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('built-ins through require', () => {
  it('leaves no ESM import of a built-in in the bundle but the banner’s createRequire', async () => {
    const code = await readFile(bundle, 'utf8');
    const imports = [...code.matchAll(/\bfrom\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g)].map(
      (m) => m[1] ?? m[2],
    );
    expect(imports).toEqual(['node:module']);
  });

  it('gives default, named, namespace and dynamic imports the module’s own exports, without loading undici', () => {
    expect(runNode([bundle])).toEqual({
      agent: true,
      hash: 'ca978112',
      join: path.join('a', 'b'),
      https: true,
      undici: [],
    });
  });

  it('leaves a package named like a prefix-only built-in (sqlite, not node:sqlite) to npm resolution', async () => {
    await expect(
      build({
        ...FUNCTION_BUILD_OPTIONS,
        stdin: { contents: "import 'sqlite';", resolveDir: dir },
        outfile: path.join(dir, 'sqlite-probe', 'index.mjs'),
        write: false,
        logLevel: 'silent',
      }),
    ).rejects.toThrow(/Could not resolve "sqlite"/);
  });

  it('an unbundled ESM import of node:http does load undici (what the build avoids)', async () => {
    const probe = path.join(dir, 'esm-probe.mjs');
    await writeFile(
      probe,
      `await import('node:http');
process.stdout.write(JSON.stringify(process.moduleLoadList.some((name) => name.includes('undici'))));`,
    );
    expect(runNode([probe])).toBe(true);
  });
});

describe('the function bundles', async () => {
  const names = await listHandlers();
  const missing = names.filter((name) => !existsSync(path.join(ROOT, 'dist', name, 'index.mjs')));
  if (missing.length > 0) {
    throw new Error(`dist/ lacks ${missing.join(', ')}: run \`npm run build\` first (npm test does).`);
  }

  it.each(names)('%s: importing the bundle loads no undici', (name) => {
    const file = pathToFileURL(path.join(ROOT, 'dist', name, 'index.mjs')).href;
    const loaded = runNode([
      '--input-type=module',
      '--eval',
      `const mod = await import(${JSON.stringify(file)});
process.stdout.write(JSON.stringify({ handler: typeof mod.handler, undici: process.moduleLoadList.filter((n) => n.includes('undici')) }));`,
    ]);
    expect(loaded).toEqual({ handler: 'function', undici: [] });
  });
});
