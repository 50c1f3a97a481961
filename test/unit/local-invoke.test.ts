/**
 * `npm run snapshot:local`'s command line: a mistake is named, not answered with the usage line alone.
 */
import { describe, expect, it } from 'vitest';
import { argsProblem, eventFromArgs } from '../../local/invoke.ts';

const AT = new Date('2026-11-28T04:00:00.000Z');

describe('npm run snapshot:local arguments', () => {
  it('takes what the README documents', () => {
    for (const args of [[], ['--schedule'], ['--sqs'], ['--sqs', 'demo'], ['--event'], ['--event', 'lab']]) {
      expect(argsProblem(args), args.join(' ')).toBeUndefined();
      expect(eventFromArgs(args, AT, 'us-east-1'), args.join(' ')).toBeDefined();
    }
  });

  it('names an unknown option', () => {
    expect(eventFromArgs(['--bogus'], AT, 'us-east-1')).toBeUndefined();
    expect(argsProblem(['--bogus'])).toMatch(/unknown option '--bogus'/);
    expect(argsProblem(['demo'])).toMatch(/unknown option 'demo'/);
  });

  it('says that a scheduled event takes no tenant, and which options do', () => {
    expect(eventFromArgs(['--schedule', 'demo'], AT, 'us-east-1')).toBeUndefined();
    expect(argsProblem(['--schedule', 'demo'])).toMatch(
      /--schedule takes no tenant.*--sqs demo or --event demo/,
    );
  });

  it('says that one tenant at most is taken', () => {
    expect(eventFromArgs(['--sqs', 'demo', 'lab'], AT, 'us-east-1')).toBeUndefined();
    expect(argsProblem(['--sqs', 'demo', 'lab'])).toMatch(/one tenant at most.*'lab'/);
  });
});
