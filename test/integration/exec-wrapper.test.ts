/**
 * runtime/exec-wrapper.sh, as `npm run build` puts it in dist/ and Lambda runs it (AWS_LAMBDA_EXEC_WRAPPER):
 * executed directly with the runtime's command line (node, Lambda's flags, the entry script), it must start
 * that same command with V8_FLAGS added after the node binary, and change nothing else.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServerlessYml, SERVERLESS_YML } from '../../local/dynamodb.ts';
import { copyExecWrapper, EXEC_WRAPPER } from '../../scripts/build.ts';
import { lambdaBootstrapArgs } from '../../serverless/v8-flags.ts';

const LAMBDA_NODE_ARGS = lambdaBootstrapArgs(256);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = path.join(ROOT, 'dist', 'exec-wrapper.sh');

let dir: string;
/** Stands in for the runtime's entry point: reports the flags node runs with and its arguments. */
let entry: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'exec-wrapper-'));
  entry = path.join(dir, 'index.mjs');
  await writeFile(
    entry,
    'process.stdout.write(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2) }));\n',
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(env: Record<string, string>, args: string[], wrapper = BUILT) {
  const { stdout } = await promisify(execFile)(
    wrapper,
    [process.execPath, ...LAMBDA_NODE_ARGS, entry, ...args],
    {
      env: { PATH: process.env.PATH ?? '', ...env },
      // Where *.json matches files: the pattern test needs some.
      cwd: ROOT,
    },
  );
  return JSON.parse(stdout) as { execArgv: string[]; argv: string[] };
}

async function defaultFlags(): Promise<string> {
  const doc = parseServerlessYml(await readFile(SERVERLESS_YML, 'utf8')) as {
    params: { default: { v8Flags: string } };
  };
  return doc.params.default.v8Flags;
}

describe('the exec wrapper', () => {
  it('is built into dist/ unchanged, with LF line ends, executable by anyone', async () => {
    const built = await readFile(BUILT, 'utf8');
    expect(built).toBe(await readFile(EXEC_WRAPPER, 'utf8'));
    expect(built).not.toContain('\r');
    expect(built.split('\n')[0]).toBe('#!/bin/bash');
    await access(BUILT, constants.X_OK);
    // Lambda runs the function's code as another user than the file's owner.
    expect((await stat(BUILT)).mode & 0o777).toBe(0o755);
  });

  it('is built with LF line ends from a checkout that turned them into CRLF', async () => {
    const out = path.join(dir, 'crlf');
    const crlf = path.join(dir, 'crlf.sh');
    await writeFile(crlf, (await readFile(EXEC_WRAPPER, 'utf8')).replace(/\n/g, '\r\n'));
    const built = await copyExecWrapper(out, crlf);
    expect(await readFile(built, 'utf8')).toBe(await readFile(EXEC_WRAPPER, 'utf8'));
    const child = await run({ V8_FLAGS: '--max-opt=2' }, [], built);
    expect(child.execArgv[0]).toBe('--max-opt=2');
  });

  it('adds V8_FLAGS right after node, before the runtime’s own flags and entry point', async () => {
    const flags = await defaultFlags();
    expect(flags).not.toBe('');
    const child = await run({ V8_FLAGS: flags }, ['one', 'two words', '*', '$HOME', '--max-opt=4']);
    expect(child.execArgv).toEqual([...flags.split(' '), ...LAMBDA_NODE_ARGS]);
    // The runtime's arguments pass through as they were: no splitting, globbing or expansion.
    expect(child.argv).toEqual(['one', 'two words', '*', '$HOME', '--max-opt=4']);
  });

  it('starts the command exactly as given when V8_FLAGS is empty or unset', async () => {
    for (const env of [{}, { V8_FLAGS: '' }]) {
      const child = await run(env, ['x y']);
      expect(child.execArgv).toEqual(LAMBDA_NODE_ARGS);
      expect(child.argv).toEqual(['x y']);
    }
  });

  it('never expands V8_FLAGS as a file pattern', async () => {
    // A pattern that matches files here (the repository's *.json) stays the word it is, and node refuses it.
    const refused = await run({ V8_FLAGS: '*.json' }, []).then(
      () => '',
      (error: { stderr?: string }) => error.stderr ?? '',
    );
    // node takes the word as its script (expanded, it would run biome.json and fail on that name instead).
    expect(refused).toContain(path.join(ROOT, '*.json'));
  });
});
