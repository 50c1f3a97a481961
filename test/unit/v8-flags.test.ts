/** The `v8Flags` stage parameter: words node takes on its command line, checked before anything deploys. */
import { describe, expect, it } from 'vitest';
import V8FlagsPlugin, {
  checkNodeAccepts,
  lambdaBootstrapArgs,
  parseV8Flags,
} from '../../serverless/v8-flags.ts';

function resolve(params: Record<string, unknown>, address = 'v8Flags') {
  return new V8FlagsPlugin().configurationVariablesSources.checkedV8Flags.resolve({
    address,
    resolveVariable: async (variable: string) => params[variable.replace(/^param:/, '')],
  });
}

describe('Lambda’s own node flags', () => {
  it('size the heap from the function’s memory: a tenth new space, half of it per semi-space, the rest old space', () => {
    expect(lambdaBootstrapArgs(256)).toEqual([
      '--expose-gc',
      '--max-http-header-size',
      '81920',
      '--max-semi-space-size=12',
      '--max-old-space-size=231',
    ]);
    expect(lambdaBootstrapArgs(128).slice(-2)).toEqual([
      '--max-semi-space-size=6',
      '--max-old-space-size=116',
    ]);
  });
});

describe('v8Flags', () => {
  it('splits flags on any run of spaces, and takes empty for none', () => {
    expect(parseV8Flags('')).toEqual([]);
    expect(parseV8Flags('   ')).toEqual([]);
    expect(parseV8Flags(undefined)).toEqual([]);
    expect(parseV8Flags(' --single-threaded   --max-opt=2 ')).toEqual(['--single-threaded', '--max-opt=2']);
    expect(parseV8Flags('--max-lazy\t--stack-trace-limit=50')).toEqual([
      '--max-lazy',
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

  it('refuses options that make node do something else than run the runtime, which would fail every start', () => {
    for (const flag of [
      '--version',
      '--help',
      '--v8-options',
      '--eval=0',
      '--print=1',
      '--check',
      '--input-type=module',
      '--test',
      '--test-only',
      '--watch',
      '--watch-path=x',
      '--run=x',
      '--interactive',
    ]) {
      expect(() => parseV8Flags(`--max-opt=2 ${flag}`, 'flags'), flag).toThrow(
        `flags holds '${flag}': node would not run the Lambda runtime with it, and every cold start would fail.`,
      );
    }
    // Tuning flags whose names merely start alike pass.
    expect(parseV8Flags('--print-bytecode-filter=x --checkpoint-x')).toEqual([
      '--print-bytecode-filter=x',
      '--checkpoint-x',
    ]);
  });

  it('refuses the heap sizes Lambda’s runtime sets after them from memorySize, which would be ignored', () => {
    for (const flag of ['--max-old-space-size=100', '--max-semi-space-size=1']) {
      expect(() => parseV8Flags(flag), flag).toThrow(
        `v8Flags holds '${flag}': Lambda's runtime sets it from the function's memory, after these flags, so it would be ignored. Change memorySize instead.`,
      );
    }
  });

  it('accepts the flags with which node runs a script after the runtime’s own flags, and quotes node’s refusal of others', () => {
    expect(() => checkNodeAccepts(['--no-concurrent-recompilation', '--max-opt=2'])).not.toThrow();
    expect(() => checkNodeAccepts([])).not.toThrow();
    expect(() => checkNodeAccepts(['--singlethreaded'], 'v8Flags')).toThrow(
      /^v8Flags '--singlethreaded': node v\d+\.\d+\.\d+ does not run the runtime with it \(.*bad option: --singlethreaded\)\. A function started so would fail at every cold start/,
    );
    expect(() => checkNodeAccepts(['--max-opt=two'])).toThrow(/illegal value for flag --max-opt=two/);
    // A binary that exits 0 without running the script is a refusal too.
    expect(() => checkNodeAccepts(['--x'], 'v8Flags', '/bin/true')).toThrow(
      "v8Flags '--x': node /bin/true does not run the runtime with it (it did not run its script).",
    );
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
