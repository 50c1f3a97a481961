/** What the project's osls plugins share: how a variable source names its stage parameter, and user errors. */

/** What osls gives a variable source's `resolve`. */
export interface VariableSourceContext {
  address?: string | null;
  resolveVariable: (variable: string) => Promise<unknown>;
}

/** The stage parameter a `${source:<param>}` variable names; throws, with an example, when it names none. */
export function stageParamName(source: string, context: VariableSourceContext, example: string): string {
  const name = context.address ?? '';
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new Error(`\${${source}:…} needs the name of a stage parameter, e.g. \${${source}:${example}}.`);
  }
  return name;
}

/** `error`, named as osls's own user errors, which it prints as their message alone: a setting to fix, not a stack trace. */
export function asUserError(error: unknown): unknown {
  if (error instanceof Error) error.name = 'ServerlessError';
  return error;
}
