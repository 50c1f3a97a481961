import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

/**
 * An API Gateway HTTP API (payload 2.0) event as API Gateway sends it. `query` is either parameters
 * (an array for a name given more than once) or a raw query string as a client sent it. As API Gateway
 * does, the event carries the query string raw in `rawQueryString` and decoded in
 * `queryStringParameters`, where a name given more than once has its values joined with commas.
 */
export function httpEvent(
  path: string,
  options: {
    method?: string;
    routeKey?: string;
    pathParameters?: Record<string, string>;
    query?: Record<string, string | readonly string[]> | string;
  } = {},
): APIGatewayProxyEventV2 {
  const method = options.method ?? 'GET';
  const pairs: [string, string][] =
    typeof options.query === 'string'
      ? [...new URLSearchParams(options.query)]
      : Object.entries(options.query ?? {}).flatMap(([name, value]) =>
          (typeof value === 'string' ? [value] : value).map((one): [string, string] => [name, one]),
        );
  const rawQueryString =
    typeof options.query === 'string' ? options.query : new URLSearchParams(pairs).toString();
  const joined = new Map<string, string>();
  for (const [name, value] of pairs) {
    const earlier = joined.get(name);
    joined.set(name, earlier === undefined ? value : `${earlier},${value}`);
  }
  const query = Object.fromEntries(joined);
  return {
    version: '2.0',
    routeKey: options.routeKey ?? `${method} ${path}`,
    rawPath: path,
    rawQueryString,
    headers: { host: 'api.example.com', 'user-agent': 'vitest' },
    ...(Object.keys(query).length === 0 ? {} : { queryStringParameters: query }),
    ...(options.pathParameters === undefined ? {} : { pathParameters: options.pathParameters }),
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: options.routeKey ?? `${method} ${path}`,
      stage: '$default',
      time: '28/Nov/2026:04:00:00 +0000',
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

let invocation = 0;

/** The EventBridge schedule's event for the snapshot function (the rule's own event, no `input`), fired at `time`. */
export function scheduledEvent(time: string) {
  return {
    version: '0',
    id: `evt-${time}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time,
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/koodrive-allocation-dev-snapshot'],
    detail: {},
  };
}

/** A Lambda context with a fresh request id. */
export function lambdaContext(functionName = 'koodrive-allocation-test-allocation'): Context {
  invocation += 1;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `00000000-0000-4000-8000-${String(invocation).padStart(12, '0')}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/11/28/[$LATEST]test',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Collects everything written to stdout and stderr (structured logs) until `stop()`. */
export function captureOutput() {
  const lines: string[] = [];
  const originalOut = process.stdout.write.bind(process.stdout);
  const originalErr = process.stderr.write.bind(process.stderr);
  const record = (chunk: unknown) => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  };
  process.stdout.write = record as typeof process.stdout.write;
  process.stderr.write = record as typeof process.stderr.write;
  return {
    lines,
    text: () => lines.join(''),
    /** Each non-empty line, parsed: the structured log lines. */
    records: (): Record<string, unknown>[] =>
      lines
        .join('')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop() {
      process.stdout.write = originalOut;
      process.stderr.write = originalErr;
    },
  };
}
