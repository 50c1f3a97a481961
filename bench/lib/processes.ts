/** Fresh `node` processes for the probes, and the KooDrive simulator in a process of its own. */
import { type ChildProcess, spawn } from 'node:child_process';
import { isRecord } from '../probe/common.ts';
import { nodeBinary } from './machine.ts';

/** One probe process: its wall time from spawn to exit, and the result it reported. */
export interface ProbeOutcome {
  wallMs: number;
  result: Record<string, unknown>;
  /** Bytes the probe wrote to stdout (the measured code's logs), when `countStdout` was set. */
  stdoutBytes: number;
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Node options placed before the script (e.g. `--expose-gc`). */
  nodeArgs?: string[];
  /** Answer to a probe's question (a message that is not its result); the answer is sent back. */
  onMessage?: (
    message: Record<string, unknown>,
  ) => Promise<Record<string, unknown>> | Record<string, unknown>;
  timeoutMs?: number;
  /** Count the bytes of stdout (logs) instead of discarding them. */
  countStdout?: boolean;
  /** Each whole line of stdout (with `countStdout`), e.g. to read the EMF documents among the logs. */
  onStdoutLine?: (line: string) => void;
}

/**
 * Runs `node [nodeArgs] <script> [args]` with only the given environment; resolves with the wall time
 * from spawn to exit and the probe's `result` message. A probe that fails, exits without a result or
 * runs past the timeout rejects with its stderr. With AWS_LAMBDA_EXEC_WRAPPER in the environment, node
 * starts through that script as Lambda's runtime starts it: `<wrapper> node [nodeArgs] <script> [args]`.
 */
export function runNode(
  script: string | undefined,
  args: readonly string[],
  options: SpawnOptions,
): Promise<ProbeOutcome> {
  return new Promise((resolve, reject) => {
    const argv = [...(options.nodeArgs ?? []), ...(script === undefined ? [] : [script]), ...args];
    // Logs of the measured code go nowhere, as fast as possible; results come over IPC.
    const started = process.hrtime.bigint();
    const wrapper = options.env.AWS_LAMBDA_EXEC_WRAPPER;
    const child = spawn(wrapper ?? nodeBinary(), wrapper === undefined ? argv : [nodeBinary(), ...argv], {
      env: options.env,
      stdio: ['ignore', options.countStdout === true ? 'pipe' : 'ignore', 'pipe', 'ipc'],
    });
    let result: Record<string, unknown> | undefined;
    let stderr = '';
    let stdoutBytes = 0;
    let partial = '';
    const onLine = options.onStdoutLine;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.byteLength;
      if (onLine === undefined) return;
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 20_000) stderr += chunk;
    });
    child.on('message', (message: unknown) => {
      if (!isRecord(message)) return;
      if (message.type === 'result') {
        result = message;
        return;
      }
      const answer = options.onMessage?.(message) ?? {};
      void Promise.resolve(answer).then((reply) => child.connected && child.send(reply));
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${argv.join(' ')} ran longer than ${options.timeoutMs} ms\n${stderr}`));
    }, options.timeoutMs ?? 600_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`node ${argv.slice(-3).join(' ')} exited with ${code ?? signal}\n${stderr.trim()}`));
        return;
      }
      if (onLine !== undefined && partial !== '') onLine(partial);
      resolve({ wallMs, result: result ?? {}, stdoutBytes });
    });
  });
}

/** The simulator process's handle. */
export interface SimulatorProcess {
  readonly url: string;
  call(op: string, payload?: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Starts local/koodrive-simulator.ts in its own process (the built `simulator` probe). */
export async function startSimulatorProcess(
  script: string,
  options: { apps: unknown[]; latencyMs: number; env: Record<string, string> },
): Promise<SimulatorProcess> {
  const child: ChildProcess = spawn(nodeBinary(), [script], {
    env: options.env,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 20_000) stderr += chunk;
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  // One request at a time: each op is answered by a message with the same op.
  let queue: Promise<unknown> = Promise.resolve();
  const call = (op: string, payload: Record<string, unknown> = {}) => {
    const next = queue.then(
      () =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          if (exited) {
            reject(new Error(`the simulator process has exited\n${stderr}`));
            return;
          }
          const onMessage = (message: unknown) => {
            if (!isRecord(message) || message.op !== op) return;
            child.off('message', onMessage);
            resolve(message);
          };
          child.on('message', onMessage);
          child.send({ op, ...payload });
        }),
    );
    queue = next.catch(() => undefined);
    return next;
  };
  const started = await call('start', { apps: options.apps, latencyMs: options.latencyMs });
  if (typeof started.url !== 'string') throw new Error(`the simulator process did not start\n${stderr}`);
  const url = started.url;
  return {
    url,
    call,
    async close() {
      if (exited) return;
      await Promise.race([call('close'), exit]);
      if (!exited) child.kill();
      await exit;
    },
  };
}
