/**
 * A local osls plugin: the functions' settings (provider.environment, stage parameters resolved) checked
 * when packaging by the very rules the functions apply at run time (lib/config.ts), so that a mistyped
 * `--param timeoutMs=abc` is refused here instead of failing every call and every snapshot once deployed.
 * Values CloudFormation fills in at deploy time (`!Ref`, `!GetAtt`, …) are left to it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configProblems } from '../lib/config.ts';
import { asUserError } from './plugin-support.ts';

interface ServerlessLike {
  service: { provider: { environment?: Record<string, unknown> } };
  /** Where serverless.yml is: read as written (variables unresolved) to name each variable's parameter. */
  serviceDir?: string;
  configurationFilename?: string;
}

/**
 * `NAME: ${param:name}` lines of a serverless.yml as written: each variable set from a stage parameter
 * alone (a hint for the message, so a plain scan of the lines is enough).
 */
export function writtenParams(serverlessYml: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const match of serverlessYml.matchAll(/^\s+([A-Z][A-Z0-9_]*):\s*(\$\{param:[A-Za-z0-9_]+\})\s*$/gm)) {
    const [, variable, value] = match;
    if (variable !== undefined && value !== undefined) found[variable] = value;
  }
  return found;
}

function writtenEnvironment(serverless: ServerlessLike): Record<string, string> {
  if (serverless.serviceDir === undefined || serverless.configurationFilename === undefined) return {};
  try {
    return writtenParams(
      readFileSync(path.join(serverless.serviceDir, serverless.configurationFilename), 'utf8'),
    );
  } catch {
    return {};
  }
}

/** The stage parameter a variable is set from (`${param:name}` in serverless.yml), if any. */
function paramOf(raw: unknown): string | undefined {
  return typeof raw === 'string' ? /^\$\{param:([A-Za-z0-9_]+)\}$/.exec(raw.trim())?.[1] : undefined;
}

/**
 * What is wrong with `environment` (resolved) as the functions would read it; each message names the
 * variable and, from `written` (unresolved), the stage parameter to fix.
 */
export function settingsProblems(
  environment: Record<string, unknown>,
  written: Record<string, unknown> = {},
): string[] {
  const strings = Object.fromEntries(
    Object.entries(environment).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
  return configProblems(strings).map((problem) => {
    const variable = /^[A-Z][A-Z0-9_]+/.exec(problem)?.[0];
    const param = variable === undefined ? undefined : paramOf(written[variable]);
    return param === undefined
      ? problem
      : `${problem} Set it with the stage parameter ${param} (params in serverless.yml, or --param ${param}=…).`;
  });
}

/** The plugin osls loads from `plugins:`. */
export default class SettingsPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike) {
    this.hooks = {
      'before:package:initialize': () => {
        const problems = settingsProblems(
          serverless.service.provider.environment ?? {},
          writtenEnvironment(serverless),
        );
        if (problems.length === 0) return;
        throw asUserError(
          new Error(
            `The functions would refuse ${problems.length === 1 ? 'this setting' : 'these settings'} at run time:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
          ),
        );
      },
    };
  }
}
