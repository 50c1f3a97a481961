/**
 * Sends the snapshot function of a running local stack (`npm start`) one of the events it takes in AWS, through
 * serverless-offline's Lambda Invoke endpoint, and prints the answer.
 *
 *   npm run snapshot:local                 a scheduled event (every tenant)
 *   npm run snapshot:local -- --sqs [id]   an SQS batch of one message ({"tenantId": id}, or {} for every tenant)
 *   npm run snapshot:local -- --event [id] an EventBridge "Snapshot Requested" event
 *
 * Exits 1 when the function fails, and when its answer to the SQS batch names the message as failed (the reason is
 * then in the stack's output, where the function logs it).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localPorts } from './ports.ts';

/** The service name in `serverless.yml`; Lambda function names are `<service>-<stage>-<function>`. */
export const SERVICE = 'koodrive-allocation';
/** The stage the local stack runs. */
export const LOCAL_STAGE = 'local';
/** The account id that local events carry (no AWS account is involved). */
const LOCAL_ACCOUNT = '000000000000';
/** `source` of the Snapshot Requested events this script sends. */
const SNAPSHOT_REQUEST_SOURCE = 'koodrive-allocation.local';

/** The Invoke URL of a function on serverless-offline's Lambda endpoint. */
export function invokeUrl(lambdaPort: number, functionName = 'snapshot', host = '127.0.0.1'): string {
  return `http://${host}:${lambdaPort}/2015-03-31/functions/${SERVICE}-${LOCAL_STAGE}-${functionName}/invocations`;
}

/** EventBridge writes `time` to the second, without milliseconds. */
function eventTime(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** An EventBridge scheduled event as a rule with a schedule sends it (no `input`). */
export function scheduledEvent(at: Date, region: string) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: LOCAL_ACCOUNT,
    time: eventTime(at),
    region,
    resources: [`arn:aws:events:${region}:${LOCAL_ACCOUNT}:rule/${SERVICE}-${LOCAL_STAGE}-snapshot-schedule`],
    detail: {},
  };
}

/** A custom `Snapshot Requested` event for one tenant, or every tenant when `tenantId` is absent. */
function snapshotRequestedEvent(at: Date, region: string, tenantId?: string) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Snapshot Requested',
    source: SNAPSHOT_REQUEST_SOURCE,
    account: LOCAL_ACCOUNT,
    time: eventTime(at),
    region,
    resources: [],
    detail: tenantId === undefined ? {} : { tenantId },
  };
}

/** An SQS batch of one message whose body names a tenant (or `{}`: every tenant). */
export function sqsSnapshotEvent(at: Date, region: string, tenantId?: string) {
  const body = JSON.stringify(tenantId === undefined ? {} : { tenantId });
  const sent = String(at.getTime());
  return {
    Records: [
      {
        messageId: randomUUID(),
        receiptHandle: randomUUID(),
        body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: sent,
          SenderId: LOCAL_ACCOUNT,
          ApproximateFirstReceiveTimestamp: sent,
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: `arn:aws:sqs:${region}:${LOCAL_ACCOUNT}:${SERVICE}-${LOCAL_STAGE}-SnapshotQueue`,
        awsRegion: region,
      },
    ],
  };
}

/** What the Invoke endpoint answered: the function's result, or its error when `functionError` is set. */
export interface InvokeResult {
  status: number;
  functionError: string | undefined;
  payload: unknown;
}

/** Invokes a function synchronously (RequestResponse) and parses its JSON answer. */
export async function invokeFunction(
  url: string,
  event: unknown,
  signal?: AbortSignal,
): Promise<InvokeResult> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event),
    ...(signal === undefined ? {} : { signal }),
  });
  const text = await response.text();
  let payload: unknown = text;
  try {
    payload = text === '' ? null : JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  const functionError =
    response.headers.get('x-amz-function-error') ?? response.headers.get('x-amzn-errortype');
  return { status: response.status, functionError: functionError ?? undefined, payload };
}

/** The part of an error payload worth printing: serverless-offline also sends the stack, which stays local. */
export function describeResult(result: InvokeResult): string {
  const { payload } = result;
  if (result.functionError !== undefined && typeof payload === 'object' && payload !== null) {
    const type = 'errorType' in payload ? String(payload.errorType) : result.functionError;
    const message = 'errorMessage' in payload ? String(payload.errorMessage) : JSON.stringify(payload);
    return `failed (${type}): ${message}`;
  }
  return JSON.stringify(payload, null, 2);
}

