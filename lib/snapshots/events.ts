/**
 * The snapshot function's three triggers, recognized by shape and validated by hand at the edge:
 * an EventBridge scheduled event, an SQS batch, and a `Snapshot Requested` EventBridge event.
 * Each yields the snapshot time (the event's own time, so a redelivery yields the same time).
 */
import { InvalidRequestError } from '../errors.ts';
import { parseTenantId } from '../tenants.ts';
import { MAX_INSTANT_MS, MIN_INSTANT_MS, parseInstant } from './instants.ts';

const SCHEDULED_DETAIL_TYPE = 'Scheduled Event';
const SNAPSHOT_REQUESTED_DETAIL_TYPE = 'Snapshot Requested';

/** What one request asks for: every tenant (no tenantId) or one, at one time. */
export interface SnapshotRequest {
  observedAt: string;
  tenantId?: string;
}

interface SqsSnapshotMessage {
  messageId: string;
  /** The message's request, or why it cannot be carried out (it is then reported as failed). */
  request?: SnapshotRequest;
  problem?: string;
}

export type SnapshotTrigger =
  | { kind: 'schedule'; eventId: string; request: SnapshotRequest }
  | { kind: 'event'; eventId: string; request: SnapshotRequest }
  | { kind: 'sqs'; messages: SqsSnapshotMessage[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeShape(event: unknown): string {
  if (!isRecord(event))
    return event === null ? 'null' : Array.isArray(event) ? 'an array' : `a ${typeof event}`;
  const keys = Object.keys(event).slice(0, 10).join(', ');
  return `an object with keys [${keys}]`;
}

function eventTime(event: Record<string, unknown>): string {
  const time = event.time;
  if (typeof time !== 'string') throw new InvalidRequestError('The EventBridge event has no string `time`.');
  return parseInstant(time, 'The event time').toISOString();
}

function eventId(event: Record<string, unknown>): string {
  return typeof event.id === 'string' ? event.id.slice(0, 100) : '(no id)';
}

/** `{}` or `{"tenantId": "…"}`; another field is refused so that a typo cannot widen a request to every tenant. */
function readTarget(value: unknown, what: string): { tenantId?: string } {
  if (!isRecord(value))
    throw new InvalidRequestError(`${what} must be a JSON object: {"tenantId": "…"} or {}.`);
  const unknown = Object.keys(value).filter((key) => key !== 'tenantId');
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      `${what} has unknown field(s) ${unknown
        .slice(0, 5)
        .map((key) => `'${key.slice(0, 40)}'`)
        .join(', ')}: it must be {"tenantId": "…"} or {} for every tenant.`,
    );
  }
  if (!Object.hasOwn(value, 'tenantId')) return {};
  return { tenantId: parseTenantId(value.tenantId) };
}

function parseSqsMessage(record: unknown, index: number): SqsSnapshotMessage {
  if (!isRecord(record) || typeof record.messageId !== 'string') {
    throw new InvalidRequestError(
      `SQS record ${index} has no messageId; this is not an SQS batch from Lambda.`,
    );
  }
  const { messageId } = record;
  try {
    const attributes = isRecord(record.attributes) ? record.attributes : {};
    const sent = attributes.SentTimestamp;
    const ms = typeof sent === 'string' && /^\d{1,16}$/.test(sent) ? Number(sent) : Number.NaN;
    if (!Number.isSafeInteger(ms) || ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) {
      throw new InvalidRequestError('attributes.SentTimestamp is missing or not epoch milliseconds.');
    }
    if (typeof record.body !== 'string') throw new InvalidRequestError('the body is not a string.');
    let body: unknown;
    try {
      body = JSON.parse(record.body);
    } catch {
      throw new InvalidRequestError('the body is not JSON: send {"tenantId": "…"} or {} for every tenant.');
    }
    return {
      messageId,
      request: { observedAt: new Date(ms).toISOString(), ...readTarget(body, 'The body') },
    };
  } catch (error) {
    if (!(error instanceof InvalidRequestError)) throw error;
    return { messageId, problem: error.message };
  }
}

/**
 * Recognizes and validates a trigger. An event of no known shape, or an EventBridge event whose own
 * fields are wrong, is an InvalidRequestError; a bad SQS message is reported on the message instead.
 */
export function parseSnapshotEvent(event: unknown): SnapshotTrigger {
  if (isRecord(event) && Array.isArray(event.Records)) {
    const records: unknown[] = event.Records;
    if (records.length === 0) return { kind: 'sqs', messages: [] };
    const foreign = records.find((record) => !isRecord(record) || record.eventSource !== 'aws:sqs');
    if (foreign !== undefined) {
      const source = isRecord(foreign)
        ? String(foreign.eventSource ?? foreign.EventSource ?? 'none').slice(0, 40)
        : 'none';
      throw new InvalidRequestError(
        `Unsupported event: a batch of Records whose eventSource is '${source}'; only SQS batches (aws:sqs) are handled.`,
      );
    }
    return { kind: 'sqs', messages: records.map(parseSqsMessage) };
  }
  if (isRecord(event)) {
    const detailType = event['detail-type'];
    if (detailType === SCHEDULED_DETAIL_TYPE && event.source === 'aws.events') {
      return { kind: 'schedule', eventId: eventId(event), request: { observedAt: eventTime(event) } };
    }
    if (detailType === SNAPSHOT_REQUESTED_DETAIL_TYPE) {
      const detail = event.detail === undefined || event.detail === null ? {} : event.detail;
      const target = readTarget(detail, 'The event detail');
      return { kind: 'event', eventId: eventId(event), request: { observedAt: eventTime(event), ...target } };
    }
  }
  throw new InvalidRequestError(
    `Unsupported event (${describeShape(event)}): expected an EventBridge '${SCHEDULED_DETAIL_TYPE}' from aws.events, an EventBridge '${SNAPSHOT_REQUESTED_DETAIL_TYPE}' event, or an SQS batch.`,
  );
}
