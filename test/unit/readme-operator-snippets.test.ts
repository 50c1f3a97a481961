/**
 * What the README hands an operator to paste into a real account, read from README.md and checked against
 * the code on the other side: the SQS message and the `put-events` entry that ask for a snapshot (fed to
 * the snapshot function's own parser, and the entry to the stack's Snapshot Requested rule pattern), the
 * `Allocation Threshold Crossed` event it shows (against what lib/events.ts publishes), and the rule that
 * routes those events to people (its pattern and input transformer run on a published event, its resources
 * against the CloudFormation schemas, and the permission EventBridge needs to publish to its topics).
 * No AWS account is reachable from here: these are what can be checked without one.
 */
import { readFileSync } from 'node:fs';
import type { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { createEventPublisher, EVENT_SOURCE, THRESHOLD_CROSSED } from '../../lib/events.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { parseSnapshotEvent } from '../../lib/snapshots/events.ts';
import { findThresholdCrossings, type ThresholdCrossing } from '../../lib/thresholds.ts';
import type { Allocation } from '../../lib/types.ts';
import { parseServerlessYml } from '../../local/dynamodb.ts';
import { templateProblems } from '../support/cloudformation-schema.ts';

type Json = Record<string, unknown>;

const ROOT = new URL('../../', import.meta.url);
const README = readFileSync(new URL('README.md', ROOT), 'utf8');
const SERVERLESS = parseServerlessYml(readFileSync(new URL('serverless.yml', ROOT), 'utf8')) as Json;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every fenced block of the README, as [language, text], its list-item indentation removed. */
const BLOCKS: [string, string][] = [...README.matchAll(/^([ \t]*)```(\w*)\n([\s\S]*?)^[ \t]*```/gm)].map(
  (m) => {
    const indent = m[1] ?? '';
    const text = (m[3] ?? '')
      .split('\n')
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join('\n');
    return [m[2] ?? '', text];
  },
);

/** The one block of `language` that contains `marker`. */
function block(language: string, marker: string): string {
  const found = BLOCKS.filter(([lang, text]) => lang === language && text.includes(marker));
  if (found.length !== 1)
    throw new Error(`README has ${found.length} ${language} blocks with '${marker}', not one`);
  return found[0]?.[1] ?? '';
}

/** The single-quoted argument of `option` in a shell command (the README's commands quote JSON so). */
function quotedArgument(command: string, option: string): string {
  const flat = command.replace(/\\\n\s*/g, ' ');
  const m = flat.match(new RegExp(`${option} '([^']*)'`));
  if (!m) throw new Error(`README: no ${option} '…' in ${flat}`);
  return m[1] ?? '';
}

/**
 * EventBridge's matching of an event against a pattern, for what the README's and the stack's patterns use:
 * lists of exact values and `anything-but`; anything else fails the test rather than match by accident.
 */
function matches(pattern: unknown, event: unknown): boolean {
  if (!isRecord(pattern)) throw new Error(`not a pattern: ${JSON.stringify(pattern)}`);
  return Object.entries(pattern).every(([key, expected]) => {
    const value = isRecord(event) ? event[key] : undefined;
    if (isRecord(expected)) return matches(expected, value);
    if (!Array.isArray(expected)) throw new Error(`a pattern's values are lists: ${key}`);
    return expected.some((candidate) => {
      if (!isRecord(candidate)) return candidate === value;
      const but = candidate['anything-but'];
      if (Object.keys(candidate).length !== 1 || but === undefined)
        throw new Error(`pattern operator not handled here: ${JSON.stringify(candidate)}`);
      return value !== undefined && !(Array.isArray(but) ? but : [but]).includes(value);
    });
  });
}

/** A JSON path of an InputPathsMap (`$.detail.ratio`) read from an event. */
function jsonPath(event: unknown, path: string): unknown {
  if (!/^\$(\.[\w-]+)+$/.test(path)) throw new Error(`path form not handled here: ${path}`);
  return path
    .split('.')
    .slice(1)
    .reduce<unknown>((node, key) => (isRecord(node) ? node[key] : undefined), event);
}

/**
 * EventBridge's InputTemplate substitution: a placeholder inside a JSON string takes the value's text,
 * escaped; one outside a string takes the value as JSON (a string quoted).
 */
function transform(template: string, values: Record<string, unknown>): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < template.length; i += 1) {
    const ch = template[i] ?? '';
    const placeholder = ch === '<' ? template.slice(i).match(/^<([\w-]+)>/) : null;
    if (placeholder) {
      const name = placeholder[1] ?? '';
      if (!(name in values)) throw new Error(`InputTemplate placeholder <${name}> is not in InputPathsMap`);
      const value = values[name];
      out += inString
        ? JSON.stringify(typeof value === 'string' ? value : JSON.stringify(value)).slice(1, -1)
        : JSON.stringify(value);
      i += placeholder[0].length - 1;
      continue;
    }
    if (ch === '\\' && inString) {
      out += ch + (template[i + 1] ?? '');
      i += 1;
      continue;
    }
    if (ch === '"') inString = !inString;
    out += ch;
  }
  return out;
}

