/**
 * Bundles every `handlers/*.ts` into `dist/<name>/index.mjs` (one self-contained ESM file per Lambda function,
 * AWS SDK included) with an external source map and an esbuild metafile, then prints the bundle sizes; and
 * puts the runtime's start script (runtime/exec-wrapper.sh) at `dist/exec-wrapper.sh`, executable.
 * Type checking is left to `tsc --noEmit`; this only transpiles and bundles.
 */
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build, type Plugin } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const handlersDir = path.join(root, 'handlers');
const distDir = path.join(root, 'dist');

/** ESM has no `require`; bundled CommonJS dependencies (parts of the AWS SDK, middy) still call it. */
export const REQUIRE_BANNER = [
  "import { createRequire as __createRequire } from 'node:module';",
  'const require = __createRequire(import.meta.url);',
].join('\n');

/**
 * Node's built-in modules loaded as CommonJS (`require`) instead of through ESM `import`. An ESM import
 * of a built-in builds its module namespace, which reads every export: for `node:http` that includes
 * the lazily loaded `WebSocket`, `MessageEvent` and `CloseEvent`, so importing `node:http` from ESM
 * loads and compiles undici (measured on Node 24: about a quarter of the allocation bundle's import
 * time), which none of the functions uses. `require` hands over the module object, and the bundle
 * reads only the properties it uses, when it uses them. Lambda's own runtime client loads `node:http`
 * with `require` too.
 */
const BUILTINS_THROUGH_REQUIRE: Plugin = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z][a-z0-9_/]*$/ }, (args) => {
      // A require() call is already what we want (the module below makes one). isBuiltin knows that
      // `test` or `sqlite` without the prefix are npm packages, not node:test or node:sqlite.
      if (args.kind === 'require-call' || !isBuiltin(args.path)) return undefined;
      return {
        path: args.path.startsWith('node:') ? args.path : `node:${args.path}`,
        namespace: 'node-builtin',
      };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/** One row of the size table. */
export interface BundleSize {
  name: string;
  rawBytes: number;
  gzipBytes: number;
}

/** The function names: one per `handlers/<name>.ts` (tests and declaration files excluded). */
export async function listHandlers(dir: string = handlersDir): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return [];
    throw error;
  });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !/\.(test|spec|d)\.ts$/.test(e.name))
    .map((e) => e.name.slice(0, -'.ts'.length))
    .sort();
}

/**
 * The esbuild settings of a function bundle: one minified ESM file, SDK inside, linked source map, a
 * metafile, and Node's built-ins loaded with `require` ({@link BUILTINS_THROUGH_REQUIRE}). The benchmark builds its peer with exactly these.
 */
export const FUNCTION_BUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  mainFields: ['module', 'main'],
  minify: true,
  // A separate .map file beside the bundle: lib/source-map.ts reads it when a stack is logged (and
  // --enable-source-maps, which the local stack uses, follows the sourceMappingURL comment).
  sourcemap: 'linked',
  // Stack traces need the mappings, not the sources: without them the map is 370 KB instead of 1 MB,
  // less to ship and to parse when the first stack is mapped.
  sourcesContent: false,
  legalComments: 'none',
  banner: { js: REQUIRE_BANNER },
  plugins: [BUILTINS_THROUGH_REQUIRE],
  metafile: true,
  logLevel: 'warning',
} as const satisfies BuildOptions;

/**
 * What the project's bundles leave out on purpose: the SDK's default credential chain, replaced by the
 * environment provider that Lambda needs (lib/aws/lambda-credentials.ts).
 */
const LAMBDA_ALIASES = {
  '@aws-sdk/credential-provider-node': path.join(root, 'lib', 'aws', 'lambda-credentials.ts'),
} as const;

/** Bundles one handler into `<outDir>/<name>/index.mjs` and returns its sizes. */
export async function buildHandler(name: string, outDir: string = distDir): Promise<BundleSize> {
  const functionDir = path.join(outDir, name);
  const outfile = path.join(functionDir, 'index.mjs');
  const result = await build({
    ...FUNCTION_BUILD_OPTIONS,
    entryPoints: [path.join(handlersDir, `${name}.ts`)],
    outfile,
    alias: LAMBDA_ALIASES,
  });
  await writeFile(path.join(functionDir, 'meta.json'), JSON.stringify(result.metafile));
  const code = await readFile(outfile);
  return { name, rawBytes: code.byteLength, gzipBytes: gzipSync(code).byteLength };
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/** A plain-text table of bundle sizes, one row per function. */
function formatSizes(sizes: readonly BundleSize[]): string {
  const rows = [
    ['function', 'bundle', 'gzip'],
    ...sizes.map((s) => [s.name, kib(s.rawBytes), kib(s.gzipBytes)]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/** The script every function starts through (serverless.yml's AWS_LAMBDA_EXEC_WRAPPER). */
export const EXEC_WRAPPER = path.join(root, 'runtime', 'exec-wrapper.sh');

/**
 * {@link EXEC_WRAPPER} copied to `<outDir>/exec-wrapper.sh` with LF line ends and made executable there:
 * packaging keeps the mode it finds, and a checkout may have lost it or the line ends (Windows,
 * `core.fileMode=false`, `core.autocrlf`); a function whose wrapper cannot be executed does not start.
 */
export async function copyExecWrapper(
  outDir: string = distDir,
  source: string = EXEC_WRAPPER,
): Promise<string> {
  const target = path.join(outDir, 'exec-wrapper.sh');
  await mkdir(outDir, { recursive: true });
  // Line ends as Linux reads them, whatever the checkout did to them: a shebang line ending in CR names
  // no interpreter, and the function would not start.
  await writeFile(target, (await readFile(source, 'utf8')).replace(/\r\n/g, '\n'));
  await chmod(target, 0o755);
  return target;
}

/** `npm run build`: every handler into a clean dist/, sizes printed through `log`. */
export async function buildAll(log: (line: string) => void = console.log): Promise<void> {
  const names = await listHandlers();
  if (names.length === 0) {
    log('build: no handlers/*.ts to bundle');
    return;
  }
  const started = performance.now();
  // A clean dist/ so a removed handler leaves no stale bundle behind.
  await rm(distDir, { recursive: true, force: true });
  const sizes = await Promise.all(names.map((name) => buildHandler(name)));
  await copyExecWrapper();
  log(formatSizes(sizes));
  log(`build: ${sizes.length} bundle(s) in dist/ in ${Math.round(performance.now() - started)} ms`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildAll();
}
