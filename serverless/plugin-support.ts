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

/**
 * A user error as osls knows its own: it prints such an error as its message alone (a setting to fix,
 * not a stack trace). osls tells them by the class's name — in a variable source, `constructor.name` —
 * so this is a class of that name, not only an error renamed.
 */
class ServerlessError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'ServerlessError';
  }
}

/** `error` as a {@link ServerlessError}, its message kept; anything but an Error is returned unchanged. */
export function asUserError(error: unknown): unknown {
  return error instanceof Error ? new ServerlessError(error.message, { cause: error }) : error;
}

/** A variable source's `resolve` whose errors reach the user as {@link asUserError}s. */
export function userErrorsOf<A extends unknown[], R>(resolve: (...args: A) => Promise<R>) {
  return async (...args: A): Promise<R> => {
    try {
      return await resolve(...args);
    } catch (error) {
      throw asUserError(error);
    }
  };
}
