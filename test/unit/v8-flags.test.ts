/** The `v8Flags` stage parameter: words node takes on its command line, checked before anything deploys. */
import { describe, expect, it } from 'vitest';
import V8FlagsPlugin, { checkNodeAccepts, parseV8Flags } from '../../serverless/v8-flags.ts';

function resolve(params: Record<string, unknown>, address = 'v8Flags') {
  return new V8FlagsPlugin().configurationVariablesSources.checkedV8Flags.resolve({
    address,
    resolveVariable: async (variable: string) => params[variable.replace(/^param:/, '')],
  });
}

describe('v8Flags', () => {
  it('splits flags on any run of spaces, and takes empty for none', () => {
    expect(parseV8Flags('')).toEqual([]);
    expect(parseV8Flags('   ')).toEqual([]);
    expect(parseV8Flags(undefined)).toEqual([]);
    expect(parseV8Flags(' --single-threaded   --max-opt=2 ')).toEqual(['--single-threaded', '--max-opt=2']);
    expect(parseV8Flags('--max-semi-space-size=1\t--stack-trace-limit=50')).toEqual([
      '--max-semi-space-size=1',
      '--stack-trace-limit=50',
    ]);
  });

  it('refuses what is not a --name or --name=value word, naming each and the parameter', () => {
    expect(() => parseV8Flags('rm -rf', 'flags')).toThrow(
      "flags holds 'rm', '-rf': give node command-line flags separated by spaces, each --name or --name=value",
    );
    // Nothing the shell of the wrapper could read as more than a word.
    for (const bad of ['--a=$(id)', '--a;b', '--a=`id`', '--a=*', '--a="x"', "--a='x'", '--A', '--']) {
      expect(() => parseV8Flags(`--single-threaded ${bad}`), bad).toThrow(`'${bad}'`);
    }
  });

  it('accepts the flags node starts with, and quotes node’s refusal of others', () => {
    expect(() => checkNodeAccepts(['--no-concurrent-recompilation', '--max-opt=2'])).not.toThrow();
    expect(() => checkNodeAccepts([])).not.toThrow();
    expect(() => checkNodeAccepts(['--singlethreaded'], 'v8Flags')).toThrow(
      /^v8Flags '--singlethreaded': node v\d+\.\d+\.\d+ refuses to start with it \(.*bad option: --singlethreaded\)\. A function started so would fail at every cold start/,
    );
    expect(() => checkNodeAccepts(['--max-opt=two'])).toThrow(/illegal value for flag --max-opt=two/);
  });

  it('resolves checkedV8Flags:<param> to the checked flags, one space apart, as an osls user error otherwise', async () => {
    await expect(resolve({ v8Flags: ' --single-threaded  --max-opt=2' })).resolves.toEqual({
      value: '--single-threaded --max-opt=2',
    });
    await expect(resolve({ v8Flags: '' })).resolves.toEqual({ value: '' });
    await expect(resolve({ other: '--single-threaded' }, 'other')).resolves.toEqual({
      value: '--single-threaded',
    });
    await expect(resolve({ v8Flags: '--nope' })).rejects.toThrow(
      expect.objectContaining({
        name: 'ServerlessError',
        message: expect.stringContaining('bad option: --nope'),
      }),
    );
    await expect(resolve({}, 'not a name')).rejects.toThrow(/needs the name of a stage parameter/);
  });
});
