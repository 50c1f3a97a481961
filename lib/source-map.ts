/**
 * Stack traces in the sources' terms without `--enable-source-maps`. With that flag Node reads and
 * parses every bundle's source map at import, ~8 ms of each cold start (measured: README,
 * "Performance"), although a stack is only ever logged for an unexpected error. Here the map beside the
 * bundle (`index.mjs.map`, which `npm run build` writes and the package ships) is read the first time
 * such an error is logged, and the bundle's frames become `lib/….ts:line:column`.
 */
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Bundle (file URL or path) → its parsed map, or null when it has none (running from source, or no map shipped). */
const maps = new Map<string, SourceMap | null>();

/** `file:///…:line:column` or `/…:line:column` in a V8 stack frame. */
const FRAME = /(file:\/\/[^\s()]+|\/[^\s():]+):(\d+):(\d+)/g;

function isPayload(value: unknown): value is SourceMapPayload {
  if (typeof value !== 'object' || value === null) return false;
  const { version, sources, mappings } = value as Record<string, unknown>;
  return version === 3 && Array.isArray(sources) && typeof mappings === 'string';
}

function pathOf(bundle: string): string {
  return bundle.startsWith('file:') ? fileURLToPath(bundle) : bundle;
}

/** The source map beside a bundle (`<bundle>.map`), by the bundle's file URL or path: read once, null if none. */
export function bundleSourceMap(bundle: string): SourceMap | null {
  const known = maps.get(bundle);
  if (known !== undefined) return known;
  let found: SourceMap | null = null;
  try {
    const payload: unknown = JSON.parse(readFileSync(`${pathOf(bundle)}.map`, 'utf8'));
    if (isPayload(payload)) found = new SourceMap(payload);
  } catch {
    // No map, or not one Node can read: stacks stay as V8 wrote them.
  }
  maps.set(bundle, found);
  return found;
}

/** A source as the map names it (`../../lib/x.ts`, relative to dist/<function>/) as a repository path. */
function repositoryPath(source: string): string {
  const path = source.startsWith('file://') ? fileURLToPath(source) : source;
  return path.replace(/^(?:\.\.\/)+/, '');
}

/**
 * `stack` with each frame in the bundle at `bundleUrl` (by default the bundle this module was built
 * into) rewritten to its place in the sources. Unchanged when Node maps stacks itself
 * (`--enable-source-maps`), when there is no map, or for frames outside the bundle.
 */
export function originalStack(stack: string, bundleUrl: string = import.meta.url): string {
  if (process.sourceMapsEnabled) return stack;
  const map = bundleSourceMap(bundleUrl);
  if (map === null) return stack;
  const bundlePath = pathOf(bundleUrl);
  return stack.replace(FRAME, (frame: string, file: string, line: string, column: string) => {
    if (file !== bundleUrl && file !== bundlePath) return frame;
    const origin = map.findOrigin(Number(line), Number(column));
    if (!('fileName' in origin)) return frame;
    return `${repositoryPath(origin.fileName)}:${origin.lineNumber}:${origin.columnNumber}`;
  });
}
