/**
 * Builds what the benchmark runs besides the project's own bundles: the peer (with the same esbuild
 * settings as scripts/build.ts) and the probes (plain .mjs, so no type stripping is timed).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import {
  buildHandler,
  copyExecWrapper,
  FUNCTION_BUILD_OPTIONS,
  listHandlers,
  REQUIRE_BANNER,
} from '../../scripts/build.ts';
import { ROOT } from './machine.ts';

const PEER_ENTRY = path.join(ROOT, 'bench', 'peer', 'allocation.ts');
const PROBE_NAMES = ['cold', 'warm', 'snapshot', 'fanout-floor', 'history', 'simulator'] as const;
type ProbeName = (typeof PROBE_NAMES)[number];

/** Builds the peer into `<outDir>/peer-allocation/index.mjs` (with meta.json, like dist/). */
export async function buildPeer(outDir: string): Promise<string> {
  const dir = path.join(outDir, 'peer-allocation');
  const outfile = path.join(dir, 'index.mjs');
  const result = await build({ ...FUNCTION_BUILD_OPTIONS, entryPoints: [PEER_ENTRY], outfile });
  await writeFile(path.join(dir, 'meta.json'), JSON.stringify(result.metafile));
  return outfile;
}

/** The built probes' files. */
export interface ProbeFiles {
  cold: string;
  warm: string;
  snapshot: string;
  fanoutFloor: string;
  history: string;
  simulator: string;
}

/** Builds each probe into `<outDir>/probes/<name>.mjs`. */
export async function buildProbes(outDir: string): Promise<ProbeFiles> {
  await build({
    entryPoints: PROBE_NAMES.map((name) => ({
      in: path.join(ROOT, 'bench', 'probe', `${name}.ts`),
      out: name,
    })),
    outdir: path.join(outDir, 'probes'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    banner: { js: REQUIRE_BANNER },
    logLevel: 'warning',
  });
  const file = (name: ProbeName) => path.join(outDir, 'probes', `${name}.mjs`);
  return {
    cold: file('cold'),
    warm: file('warm'),
    snapshot: file('snapshot'),
    fanoutFloor: file('fanout-floor'),
    history: file('history'),
    simulator: file('simulator'),
  };
}

/**
 * Builds every handler with scripts/build.ts's own buildHandler into `<outDir>/<name>/index.mjs`, and the
 * exec wrapper into `<outDir>/exec-wrapper.sh`, as `npm run build` lays out dist/.
 */
export async function buildProject(outDir: string): Promise<string[]> {
  const names = await listHandlers();
  await Promise.all(names.map((name) => buildHandler(name, outDir)));
  await copyExecWrapper(outDir);
  return names;
}