function allocation(observedAt: string, department: number): Allocation {
  const { spaces, totals } = normalizeAllocation({
    code: 0,
    data: [
      { type: 0, allocateCapacity: department, totalCapacity: 100 },
      { type: 1, allocateCapacity: 50, totalCapacity: 100 },
    ],
  });
  return { tenantId: 'acme', observedAt, spaces, totals };
}

/** The events lib/events.ts publishes for some crossings, as EventBridge delivers them to a rule. */
async function delivered(crossings: ThresholdCrossing[]): Promise<Json[]> {
  const sent: Json[] = [];
  const client = {
    send: async (command: PutEventsCommand) => {
      for (const entry of command.input.Entries ?? []) {
        sent.push({
          version: '0',
          id: 'e1',
          'detail-type': entry.DetailType,
          source: entry.Source,
          account: '123456789012',
          time: entry.Time?.toISOString(),
          region: 'eu-west-1',
          resources: [],
          detail: JSON.parse(entry.Detail ?? 'null'),
        });
      }
      return { Entries: (command.input.Entries ?? []).map(() => ({ EventId: 'e1' })) };
    },
  };
  const publisher = createEventPublisher({ busName: 'default', client: client as never });
  await publisher.publishThresholdCrossings(crossings);
  return sent;
}

/** Two crossings of the department space: 0.8 upward, then 0.8 downward. */
async function upAndDown(): Promise<[Json, Json]> {
  const before = allocation('2026-11-28T04:00:00.000Z', 79);
  const above = allocation('2026-11-28T04:15:00.000Z', 85);
  const below = allocation('2026-11-28T04:30:00.000Z', 70);
  const [up] = findThresholdCrossings(before, above, [0.8]);
  const [down] = findThresholdCrossings(above, below, [0.8]);
  if (!up || !down) throw new Error('expected two crossings');
  const [upEvent, downEvent] = await delivered([up, down]);
  if (!upEvent || !downEvent) throw new Error('expected two events');
  return [upEvent, downEvent];
}

describe('README, asking for a snapshot', () => {
  it('sends an SQS body the snapshot function takes', () => {
    const body = quotedArgument(block('sh', 'aws sqs send-message'), '--message-body');
    const trigger = parseSnapshotEvent({
      Records: [
        {
          messageId: 'm1',
          body,
          attributes: { SentTimestamp: String(Date.parse('2026-11-28T04:15:00.000Z')) },
          eventSource: 'aws:sqs',
        },
      ],
    });
    expect(trigger).toEqual({
      kind: 'sqs',
      messages: [{ messageId: 'm1', request: { observedAt: '2026-11-28T04:15:00.000Z', tenantId: 'acme' } }],
    });
  });

  it('puts a Snapshot Requested entry that the stack’s rule matches and the function takes', () => {
    const entries: unknown = JSON.parse(quotedArgument(block('sh', 'aws events put-events'), '--entries'));
    expect(Array.isArray(entries) && entries.length).toBe(1);
    const [entry] = entries as Json[];
    // EventBridge delivers the entry's fields under the event's own names, Detail parsed.
    const event = {
      version: '0',
      id: 'e1',
      'detail-type': entry?.DetailType,
      source: entry?.Source,
      account: '123456789012',
      time: '2026-11-28T04:15:00Z',
      region: 'eu-west-1',
      resources: [],
      detail: JSON.parse(String(entry?.Detail)),
    };
    // The stack's rule: serverless.yml's pattern, with the default snapshotRequestSources.
    const params = (SERVERLESS.params as Json).default as Json;
    const snapshot = (SERVERLESS.functions as Json).snapshot as Json;
    const rule = (snapshot.events as Json[]).find((e) => e.eventBridge)?.eventBridge as Json;
    const pattern = { ...(rule.pattern as Json), source: params.snapshotRequestSources };
    expect(matches(pattern, event)).toBe(true);
    expect(entry?.EventBusName).toBe(params.eventBusName);
    expect(parseSnapshotEvent(event)).toEqual({
      kind: 'event',
      eventId: 'e1',
      request: { observedAt: '2026-11-28T04:15:00.000Z', tenantId: 'acme' },
    });
  });
});

