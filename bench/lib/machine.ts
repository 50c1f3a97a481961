import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lambdaBootstrapArgs } from '../../serverless/v8-flags.ts';

/** The repository root (bench/lib/../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What the numbers were measured on. */
export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  platform: string;
  arch: string;
}

/**
 * The Node binary the probes run on: the project's pinned Node 24 (node_modules/node), else the one
 * running the benchmark.
 */
export function nodeBinary(): string {
  const chosen = process.env.BENCH_NODE?.trim();
  if (chosen !== undefined && chosen !== '') return chosen;
  const pinned = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');
  return existsSync(pinned) ? pinned : process.execPath;
}

/** `os.cpus()[0].model`, core count, memory and the probes' Node version. */
export function describeMachine(nodeVersion: string): MachineDescription {
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    node: nodeVersion,
    platform: `${os.type()} ${os.release()}`,
    arch: os.arch(),
  };
}

/**
 * The flags AWS Lambda's Node.js bootstrap passes for a function of `memoryMb`, so heap sizing matches
 * Lambda rather than this machine's memory.
 */
export function lambdaNodeArgs(memoryMb: number): string[] {
  return [
    ...lambdaBootstrapArgs(memoryMb),
    // For "what if" runs (e.g. BENCH_EXTRA_NODE_ARGS=--max-semi-space-size=1): later flags win.
    ...(process.env.BENCH_EXTRA_NODE_ARGS ?? '').split(' ').filter((flag) => flag !== ''),
  ];
}
