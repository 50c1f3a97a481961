/**
 * A local osls plugin: `${checkedV8Flags:<param>}`, the flags that runtime/exec-wrapper.sh adds to node's
 * command line (the `V8_FLAGS` variable), checked at package time. A flag node refuses would stop every
 * function at its first cold start ("bad option"), so the package is refused instead: the flags must be
 * `--name` or `--name=value` words, and the node running osls must start with them (the pinned Node 24 under
 * `npx serverless`, the runtime's own major version).
 */
import { spawnSync } from 'node:child_process';
import { stageParamName, userErrorsOf, type VariableSourceContext } from './plugin-support.ts';

const FLAG = /^--[a-z][a-z0-9_-]*(=[A-Za-z0-9._,:+-]+)?$/;

/** The flags of a parameter value, one per word; throws what is wrong and how to write it instead. */
export function parseV8Flags(value: unknown, param = 'v8Flags'): string[] {
  const text = String(value ?? '').trim();
  if (text === '') return [];
  const flags = text.split(/\s+/);
  const bad = flags.filter((flag) => !FLAG.test(flag));
  if (bad.length > 0) {
    throw new Error(
      `${param} holds ${bad.map((flag) => `'${flag}'`).join(', ')}: give node command-line flags separated by spaces, each --name or --name=value (e.g. --no-concurrent-recompilation --max-opt=2), or leave it empty for none.`,
    );
  }
  return flags;
}

/** Throws when `node` (this process's binary by default) does not start with `flags`, quoting its refusal. */
export function checkNodeAccepts(
  flags: readonly string[],
  param = 'v8Flags',
  node: string = process.execPath,
): void {
  if (flags.length === 0) return;
  const run = spawnSync(node, [...flags, '-e', '0'], { encoding: 'utf8', timeout: 30_000 });
  if (run.status === 0) return;
  const refusal =
    (run.stderr ?? '')
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line !== '') ??
    (run.error?.message || `exit status ${String(run.status)}`);
  throw new Error(
    `${param} '${flags.join(' ')}': node ${node === process.execPath ? process.version : node} refuses to start with it (${refusal}). A function started so would fail at every cold start: correct the flags, or leave ${param} empty.`,
  );
}

/** The plugin osls loads from `plugins:`; it only contributes a variable source. */
export default class V8FlagsPlugin {
  readonly configurationVariablesSources = {
    checkedV8Flags: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => {
        const name = stageParamName('checkedV8Flags', context, 'v8Flags');
        const flags = parseV8Flags(await context.resolveVariable(`param:${name}`), name);
        checkNodeAccepts(flags, name);
        return { value: flags.join(' ') };
      }),
    },
  };
}
