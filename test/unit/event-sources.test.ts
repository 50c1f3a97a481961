import { describe, expect, it } from 'vitest';
import EventSourcesPlugin, {
  eventBusTag,
  eventSourcePattern,
  MAX_RULE_NAME,
  snapshotRequestedRuleName,
} from '../../serverless/event-sources.ts';

describe('eventSourcePattern (the Snapshot Requested rule’s sources)', () => {
  it('keeps a list from the params block, matchers included', () => {
    const list = [{ 'anything-but': ['koodrive.allocation'] }];
    expect(eventSourcePattern(list, 'snapshotRequestSources')).toBe(list);
    expect(eventSourcePattern(['ops.scripts'], 'snapshotRequestSources')).toEqual(['ops.scripts']);
  });

  it('reads a --param string as comma-separated names, brackets and spaces allowed', () => {
    expect(eventSourcePattern('ops.scripts', 'p')).toEqual(['ops.scripts']);
    expect(eventSourcePattern(' ops.scripts, ops.capacity ,', 'p')).toEqual(['ops.scripts', 'ops.capacity']);
    expect(eventSourcePattern('[ops.scripts, ops.capacity]', 'p')).toEqual(['ops.scripts', 'ops.capacity']);
  });

  it('refuses, naming the parameter, what EventBridge would refuse at deploy time', () => {
    expect(() => eventSourcePattern(' , ', 'snapshotRequestSources')).toThrow(
      /^snapshotRequestSources is empty/,
    );
    expect(() => eventSourcePattern([], 'snapshotRequestSources')).toThrow(
      /^snapshotRequestSources must list/,
    );
    expect(() => eventSourcePattern([null], 'snapshotRequestSources')).toThrow(/must list/);
    expect(() => eventSourcePattern(42, 'snapshotRequestSources')).toThrow(/comma-separated string/);
  });
});

describe('eventBusTag (the event bus in the Snapshot Requested rule’s name)', () => {
  it('reads the bus name without the spaces around it', () => {
    expect(eventBusTag(' default ', 'eventBusName')).toBe('default');
    expect(eventBusTag(' ops-bus ', 'eventBusName')).toBe(eventBusTag('ops-bus', 'eventBusName'));
  });

  it('refuses a name of spaces only, naming the parameter', () => {
    expect(() => eventBusTag('  ', 'eventBusName')).toThrow(/^eventBusName is empty/);
  });
});

describe('snapshotRequestedRuleName (the Snapshot Requested rule, named after the stage)', () => {
  const service = 'koodrive-allocation';

  it('keeps the name stages have deployed with, up to EventBridge’s 64 characters', () => {
    expect(snapshotRequestedRuleName(service, 'prod', 'default')).toBe(
      'koodrive-allocation-prod-requested-default',
    );
    const longest = 'a'.repeat(26);
    expect(snapshotRequestedRuleName(service, longest, 'default')).toHaveLength(MAX_RULE_NAME);
    // A bus of the stack's own has a 6-digit tag: one character more for the stage.
    expect(snapshotRequestedRuleName(service, `${longest}b`, '4194df')).toHaveLength(MAX_RULE_NAME);
  });

  it('refuses a longer stage, naming it, its length, the limit and what to do', () => {
    const stage = 'feature-allocation-thresholds';
    expect(() => snapshotRequestedRuleName(service, stage, 'default')).toThrow(
      `The stage name 'feature-allocation-thresholds' is 29 characters, over the 26 that fit: it is part of the Snapshot Requested rule's name (koodrive-allocation-<stage>-requested-default), and EventBridge allows 64 characters for a rule's name. Deploy with a stage name of at most 26 characters.`,
    );
  });

  it('resolves from the bus parameter, the service and the stage, as a user error when too long', async () => {
    const source = new EventSourcesPlugin().configurationVariablesSources.snapshotRequestedRule;
    const context = (stage: string) => ({
      address: 'eventBusName',
      resolveVariable: async (variable: string) =>
        ({ 'param:eventBusName': 'default', 'self:service': service, 'sls:stage': stage })[variable],
    });
    expect(await source.resolve(context('dev'))).toEqual({
      value: 'koodrive-allocation-dev-requested-default',
    });
    const refused = await source.resolve(context('x'.repeat(27))).catch((error: unknown) => error);
    expect((refused as Error).message).toMatch(
      /^The stage name 'x{27}' is 27 characters, over the 26 that fit/,
    );
    expect((refused as Error).constructor.name).toBe('ServerlessError');
  });
});
