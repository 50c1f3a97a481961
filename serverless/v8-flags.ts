/**
 * A local osls plugin: `${checkedV8Flags:<param>}`, the flags that runtime/exec-wrapper.sh adds to node's
 * command line (the `V8_FLAGS` variable), checked at package time. A flag that stops node, or turns it
 * into something else than the runtime (`--version`, `--eval=…`, `--check`), would fail every cold start,
 * so the package is refused instead: the flags must be `--name` or `--name=value` words, none that changes
 * what node does with its script or that Lambda's runtime sets after them anyway, and node must run a
 * script with them placed as the wrapper places them, before the runtime's own flags (checked with the node
 * running osls: the pinned Node 24 under `npx serverless`, the runtime's own major version).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stageParamName, userErrorsOf, type VariableSourceContext } from './plugin-support.ts';

const FLAG = /^--[a-z][a-z0-9_-]*(=[A-Za-z0-9._,:+-]+)?$/;

/** Options that make node do something else than run its script (and `--test-…`, `--watch-…`): a function would never start. */
const MODE_SWITCHES = [
  'check',
  'completion-bash',
  'eval',
  'help',
  'input-type',
  'interactive',
  'print',
  'prof-process',
  'run',
  'test',
  'v8-options',
  'version',
  'watch',
];

/** Set by Lambda's runtime from the function's memory, after the wrapper's flags: theirs would be ignored. */
const RUNTIME_OWNED = ['max-old-space-size', 'max-semi-space-size'];

/**
 * The flags AWS Lambda's Node.js bootstrap gives node for a function of `memoryMb`, before its entry script
 * (new space a tenth of the memory, half of it per semi-space; old space the rest; GC exposed). The wrapper
 * puts V8_FLAGS before them; the benchmark runs its processes with them.
 */
export function lambdaBootstrapArgs(memoryMb: number): string[] {
  const newSpace = Math.floor(memoryMb / 10);
  return [
    '--expose-gc',
    '--max-http-header-size',
    '81920',
    `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
    `--max-old-space-size=${memoryMb - newSpace}`,
  ];
}

/** The flag's name: `--max-opt=2` → `max-opt`; `--no-x` → `x`. */
function flagName(flag: string): string {
  return flag.slice(2).split('=')[0]?.replace(/^no-/, '') ?? '';
}

/** The flags of a parameter value, one per word; throws what is wrong and how to write it instead. */
export function parseV8Flags(value: unknown, param = 'v8Flags'): string[] {
  const text = String(value ?? '').trim();
  if (text === '') return [];
  const flags = text.split(/\s+/);
  const quoted = (list: string[]) => list.map((flag) => `'${flag}'`).join(', ');
  const bad = flags.filter((flag) => !FLAG.test(flag));
  if (bad.length > 0) {
    throw new Error(
      `${param} holds ${quoted(bad)}: give node command-line flags separated by spaces, each --name or --name=value (e.g. --no-concurrent-recompilation --max-opt=2), or leave it empty for none.`,
    );
  }
  const switches = flags.filter((flag) => {
    const name = flagName(flag);
    return MODE_SWITCHES.includes(name) || /^(test|watch)-/.test(name);
  });
  if (switches.length > 0) {
    throw new Error(
      `${param} holds ${quoted(switches)}: node would not run the Lambda runtime with it, and every cold start would fail. Give flags that tune node or V8 only.`,
    );
  }
  const owned = flags.filter((flag) => RUNTIME_OWNED.includes(flagName(flag)));
  if (owned.length > 0) {
    throw new Error(
      `${param} holds ${quoted(owned)}: Lambda's runtime sets it from the function's memory, after these flags, so it would be ignored. Change memorySize instead.`,
    );
  }
  return flags;
}

/**
 * Throws when `node` (this process's binary by default), given `flags` where the wrapper puts them and
 * then the runtime's own flags, does not run a script to its end; the error quotes node's refusal.
 */
export function checkNodeAccepts(
  flags: readonly string[],
  param = 'v8Flags',
  node: string = process.execPath,
): void {
  if (flags.length === 0) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'v8-flags-'));
  const token = randomUUID();
  try {
    const script = path.join(dir, 'index.mjs');
    writeFileSync(script, `process.stdout.write(${JSON.stringify(token)});\n`);
    // The smallest function's heap: flags that fit it fit any.
    const run = spawnSync(node, [...flags, ...lambdaBootstrapArgs(128), script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (run.status === 0 && run.stdout === token) return;
    const refusal =
      (run.stderr ?? '')
        .split('\n')
        .map((line) => line.trim())
        .find((line) => line !== '') ??
      (run.error?.message ||
        (run.status === 0 ? 'it did not run its script' : `exit status ${String(run.status ?? run.signal)}`));
    throw new Error(
      `${param} '${flags.join(' ')}': node ${node === process.execPath ? process.version : node} does not run the runtime with it (${refusal}). A function started so would fail at every cold start: correct the flags, or leave ${param} empty.`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
