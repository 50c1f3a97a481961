/** The packaging check of the functions' settings (serverless/settings.ts), without osls. */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import SettingsPlugin, { settingsProblems, writtenParams } from '../../serverless/settings.ts';

describe('settingsProblems', () => {
  it('checks the resolved strings by the functions’ rules and leaves CloudFormation’s values to it', () => {
    expect(
      settingsProblems({
        KOODRIVE_TIMEOUT_MS: '2000',
        SNAPSHOT_TABLE: { Ref: 'SnapshotsTable' },
        HISTORY_CURSOR_KEY: { Ref: 'AWS::StackId' },
        POWERTOOLS_SERVICE_NAME: 'koodrive-allocation-dev',
      }),
    ).toEqual([]);
  });

  it('names the stage parameter a wrong variable comes from, when serverless.yml sets it from one', () => {
    expect(
      settingsProblems(
        { KOODRIVE_MAX_ATTEMPTS: '0', SECRET_CACHE_SECONDS: 'soon' },
        // biome-ignore lint/suspicious/noTemplateCurlyInString: serverless.yml's variable, as written there.
        { KOODRIVE_MAX_ATTEMPTS: '${param:maxAttempts}', SECRET_CACHE_SECONDS: 'soon' },
      ),
    ).toEqual([
      "KOODRIVE_MAX_ATTEMPTS is '0': it must be a whole number from 1 to 10. Set it with the stage parameter maxAttempts (params in serverless.yml, or --param maxAttempts=…).",
      "SECRET_CACHE_SECONDS is 'soon': it must be a whole number from 0 to 86400.",
    ]);
  });

  it('stops packaging with every problem as a user error (its message alone, no stack)', () => {
    const plugin = new SettingsPlugin({
      service: { provider: { environment: { SNAPSHOT_CONCURRENCY: '999', ALLOCATION_METRICS: 'all' } } },
    });
    let thrown: unknown;
    try {
      plugin.hooks['before:package:initialize']?.();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).name).toBe('ServerlessError');
    expect((thrown as Error).message).toMatch(
      /^The functions would refuse these settings at run time:\n {2}- SNAPSHOT_CONCURRENCY is '999': it must be a whole number from 1 to 256\.\n {2}- ALLOCATION_METRICS is 'all'/,
    );
    expect(() =>
      new SettingsPlugin({ service: { provider: { environment: {} } } }).hooks[
        'before:package:initialize'
      ]?.(),
    ).not.toThrow();
  });

  it('finds in serverless.yml which parameter sets each variable', () => {
    const written = writtenParams(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: serverless.yml's variable, as written there.
    expect(written.KOODRIVE_TIMEOUT_MS).toBe('${param:timeoutMs}');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: serverless.yml's variable, as written there.
    expect(written.SNAPSHOT_RETENTION_DAYS).toBe('${param:snapshotRetentionDays}');
  });
});
