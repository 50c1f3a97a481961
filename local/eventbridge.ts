/**
 * A local EventBridge endpoint for tests and the local stack: it accepts PutEvents from the real
 * `@aws-sdk/client-eventbridge` client (via `endpoint` or AWS_ENDPOINT_URL_EVENTBRIDGE) and keeps the
 * events, so what the product publishes can be asserted on or printed.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from './listen.ts';

interface ReceivedEvent {
  id: string;
  busName: string;
  source: string;
  detailType: string;
  detail: unknown;
  time: string | undefined;
}

export interface LocalEventBridge {
  readonly url: string;
  readonly events: ReceivedEvent[];
  /** PutEvents calls fail whole (HTTP 500) this many times, after `after` more calls succeed. */
  failNext(times?: number, after?: number): void;
  /** Entries of the next PutEvents calls are refused one by one (FailedEntryCount), this many calls. */
  refuseEntriesNext(times?: number): void;
  onEvent(listener: (event: ReceivedEvent) => void): void;
  reset(): void;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string) {
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    ...(errorType === undefined ? {} : { 'x-amzn-errortype': errorType }),
  });
  res.end(JSON.stringify(body));
}

export async function startLocalEventBridge(
  options: { port?: number; host?: string } = {},
): Promise<LocalEventBridge> {
  const events: ReceivedEvent[] = [];
  const listeners: Array<(event: ReceivedEvent) => void> = [];
  let failures = 0;
  let passes = 0;
  let refusals = 0;
  const server = createServer(async (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const body = await readJson(req);
    if (req.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
      send(
        res,
        400,
        { __type: 'UnknownOperationException', message: `Unsupported operation '${target}'.` },
        'UnknownOperationException',
      );
      return;
    }
    if (failures > 0 && passes > 0) {
      passes -= 1;
    } else if (failures > 0) {
      failures -= 1;
      send(res, 500, { __type: 'InternalException', message: 'Injected failure.' }, 'InternalException');
      return;
    }
    const entries = (body as { Entries?: unknown })?.Entries;
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > 10) {
      send(
        res,
        400,
        { __type: 'ValidationException', message: 'Entries must hold 1 to 10 events.' },
        'ValidationException',
      );
      return;
    }
    const refuse = refusals > 0;
    if (refuse) refusals -= 1;
    const results = entries.map((entry: Record<string, unknown>) => {
      if (refuse) return { ErrorCode: 'InternalFailure', ErrorMessage: 'Injected refusal.' };
      const id = randomUUID();
      const time = entry.Time;
      const event: ReceivedEvent = {
        id,
        busName: String(entry.EventBusName ?? 'default'),
        source: String(entry.Source ?? ''),
        detailType: String(entry.DetailType ?? ''),
        detail: typeof entry.Detail === 'string' ? JSON.parse(entry.Detail) : undefined,
        time: typeof time === 'number' ? new Date(time * 1000).toISOString() : undefined,
      };
      events.push(event);
      for (const listener of listeners) listener(event);
      return { EventId: id };
    });
    send(res, 200, { FailedEntryCount: refuse ? entries.length : 0, Entries: results });
  });
  const url = await listen(server, options.port, options.host);
  return {
    url,
    events,
    failNext(times = 1, after = 0) {
      failures = times;
      passes = after;
    },
    refuseEntriesNext(times = 1) {
      refusals = times;
    },
    onEvent(listener) {
      listeners.push(listener);
    },
    reset() {
      events.length = 0;
      failures = 0;
      passes = 0;
      refusals = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