/** The ids an SQS batch answer names in `batchItemFailures`: the messages SQS would deliver again. */
function failedMessageIds(payload: unknown): string[] {
  if (typeof payload !== 'object' || payload === null || !('batchItemFailures' in payload)) return [];
  const failures = payload.batchItemFailures;
  if (!Array.isArray(failures)) return [];
  return failures.map((failure: unknown) =>
    typeof failure === 'object' && failure !== null && 'itemIdentifier' in failure
      ? String(failure.itemIdentifier)
      : JSON.stringify(failure),
  );
}

/**
 * One line per failed message of the batch sent: which one, and where its reason is. The function answers SQS with
 * ids only; it logs the reason in the stack's output ('SQS message rejected' with the message's id for a body it
 * cannot take, such as an unknown tenant; 'SQS message failed' naming the tenants, whose 'snapshot failed' lines say
 * why, for a KooDrive or DynamoDB failure).
 */
function describeFailedMessages(event: unknown, payload: unknown): string[] {
  const records: unknown[] =
    typeof event === 'object' && event !== null && 'Records' in event && Array.isArray(event.Records)
      ? event.Records
      : [];
  return failedMessageIds(payload).map((id) => {
    const record = records.find(
      (r) => typeof r === 'object' && r !== null && 'messageId' in r && r.messageId === id,
    );
    const body =
      typeof record === 'object' && record !== null && 'body' in record
        ? ` (body ${String(record.body)})`
        : '';
    return (
      `failed: SQS message ${id}${body}; the reason is in npm start's output: ` +
      `its 'SQS message rejected' or 'SQS message failed' line with this messageId, and 'snapshot failed' for the tenants it names.`
    );
  });
}

const USAGE = 'usage: npm run snapshot:local -- [--sqs [tenantId] | --event [tenantId] | --schedule]';

/** What is wrong with the command line, said in a sentence; `undefined` when it names an event. */
export function argsProblem(args: readonly string[]): string | undefined {
  const [kind = '--schedule', tenantId, ...rest] = args;
  if (kind !== '--schedule' && kind !== '--sqs' && kind !== '--event') {
    return `unknown option '${kind}': use --sqs, --event or --schedule.`;
  }
  if (kind === '--schedule' && tenantId !== undefined) {
    return `--schedule takes no tenant (it asks for every tenant); for '${tenantId}' alone use --sqs ${tenantId} or --event ${tenantId}.`;
  }
  if (rest.length > 0) {
    return `${kind} takes one tenant at most, not also ${rest.map((arg) => `'${arg}'`).join(', ')}: send one request per tenant, or none for every tenant.`;
  }
  return undefined;
}

/** Picks the event from the command line; `undefined` for a usage error ({@link argsProblem} says which). */
export function eventFromArgs(args: readonly string[], at: Date, region: string): unknown {
  if (argsProblem(args) !== undefined) return undefined;
  const [kind = '--schedule', tenantId] = args;
  if (kind === '--sqs') return sqsSnapshotEvent(at, region, tenantId);
  if (kind === '--event') return snapshotRequestedEvent(at, region, tenantId);
  return scheduledEvent(at, region);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(
      `${USAGE}\n  --sqs [tenantId]    an SQS batch of one message: {"tenantId"} or {} (every tenant)\n  --event [tenantId]  an EventBridge "Snapshot Requested" event, for one tenant or every tenant\n  --schedule          a scheduled event (the default): every tenant, at the current second\nSent to the local stack's Lambda port (LOCAL_LAMBDA_PORT, default 3002); start it with npm start.`,
    );
    return 0;
  }
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const event = eventFromArgs(args, new Date(), region);
  if (event === undefined) {
    console.error(`snapshot:local: ${argsProblem(args) ?? 'unexpected arguments.'}`);
    console.error(USAGE);
    return 2;
  }
  let port: number;
  try {
    // Read as `npm start` reads it: empty means the default, anything but a port number is refused.
    port = localPorts({ LOCAL_LAMBDA_PORT: process.env.LOCAL_LAMBDA_PORT }).lambda;
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  const url = invokeUrl(port);
  let result: InvokeResult;
  try {
    result = await invokeFunction(url, event);
  } catch (error) {
    console.error(`Cannot reach ${url}: is the local stack running (npm start)? ${String(error)}`);
    return 1;
  }
  console.log(describeResult(result));
  if (result.status !== 200 || result.functionError !== undefined) return 1;
  // An SQS batch answer is a success of the invocation even when it names failed messages: SQS would redeliver them.
  const failed = describeFailedMessages(event, result.payload);
  for (const line of failed) console.error(line);
  return failed.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
