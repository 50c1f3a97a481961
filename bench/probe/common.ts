/**
 * What every probe shares. A probe is a small program run in a fresh `node` process by bench/run.ts
 * (bundled to plain .mjs first, so no type stripping is timed); it reports over the IPC channel.
 */
import { pathToFileURL } from 'node:url';

/** A Lambda handler as the probes call it. */
export type LambdaHandler = (event: unknown, context: unknown) => Promise<unknown>;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `handler` export of a built bundle. */
export async function importHandler(file: string): Promise<LambdaHandler> {
  const mod: unknown = await import(pathToFileURL(file).href);
  const handler = isRecord(mod) ? mod.handler : undefined;
  if (typeof handler !== 'function') throw new Error(`${file} exports no handler function`);
  return async (event, context) => handler(event, context);
}

/** The status code of an API Gateway v2 structured answer; 0 when there is none. */
export function statusOf(response: unknown): number {
  return isRecord(response) && typeof response.statusCode === 'number' ? response.statusCode : 0;
}

/** Positional argument `index` (after the script), required. */
export function arg(index: number): string {
  const value = process.argv[2 + index];
  if (value === undefined) throw new Error(`probe: argument ${index} is missing`);
  return value;
}

/** Positional argument `index` as a non-negative integer. */
export function intArg(index: number): number {
  const text = arg(index);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new Error(`probe: argument ${index} '${text}' is not a count`);
  return value;
}

/** Sends one message to the parent and resolves once it is written. */
export function send(message: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(new Error('probe: no IPC channel (run it through bench/run.ts)'));
      return;
    }
    process.send(message, undefined, undefined, (error) => (error ? reject(error) : resolve()));
  });
}

/** Reports the result and exits at once: open keep-alive sockets must not keep a probe alive. */
export async function finish(result: Record<string, unknown>): Promise<never> {
  // The flags node runs with: proof that a project process started as deployed (exec wrapper, V8_FLAGS);
  // and the process's peak resident memory, what a function's memorySize must hold.
  await send({
    type: 'result',
    execArgv: process.execArgv,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    ...result,
  });
  process.exit(0);
}

/** Runs a probe's main; any failure is printed to stderr (the parent shows it) and exits 1. */
export function runProbe(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}

/**
 * A GET on node:http with a keep-alive agent of its own, as the project's transport makes it, without
 * the project: resolves with the status and the body as text. node:http is loaded here, not on import
 * of this module, so that the cold-start probe does not load it ahead of the bundle it measures.
 */
export async function keepAliveGetter(): Promise<
  (url: URL, headers: Record<string, string>) => Promise<{ status: number; body: string }>
> {
  const { Agent, request } = await import('node:http');
  const agent = new Agent({ keepAlive: true });
  return (url, headers) =>
    new Promise((resolve, reject) => {
      const req = request(url, { headers, agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
}
