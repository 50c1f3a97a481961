/**
 * The variables of serverless.yml's `provider.environment` that change how the Node.js runtime itself
 * behaves (NODE_OPTIONS, GLIBC_TUNABLES): the benchmark gives them to every process that runs one of the
 * project's bundles, so that cold start, latency and memory are measured as the deployed functions run.
 */
import { readFile } from 'node:fs/promises';
import { parseServerlessYml, SERVERLESS_YML } from '../../local/dynamodb.ts';
import { isRecord } from '../probe/common.ts';

export const RUNTIME_VARIABLES = ['NODE_OPTIONS', 'GLIBC_TUNABLES'] as const;

/** `provider.environment`'s runtime variables, `${param:name}` resolved from `params.default`. */
export function deployedRuntimeEnv(serverlessYml: string): Record<string, string> {
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
    const value = raw.replace(/\$\{param:([A-Za-z0-9]+)\}/g, (_match, param: string) => {
      const resolved = defaults[param];
      if (typeof resolved !== 'string')
        throw new Error(
          `serverless.yml: provider.environment.${name} names params.default.${param}, which is not a string`,
        );
      return resolved;
    });
    if (value.includes('${'))
      throw new Error(
        `serverless.yml: provider.environment.${name} holds a variable the benchmark cannot resolve: ${raw}`,
      );
    if (value !== '') env[name] = value;
  }
  return env;
}

/** {@link deployedRuntimeEnv} of the repository's serverless.yml. */
export async function readDeployedRuntimeEnv(file: string = SERVERLESS_YML): Promise<Record<string, string>> {
  return deployedRuntimeEnv(await readFile(file, 'utf8'));
}