describe('README, threshold events', () => {
  it('shows the event as the function publishes it: source, detail-type and the detail’s fields', async () => {
    const shown = JSON.parse(block('json', THRESHOLD_CROSSED)) as Json;
    const [published] = await upAndDown();
    expect(shown.source).toBe(EVENT_SOURCE);
    expect(shown['detail-type']).toBe(THRESHOLD_CROSSED);
    expect(published.source).toBe(EVENT_SOURCE);
    expect(published['detail-type']).toBe(THRESHOLD_CROSSED);
    // A space type's detail also carries `type`, which the README describes after the example (totals have none).
    const publishedKeys = Object.keys(published.detail as Json).filter((key) => key !== 'type');
    expect(Object.keys(shown.detail as Json).sort()).toEqual(publishedKeys.sort());
  });
});

describe('README, the rule that routes threshold events to people', () => {
  const snippet = parseServerlessYml(block('yaml', 'AWS::Events::Rule')) as Json;
  const rules = Object.entries(snippet).filter(([, r]) => isRecord(r) && r.Type === 'AWS::Events::Rule');
  const [ruleId, rule] = rules[0] ?? ['', {}];
  const properties = (rule as Json).Properties as Json;
  const targets = properties.Targets as Json[];

  it('is resources CloudFormation accepts', () => {
    expect(rules).toHaveLength(1);
    expect(templateProblems({ Resources: snippet })).toEqual([]);
  });

  it('matches the published upward crossings, not the downward ones', async () => {
    const [up, down] = await upAndDown();
    expect(matches(properties.EventPattern, up)).toBe(true);
    expect(matches(properties.EventPattern, down)).toBe(false);
  });

  it('turns a published event into the message its template gives, every placeholder filled', async () => {
    const [up] = await upAndDown();
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) {
      const { InputPathsMap, InputTemplate } = target.InputTransformer as Json;
      const values = Object.fromEntries(
        Object.entries(InputPathsMap as Record<string, string>).map(([name, path]) => {
          const value = jsonPath(up, path);
          expect(value, `${name}: ${path}`).toBeDefined();
          return [name, value];
        }),
      );
      const message: unknown = JSON.parse(transform(String(InputTemplate), values));
      expect(JSON.stringify(message)).toContain('acme');
    }
  });

  it('lets EventBridge publish to each topic it targets (a topic policy: CloudFormation adds none)', () => {
    const policies = Object.values(snippet).filter(
      (r): r is Json => isRecord(r) && r.Type === 'AWS::SNS::TopicPolicy',
    );
    for (const target of targets) {
      const granted = policies.some((policy) => {
        const props = policy.Properties as Json;
        const topics = JSON.stringify(props.Topics);
        const statements = ((props.PolicyDocument as Json).Statement as Json[]) ?? [];
        return (
          topics.includes(JSON.stringify(target.Arn)) &&
          statements.some(
            (s) =>
              s.Effect === 'Allow' &&
              JSON.stringify(s.Principal) === JSON.stringify({ Service: 'events.amazonaws.com' }) &&
              [s.Action].flat().includes('sns:Publish') &&
              JSON.stringify(s.Resource).includes(JSON.stringify(target.Arn)) &&
              new RegExp(`"${ruleId}[".]`).test(JSON.stringify(s.Condition ?? {})),
          )
        );
      });
      expect(granted, `sns:Publish for events.amazonaws.com on ${JSON.stringify(target.Arn)}`).toBe(true);
    }
  });

  it('gives a chat channel (Amazon Q Developer, formerly AWS Chatbot) its custom-notification format', () => {
    // It shows nothing of a plain-text message: version 1.0, source custom and content.description at least.
    const chat = targets.filter((t) => /chat/i.test(String(t.Id)));
    expect(chat).toHaveLength(1);
    const { InputPathsMap, InputTemplate } = (chat[0]?.InputTransformer ?? {}) as Json;
    const values = Object.fromEntries(Object.keys(InputPathsMap as Json).map((name) => [name, 'x']));
    const message = JSON.parse(transform(String(InputTemplate), values)) as Json;
    expect(message).toMatchObject({ version: '1.0', source: 'custom' });
    expect(typeof (message.content as Json | undefined)?.description).toBe('string');
  });
});
