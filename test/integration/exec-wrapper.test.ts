/**
 * runtime/exec-wrapper.sh, as `npm run build` puts it in dist/ and Lambda runs it (AWS_LAMBDA_EXEC_WRAPPER):
 * executed directly with the runtime's command line, it must start that same command with V8_FLAGS added
 * after the node binary, and change nothing else.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseServerlessYml, SERVERLESS_YML } from '../../local/dynamodb.ts';
import { EXEC_WRAPPER } from '../../scripts/build.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = path.join(ROOT, 'dist', 'exec-wrapper.sh');
// What the child reports: the flags it runs with and its arguments.
const REPORT =
  'process.stdout.write(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(1) }))';
// Flags Lambda's Node.js bootstrap gives node itself, before its entry point.
const LAMBDA_ARGS = ['--expose-gc', '--max-semi-space-size=8', '--max-old-space-size=230'];

async function run(env: Record<string, string>, args: string[]) {
  const { stdout } = await promisify(execFile)(
    BUILT,
    [process.execPath, ...LAMBDA_ARGS, '-e', REPORT, ...args],
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
  it('is built into dist/ unchanged and executable', async () => {
    expect(await readFile(BUILT, 'utf8')).toBe(await readFile(EXEC_WRAPPER, 'utf8'));
    await access(BUILT, constants.X_OK);
    expect((await stat(BUILT)).mode & 0o755).toBe(0o755);
  });

  it('adds V8_FLAGS right after node, before the runtime’s own flags and entry point', async () => {
    const flags = await defaultFlags();
    expect(flags.split(' ').length).toBeGreaterThan(0);
    const child = await run({ V8_FLAGS: flags }, ['one', 'two words', '*', '$HOME', '--max-opt=4']);
    expect(child.execArgv).toEqual([...flags.split(' '), ...LAMBDA_ARGS, '-e', REPORT]);
    // The runtime's arguments pass through as they were: no splitting, globbing or expansion.
    expect(child.argv).toEqual(['one', 'two words', '*', '$HOME', '--max-opt=4']);
  });

  it('starts the command exactly as given when V8_FLAGS is empty or unset', async () => {
    for (const env of [{}, { V8_FLAGS: '' }]) {
      const child = await run(env, ['x y']);
      expect(child.execArgv).toEqual([...LAMBDA_ARGS, '-e', REPORT]);
      expect(child.argv).toEqual(['x y']);
    }
  });

  it('never expands V8_FLAGS as a file pattern', async () => {
    // A pattern that matches files here (the repository's *.json) stays the word it is, and node refuses it.
    const refused = await run({ V8_FLAGS: '*.json' }, []).then(
      () => '',
      (error: { stderr?: string }) => error.stderr ?? '',
    );
    expect(refused).toContain('*.json');
  });
});
