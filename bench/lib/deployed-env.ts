/**
 * The variables of serverless.yml's `provider.environment` that change how the Node.js runtime itself
 * behaves (NODE_OPTIONS, GLIBC_TUNABLES, and AWS_LAMBDA_EXEC_WRAPPER with the V8_FLAGS it adds): the
 * benchmark gives them to every process that runs one of the project's bundles, and starts such a process
 * through the wrapper as Lambda does (see processes.ts), so that cold start, latency and memory are measured
 * as the deployed functions run.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseServerlessYml, SERVERLESS_YML } from '../../local/dynamodb.ts';
import { parseV8Flags } from '../../serverless/v8-flags.ts';
import { isRecord } from '../probe/common.ts';
import { ROOT } from './machine.ts';

const RUNTIME_VARIABLES = ['NODE_OPTIONS', 'GLIBC_TUNABLES', 'AWS_LAMBDA_EXEC_WRAPPER', 'V8_FLAGS'] as const;

/** Where a deployed function's package is unpacked: the wrapper's path there maps to the repository's. */
const LAMBDA_TASK_ROOT = '/var/task/';

/**
 * `provider.environment`'s runtime variables, `${param:name}` and `${checkedV8Flags:name}` resolved from
 * `params.default`; AWS_LAMBDA_EXEC_WRAPPER as the path of that file in `root` (built into dist/ by
 * `npm run build`).
 */
export function deployedRuntimeEnv(serverlessYml: string, root: string = ROOT): Record<string, string> {
  const doc = parseServerlessYml(serverlessYml);
  const provider = isRecord(doc) && isRecord(doc.provider) ? doc.provider : {};
  const environment = isRecord(provider.environment) ? provider.environment : {};
  const defaults =
    isRecord(doc) && isRecord(doc.params) && isRecord(doc.params.default) ? doc.params.default : {};
  const env: Record<string, string> = {};
  for (const name of RUNTIME_VARIABLES) {
    const raw = environment[name];
    if (raw === undefined) continue;
    if (typeof raw !== 'string')
      throw new Error(`serverless.yml: provider.environment.${name} is not a string`);
    const value = raw.replace(
      /\$\{(param|checkedV8Flags):([A-Za-z0-9]+)\}/g,
      (_match, source: string, param: string) => {
        const resolved = defaults[param];
        if (typeof resolved !== 'string')
          throw new Error(
            `serverless.yml: provider.environment.${name} names params.default.${param}, which is not a string`,
          );
        return source === 'checkedV8Flags' ? parseV8Flags(resolved, param).join(' ') : resolved;
      },
    );
    if (value.includes('${'))
      throw new Error(
        `serverless.yml: provider.environment.${name} holds a variable the benchmark cannot resolve: ${raw}`,
      );
    if (value === '') continue;
    if (name === 'AWS_LAMBDA_EXEC_WRAPPER') {
      if (!value.startsWith(LAMBDA_TASK_ROOT))
        throw new Error(
          `serverless.yml: AWS_LAMBDA_EXEC_WRAPPER ${value} is outside the function's package (${LAMBDA_TASK_ROOT}): the benchmark cannot run it`,
        );
      env[name] = path.join(root, value.slice(LAMBDA_TASK_ROOT.length));
    } else env[name] = value;
  }
  return env;
}

/**
 * {@link deployedRuntimeEnv} of the repository's serverless.yml; `root` holds the package as Lambda unpacks
 * it (`<root>/dist/exec-wrapper.sh`): the benchmark passes its own run folder, whose dist/ it measures.
 */
export async function readDeployedRuntimeEnv(
  file: string = SERVERLESS_YML,
  root: string = ROOT,
): Promise<Record<string, string>> {
  return deployedRuntimeEnv(await readFile(file, 'utf8'), root);
}
