/**
 * A local osls plugin: packaging (and so deploying) refuses to start when a function's prebuilt bundle is
 * missing from dist/, naming the command that builds it. Without it, `npx serverless package` or `deploy`
 * run before `npm run build` stops with osls's own "No file matches include / exclude patterns", which
 * names neither the function nor what to do.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { asUserError } from './plugin-support.ts';

interface ServerlessLike {
  service: { functions?: Record<string, { handler?: unknown } | undefined> };
  serviceDir?: string;
}

/** The bundle a handler such as `dist/allocation/index.handler` runs: `dist/allocation/index.mjs`. */
function bundleOf(handler: string): string {
  return `${handler.slice(0, handler.lastIndexOf('.'))}.mjs`;
}

/** The functions whose bundle `exists` does not find, each with the file it looked for. */
export function missingBundles(
  functions: Record<string, { handler?: unknown } | undefined>,
  exists: (file: string) => boolean,
): { name: string; file: string }[] {
  return Object.entries(functions).flatMap(([name, fn]) => {
    const handler = fn?.handler;
    if (typeof handler !== 'string' || !handler.includes('.')) return [];
    const file = bundleOf(handler);
    return exists(file) ? [] : [{ name, file }];
  });
}

/** The plugin osls loads from `plugins:`. */
export default class BundlesPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike) {
    this.hooks = {
      'before:package:initialize': () => {
        const dir = serverless.serviceDir ?? process.cwd();
        const missing = missingBundles(serverless.service.functions ?? {}, (file) =>
          existsSync(path.join(dir, file)),
        );
        if (missing.length === 0) return;
        throw asUserError(
          new Error(
            `The functions' bundles are not built (${missing.map((m) => `${m.file} of ${m.name}`).join(', ')}): ` +
              'run `npm run build` first, or `npm run package` (the build, then serverless package).',
          ),
        );
      },
    };
  }
}
