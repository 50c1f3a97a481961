/** The snapshot schedule and the "no snapshot stored" alarm window, as the package step checks and derives them. */
import { describe, expect, it } from 'vitest';
import {
  MAX_ALARM_WINDOW_SECONDS,
  ratioWindowSeconds,
  schedulePeriodSeconds,
  staleSnapshotSeconds,
} from '../../serverless/schedule.ts';

describe('schedulePeriodSeconds', () => {
  it('reads the period of rate expressions in minutes, hours and days', () => {
    expect(schedulePeriodSeconds('rate(15 minutes)')).toBe(900);
    expect(schedulePeriodSeconds('rate(1 minute)')).toBe(60);
    expect(schedulePeriodSeconds(' rate(2 hours) ')).toBe(7200);
    expect(schedulePeriodSeconds('rate(1 day)')).toBe(86_400);
  });

  it('takes a cron expression with six fields and one "?" day field, without a period', () => {
    expect(schedulePeriodSeconds('cron(0/15 * * * ? *)')).toBeUndefined();
    expect(schedulePeriodSeconds('cron(0 6 ? * MON-FRI *)')).toBeUndefined();
  });

  it('names the fix for a unit whose number EventBridge refuses', () => {
    expect(() => schedulePeriodSeconds('rate(1 minutes)')).toThrow(/write rate\(1 minute\)/);
    expect(() => schedulePeriodSeconds('rate(5 hour)')).toThrow(/write rate\(5 hours\)/);
  });

  it('refuses what EventBridge would refuse at deploy time, saying what to write', () => {
    for (const expression of [
      'rate(0 minutes)',
      'rate(15 mins)',
      'rate(1.5 hours)',
      'rate(minutes)',
      'rate()',
    ]) {
      expect(() => schedulePeriodSeconds(expression), expression).toThrow(/e\.g\. rate\(15 minutes\)/);
    }
    expect(() => schedulePeriodSeconds('cron(*/15 * * * *)')).toThrow(
      /has 5 fields; EventBridge's cron has 6/,
    );
    expect(() => schedulePeriodSeconds('cron(0 * * * * *)')).toThrow(/'\?' in exactly one of day-of-month/);
    expect(() => schedulePeriodSeconds('cron(0 * ? * ? *)')).toThrow(/'\?' in exactly one of day-of-month/);
    expect(() => schedulePeriodSeconds('every 15 minutes')).toThrow(/must be rate\(…\) or cron\(…\)/);
  });
});

describe('staleSnapshotSeconds', () => {
  it('is two periods of a rate schedule and a run’s length by default: one missed run does not page, two do', () => {
    expect(staleSnapshotSeconds('auto', 'rate(15 minutes)')).toBe(2100);
    expect(staleSnapshotSeconds('auto', 'rate(1 minute)')).toBe(420);
    expect(staleSnapshotSeconds('auto', 'rate(5 minutes)')).toBe(900);
    expect(staleSnapshotSeconds('', 'rate(1 hour)')).toBe(7500);
    expect(staleSnapshotSeconds('auto', 'rate(3 days)')).toBe(518_700);
  });

  it('keeps a number that covers a period and a run', () => {
    expect(staleSnapshotSeconds('1800', 'rate(15 minutes)')).toBe(1800);
    expect(staleSnapshotSeconds('1200', 'rate(15 minutes)')).toBe(1200);
    expect(staleSnapshotSeconds('7200', 'cron(0 * * * ? *)')).toBe(7200);
  });

  it('refuses a window the alarm would breach between two runs', () => {
    expect(() => staleSnapshotSeconds('900', 'rate(15 minutes)')).toThrow(
      /the alarm would fire between two runs\. Use auto \(2100 s\) or at least 1200/,
    );
  });

  it('asks for a number with a cron schedule, and refuses windows CloudWatch would', () => {
    expect(() => staleSnapshotSeconds('auto', 'cron(0 * * * ? *)')).toThrow(
      /set staleSnapshotSeconds to twice the longest gap/,
    );
    expect(() => staleSnapshotSeconds('auto', 'rate(4 days)')).toThrow(/exceeds CloudWatch's 604800 s/);
    expect(() => staleSnapshotSeconds(String(MAX_ALARM_WINDOW_SECONDS + 60), 'rate(1 day)')).toThrow(
      /longest alarm window/,
    );
    for (const setting of ['90', '30', 'soon', '-1800', '1800.5']) {
      expect(() => staleSnapshotSeconds(setting, 'rate(15 minutes)'), setting).toThrow(
        /must be auto or a whole number of minutes/,
      );
    }
  });

  it('checks the schedule even when the window is given', () => {
    expect(() => staleSnapshotSeconds('1800', 'rate(1 minutes)')).toThrow(/write rate\(1 minute\)/);
  });
});

describe('ratioWindowSeconds', () => {
  it('is the stale-snapshot window, so that it holds a run, within the 3 hours Metrics Insights alarms see', () => {
    expect(ratioWindowSeconds(1800, 900)).toBe(1800);
    expect(ratioWindowSeconds(7200, undefined)).toBe(7200);
    expect(ratioWindowSeconds(172_800, 86_400)).toBe(10_800);
  });

  it('is two periods of a paused schedule, or 30 minutes for a paused cron', () => {
    expect(ratioWindowSeconds(undefined, 3600)).toBe(7200);
    expect(ratioWindowSeconds(undefined, undefined)).toBe(1800);
  });
});
