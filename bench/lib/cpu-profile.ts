/**
 * Sums up a V8 `.cpuprofile` (from `node --cpu-prof`, or `npm run bench -- --profile DIR`): self time by
 * package or project folder, and the top functions. `node bench/lib/cpu-profile.ts FILE [TOP]`. Frames
 * in a minified bundle are mapped back to their sources through the bundle's `.map` file beside it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSourceMap } from '../../lib/source-map.ts';
import { isRecord } from '../probe/common.ts';

interface ProfileNode {
  id: number;
  functionName: string;
  url: string;
  line: number;
  children: number[];
}

/** The frame's original source and name, through the bundle's source map when there is one. */
function originalFrame(url: string, functionName: string, line: number, column: number) {
  const map = url === '' ? undefined : (bundleSourceMap(url) ?? undefined);
  const entry = map?.findEntry(line, column);
  if (entry === undefined || !('originalSource' in entry)) return { url, functionName, line: line + 1 };
  // `name` is in Node's mapping objects but not in @types/node's.
  const name: unknown = Reflect.get(entry, 'name');
  return {
    url: entry.originalSource,
    functionName: typeof name === 'string' ? name : functionName,
    line: entry.originalLine + 1,
  };
}

interface ProfileSummary {
  totalMs: number;
  byOwner: [string, number][];
  byFunction: [string, number][];
  /** Time with the function on the stack (its callees included; recursion counted once). */
  inclusive: [string, number][];
}

/** Who a script belongs to: a package name, a bundle's source (by its path), node internals, or V8. */
function ownerOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const parts = url.replace(/^file:\/\//, '').split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at !== -1) return parts.slice(at + 1, parts[at + 1]?.startsWith('@') ? at + 3 : at + 2).join('/');
  return parts.slice(-2).join('/');
}

/** Self time per owner and per function, largest first. */
function summarizeProfile(profile: unknown, top = 25): ProfileSummary {
  if (!isRecord(profile) || !Array.isArray(profile.nodes) || !Array.isArray(profile.samples)) {
    throw new Error('not a V8 CPU profile');
  }
  const nodes = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    if (!isRecord(node) || typeof node.id !== 'number' || !isRecord(node.callFrame)) continue;
    const frame = node.callFrame;
    const original = originalFrame(
      typeof frame.url === 'string' ? frame.url : '',
      typeof frame.functionName === 'string' ? frame.functionName || '(anonymous)' : '?',
      typeof frame.lineNumber === 'number' ? frame.lineNumber : 0,
      typeof frame.columnNumber === 'number' ? frame.columnNumber : 0,
    );
    const children = Array.isArray(node.children) ? node.children.filter((c) => typeof c === 'number') : [];
    nodes.set(node.id, { id: node.id, ...original, children });
  }
  const deltas = Array.isArray(profile.timeDeltas) ? profile.timeDeltas : [];
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id: unknown, i: number) => {
    const node = typeof id === 'number' ? nodes.get(id) : undefined;
    const delta = deltas[i + 1];
    const ms = typeof delta === 'number' ? delta / 1000 : 0;
    if (node === undefined) return;
    total += ms;
    const owner = ownerOf(node.url, node.functionName);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + ms);
    const fn = `${node.functionName} ${path.basename(node.url)}:${node.line}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  });
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id: unknown, i: number) => {
    const delta = deltas[i + 1];
    if (typeof id === 'number' && typeof delta === 'number')
      selfMs.set(id, (selfMs.get(id) ?? 0) + delta / 1000);
  });
  const inclusive = new Map<string, number>();
  const nameOf = (node: ProfileNode) => `${node.functionName} ${path.basename(node.url)}:${node.line}`;
  // Depth-first from the roots, with the names already on the stack, so recursion is counted once.
  const childIds = new Set([...nodes.values()].flatMap((n) => n.children));
  const walk = (node: ProfileNode, onStack: Set<string>): number => {
    let ms = selfMs.get(node.id) ?? 0;
    const name = nameOf(node);
    const fresh = !onStack.has(name);
    if (fresh) onStack.add(name);
    for (const child of node.children) {
      const next = nodes.get(child);
      if (next !== undefined) ms += walk(next, onStack);
    }
    if (fresh) {
      onStack.delete(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
    }
    return ms;
  };
  for (const node of nodes.values()) if (!childIds.has(node.id)) walk(node, new Set());
  const sorted = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    totalMs: total,
    byOwner: sorted(byOwner),
    byFunction: sorted(byFunction),
    inclusive: sorted(inclusive),
  };
}

async function main(): Promise<void> {
  const [file, topText] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: node bench/lib/cpu-profile.ts FILE [TOP]');
  const summary = summarizeProfile(JSON.parse(await readFile(file, 'utf8')), Number(topText ?? 25));
  const show = (rows: [string, number][]) =>
    rows.map(
      ([name, ms]) =>
        `${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)}%  ${name}`,
    );
  console.log(
    [
      `total ${summary.totalMs.toFixed(1)} ms`,
      '',
      'self time by owner',
      ...show(summary.byOwner),
      '',
      'self time by function',
      ...show(summary.byFunction),
      '',
      'inclusive time by function',
      ...show(summary.inclusive),
    ].join('\n'),
  );
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  await main();
