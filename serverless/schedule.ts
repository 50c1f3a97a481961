/**
 * The snapshot schedule (`snapshotSchedule`) and the window of the "no snapshot stored" alarm
 * (`staleSnapshotSeconds`), checked at package time: EventBridge refuses a malformed expression only when the
 * stack deploys, and an alarm window shorter than the schedule's period would page someone between every two
 * runs. By default the window is two periods of a `rate(…)` schedule, so changing the schedule alone is enough.
 */

const UNIT_SECONDS: Record<string, number> = { minute: 60, hour: 3600, day: 86_400 };

/** A run stores its snapshots up to the snapshot function's timeout (300 s) after the schedule fires. */
const RUN_MARGIN_SECONDS = 300;

/** CloudWatch's longest evaluation range for an alarm whose period is an hour or more (7 days). */
export const MAX_ALARM_WINDOW_SECONDS = 604_800;

/**
 * The period of a schedule expression in seconds, `undefined` for a valid `cron(…)` (whose runs need not be
 * evenly spaced); throws with what to write instead when EventBridge would refuse the expression.
 */
export function schedulePeriodSeconds(expression: string): number | undefined {
  const text = expression.trim();
  const rate = /^rate\((.*)\)$/.exec(text);
  if (rate) {
    const match = /^\s*(\d+)\s+(minute|hour|day)(s?)\s*$/.exec(rate[1] ?? '');
    const value = Number(match?.[1]);
    if (!match || !Number.isSafeInteger(value) || value < 1) {
      throw new Error(
        `snapshotSchedule '${expression}' is not a rate EventBridge takes: write rate(<whole number> <minute|minutes|hour|hours|day|days>), e.g. rate(15 minutes).`,
      );
    }
    const unit = match[2] ?? '';
    const plural = match[3] === 's';
    if (plural !== (value !== 1)) {
      const fixed = `rate(${value} ${unit}${value === 1 ? '' : 's'})`;
      throw new Error(
        `snapshotSchedule '${expression}': EventBridge wants the singular unit for 1 and the plural otherwise; write ${fixed}.`,
      );
    }
    return value * (UNIT_SECONDS[unit] ?? 0);
  }
  const cron = /^cron\((.*)\)$/.exec(text);
  if (cron) {
    const fields = (cron[1] ?? '').trim().split(/\s+/);
    if (fields.length !== 6) {
      throw new Error(
        `snapshotSchedule '${expression}' has ${fields.length} fields; EventBridge's cron has 6: minutes hours day-of-month month day-of-week year, e.g. cron(0/15 * * * ? *).`,
      );
    }
    const [, , dayOfMonth, , dayOfWeek] = fields;
    if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
      throw new Error(
        `snapshotSchedule '${expression}': EventBridge's cron needs '?' in exactly one of day-of-month and day-of-week, e.g. cron(0 * * * ? *).`,
      );
    }
    return undefined;
  }
  throw new Error(
    `snapshotSchedule '${expression}' must be rate(…) or cron(…), e.g. rate(15 minutes) or cron(0/15 * * * ? *).`,
  );
}

/**
 * The "no snapshot stored" alarm's window in seconds: the `staleSnapshotSeconds` setting, or with `auto` two
 * periods of the schedule and a run's length (300 s): one missed run leaves a gap of two periods between
 * stored snapshots, which must not page (it would go to ALARM and back within a minute or two); two
 * missed runs do. Throws when the alarm would fire between two scheduled runs or CloudWatch would refuse it.
 */
export function staleSnapshotSeconds(setting: string, schedule: string): number {
  const period = schedulePeriodSeconds(schedule);
  const text = setting.trim();
  if (text === '' || text === 'auto') {
    if (period === undefined) {
      throw new Error(
        `snapshotSchedule '${schedule}' is a cron expression, so the "no snapshot stored" alarm cannot derive its window: set staleSnapshotSeconds to twice the longest gap between two runs, in seconds (e.g. 7200 for hourly runs).`,
      );
    }
    const window = 2 * period + RUN_MARGIN_SECONDS;
    if (window > MAX_ALARM_WINDOW_SECONDS) {
      throw new Error(
        `snapshotSchedule '${schedule}' is too rare for the "no snapshot stored" alarm: its window (two periods and ${RUN_MARGIN_SECONDS} s, ${window} s) exceeds CloudWatch's ${MAX_ALARM_WINDOW_SECONDS} s; schedule at least every 3 days.`,
      );
    }
    return window;
  }
  const value = Number(text);
  if (!Number.isInteger(value) || value < 60 || value % 60 !== 0) {
    throw new Error(
      `staleSnapshotSeconds '${setting}' must be auto or a whole number of minutes, in seconds (e.g. 1800).`,
    );
  }
  if (value > MAX_ALARM_WINDOW_SECONDS) {
    throw new Error(
      `staleSnapshotSeconds ${value} exceeds CloudWatch's longest alarm window (${MAX_ALARM_WINDOW_SECONDS} s, 7 days).`,
    );
  }
  if (period !== undefined && value < period + RUN_MARGIN_SECONDS) {
    throw new Error(
      `staleSnapshotSeconds ${value} leaves no room for one period of snapshotSchedule '${schedule}' (${period} s) and a run's length: the alarm would fire between two runs. Use auto (${2 * period + RUN_MARGIN_SECONDS} s) or at least ${period + RUN_MARGIN_SECONDS}.`,
    );
  }
  return value;
}

/** Alarms on a Metrics Insights query can only look at the latest 3 hours. */
const MAX_INSIGHTS_WINDOW_SECONDS = 10_800;

/**
 * The period of the allocated-ratio alarms: the stale-snapshot window (it holds at least one run's metrics),
 * else two periods of the paused schedule (30 minutes for a paused cron), at most the 3 hours a Metrics
 * Insights alarm can see.
 */
export function ratioWindowSeconds(
  staleSeconds: number | undefined,
  periodSeconds: number | undefined,
): number {
  const window = staleSeconds ?? (periodSeconds === undefined ? 1800 : 2 * periodSeconds);
  return Math.min(window, MAX_INSIGHTS_WINDOW_SECONDS);
}
