import { describe, expect, it } from 'vitest';
import { eventBusTag, eventSourcePattern } from '../../serverless/event-sources.ts';

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
