/** The local stack's minute schedule: what it says of a run that fails, and of one the stop cut short. */
import { describe, expect, it } from 'vitest';
import { startMinuteSchedule } from '../../local/start.ts';

/** Starts a schedule whose first run (at once) waits to be failed; gives its log and the means to fail it. */
function scheduleWithPendingRun() {
  const lines: string[] = [];
  let fail: (error: Error) => void = () => undefined;
  const schedule = startMinuteSchedule(
    () =>
      new Promise<void>((_, reject) => {
        fail = reject;
      }),
    (line) => lines.push(line),
  );
  const settled = () => new Promise((resolve) => setImmediate(resolve));
  return { lines, schedule, fail: (error: Error) => fail(error), settled };
}

describe('the local minute schedule', () => {
  it('reports a run that fails while the stack runs, with its error', async () => {
    const { lines, schedule, fail, settled } = scheduleWithPendingRun();
    fail(new TypeError('fetch failed'));
    await settled();
    schedule.stop();
    expect(lines).toEqual(['local stack: scheduled snapshot failed: TypeError: fetch failed']);
  });

  it('says a run the stop cut short was cut short, not that it failed', async () => {
    const { lines, schedule, fail, settled } = scheduleWithPendingRun();
    schedule.stop();
    fail(new TypeError('fetch failed'));
    await settled();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^local stack: the scheduled snapshot at \S+Z was cut short by the stop$/);
  });
});
