import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../lib/errors.ts';
import { parseSnapshotEvent } from '../../lib/snapshots/events.ts';
import scheduledFixture from '../fixtures/events/eventbridge-scheduled.json' with { type: 'json' };
import requestedFixture from '../fixtures/events/eventbridge-snapshot-requested.json' with { type: 'json' };
import sqsFixture from '../fixtures/events/sqs-batch.json' with { type: 'json' };

const scheduled = () => structuredClone(scheduledFixture);
const requested = () => structuredClone(requestedFixture);
const sqs = () => structuredClone(sqsFixture);

function refusal(event: unknown): string {
  try {
    parseSnapshotEvent(event);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error.message;
    throw error;
  }
  throw new Error('expected an InvalidRequestError');
}

/** An SQS batch of one fixture message with its body (and attributes) replaced. */
function sqsWith(body: string, attributes: Record<string, unknown> = {}) {
  const event = sqs();
  const [record] = event.Records;
  if (record === undefined) throw new Error('fixture has no record');
  record.body = body;
  return { Records: [{ ...record, attributes: { ...record.attributes, ...attributes } }] };
}

describe('parseSnapshotEvent: EventBridge scheduled event', () => {
  it('snapshots every tenant at the event time', () => {
    expect(parseSnapshotEvent(scheduled())).toEqual({
      kind: 'schedule',
      eventId: '89d1a02d-5ec7-412e-82f5-13505f849b41',
      request: { observedAt: '2026-11-28T04:00:00.000Z' },
    });
  });

  it('refuses a scheduled event without a usable time', () => {
    const event: Record<string, unknown> = scheduled();
    delete event.time;
    expect(refusal(event)).toBe('The EventBridge event has no string `time`.');
    expect(refusal({ ...scheduled(), time: 'tomorrow' })).toMatch(/^The event time is 'tomorrow'/);
  });

  it("does not take a 'Scheduled Event' from another source for the schedule", () => {
    expect(refusal({ ...scheduled(), source: 'com.example' })).toMatch(/^Unsupported event/);
  });
});

describe('parseSnapshotEvent: Snapshot Requested', () => {
  it('snapshots the named tenant at the event time', () => {
    expect(parseSnapshotEvent(requested())).toEqual({
      kind: 'event',
      eventId: '3e3c1e6a-6b1f-4b0a-9d4e-2f5a7c1d8e90',
      request: { observedAt: '2026-11-28T09:17:42.000Z', tenantId: 'acme' },
    });
  });

  it('snapshots every tenant when the detail names none', () => {
    for (const detail of [{}, undefined, null]) {
      const event: Record<string, unknown> = { ...requested(), detail };
      if (detail === undefined) delete event.detail;
      expect(parseSnapshotEvent(event)).toMatchObject({
        kind: 'event',
        request: { observedAt: '2026-11-28T09:17:42.000Z' },
      });
      expect(parseSnapshotEvent(event)).not.toHaveProperty('request.tenantId');
    }
  });

  it('refuses a bad tenant id, an unknown field and a detail that is not an object', () => {
    expect(refusal({ ...requested(), detail: { tenantId: 'no way!' } })).toContain(
      "Invalid tenant id 'no way!'",
    );
    expect(refusal({ ...requested(), detail: { tenantId: 7 } })).toContain('Invalid tenant id 7');
    expect(refusal({ ...requested(), detail: { tenant: 'acme' } })).toBe(
      `The event detail has unknown field(s) 'tenant': it must be {"tenantId": "…"} or {} for every tenant.`,
    );
    expect(refusal({ ...requested(), detail: ['acme'] })).toContain('must be a JSON object');
  });
});

describe('parseSnapshotEvent: SQS batch', () => {
  it('reads each message: its id, its SentTimestamp as the time, and its tenant or every tenant', () => {
    expect(parseSnapshotEvent(sqs())).toEqual({
      kind: 'sqs',
      messages: [
        {
          messageId: '059f36b4-87a3-44ab-83d2-661975830a7d',
          request: { observedAt: '2026-11-28T04:00:00.123Z', tenantId: 'acme' },
        },
        {
          messageId: '2e1424d4-f796-459a-8184-9c92662be6da',
          request: { observedAt: '2026-11-28T04:01:00.456Z' },
        },
      ],
    });
  });

  it.each([
    ['not JSON', '{tenantId: acme}', 'the body is not JSON'],
    ['a JSON string', '"acme"', 'The body must be a JSON object'],
    ['a bad tenant id', '{"tenantId":"../acme"}', "Invalid tenant id '../acme'"],
    ['an unknown field', '{"tenantId":"acme","force":true}', "unknown field(s) 'force'"],
  ])('marks a message whose body is %s as failed with a reason', (_name, body, reason) => {
    const trigger = parseSnapshotEvent(sqsWith(body));
    expect(trigger.kind).toBe('sqs');
    const [message] = trigger.kind === 'sqs' ? trigger.messages : [];
    expect(message?.messageId).toBe('059f36b4-87a3-44ab-83d2-661975830a7d');
    expect(message?.request).toBeUndefined();
    expect(message?.problem).toContain(reason);
  });

  it('marks a message without a usable SentTimestamp as failed', () => {
    for (const SentTimestamp of [undefined, 'soon', '-5', '1e12', '99999999999999999']) {
      const trigger = parseSnapshotEvent(sqsWith('{}', { SentTimestamp }));
      expect(trigger.kind === 'sqs' && trigger.messages[0]?.problem).toBe(
        'attributes.SentTimestamp is missing or not epoch milliseconds.',
      );
    }
  });

  it('answers an empty batch with no messages', () => {
    expect(parseSnapshotEvent({ Records: [] })).toEqual({ kind: 'sqs', messages: [] });
  });

  it('refuses records from another service, and a record without a messageId', () => {
    const sns = { Records: [{ EventSource: 'aws:sns', Sns: { Message: '{}' } }] };
    expect(refusal(sns)).toBe(
      "Unsupported event: a batch of Records whose eventSource is 'aws:sns'; only SQS batches (aws:sqs) are handled.",
    );
    const event = sqs();
    const broken = { Records: event.Records.map(({ messageId: _drop, ...rest }) => rest) };
    expect(refusal(broken)).toContain('has no messageId');
  });
});

describe('parseSnapshotEvent: anything else', () => {
  it.each([
    ['an API Gateway request', { version: '2.0', routeKey: 'GET /allocation', rawPath: '/allocation' }],
    ['another detail-type', { ...scheduledFixture, 'detail-type': 'EC2 Instance State-change Notification' }],
    ['null', null],
    ['a string', 'snapshot'],
  ])('refuses %s with a clear message', (_name, event) => {
    const message = refusal(event);
    expect(message).toMatch(/^Unsupported event \(/);
    expect(message).toContain("'Scheduled Event'");
    expect(message).toContain('SQS batch');
  });
});
