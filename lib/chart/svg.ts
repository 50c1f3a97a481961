/**
 * The allocation history as an SVG line chart: a pure function of the items, with no dependency, so
 * the same picture comes out of the Lambda, a test and the local stack. Per space type (and for the
 * totals): allocated as a solid line, total as a faint one, the forecast as a dashed extension;
 * threshold lines of all spaces and ticks of each space type's own thresholds, date and GB axes, a
 * legend, and a text summary for screen readers.
 */
import { allocationSeries, type SeriesPoint, TOTALS_KEY, type Trend } from '../trend.ts';
import type { Allocation } from '../types.ts';

export interface AllocationChartInput {
  tenantId: string;
  /** The requested range (both inclusive); the x axis spans it, plus room for the forecast. */
  from: Date;
  to: Date;
  /** History items to draw, in any order. */
  items: readonly Allocation[];
  /** How many snapshots the range held when `items` is a thinned selection of them (default: all drawn). */
  snapshotCount?: number;
  /** The forecast of the same items (`computeTrend`). */
  trend: Trend;
  /**
   * Allocated ratios, e.g. [0.8, 0.9, 1]: drawn as lines at ratio × the latest total of all spaces (the
   * totals), and as ticks at the plot's right edge at ratio × each space type's own latest total.
   */
  thresholds: readonly number[];
  /** True when the range held more snapshots than were read: the chart says so and draws no forecast. */
  truncated?: boolean;
  /** Stretches of the range (epoch ms, inclusive) that were not read: lines are drawn across them. */
  unread?: readonly { from: number; to: number }[];
  width?: number;
  height?: number;
}

/** Where the forecast may run: past `to` by this share of the range. */
const FORECAST_SHARE = 0.25;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** 1970-01-01 was a Thursday; week ticks fall on Mondays. */
const MONDAY_OFFSET = 4 * DAY;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', Arial, sans-serif";
const INK = '#1f2328';
const MUTED = '#57606a';
const GRID = '#d8dee4';
const THRESHOLD = '#b24a00';

// Okabe–Ito's hues, distinguishable with the common colour-vision deficiencies, darkened where needed
// so that a series' line and its name read against the white chart and its grey future: each at least
// 4.5:1 on #f3f4f6 (WCAG 1.4.3 for the names, 1.4.11's 3:1 for the lines; Okabe–Ito's own orange, sky
// blue and bluish green are 2.1, 2.1 and 3.1:1). Vermillion is kept for thresholds and yellow left out.
const TYPE_COLOURS: Readonly<Record<string, string>> = {
  department: '#0072B2',
  personal: '#8F6500',
  group: '#007A5A',
  [TOTALS_KEY]: '#1f2328',
};
const OTHER_COLOURS = ['#A8457E', '#00768A', '#5E6B00', '#6A3D9A'];

// Characters XML 1.0 forbids outright (controls, lone surrogates, U+FFFE/U+FFFF) become U+FFFD.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Escapes text for an XML text node or a quoted attribute. */
export function escapeXml(value: string): string {
  return value
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

function attrs(values: Record<string, string | number | undefined>): string {
  return Object.entries(values)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeXml(String(value))}"`)
    .join('');
}

/** Attributes that outline text in white, so it stays legible where it crosses a line. */
const HALO = { stroke: '#ffffff', 'stroke-width': 3, 'stroke-linejoin': 'round', 'paint-order': 'stroke' };

/**
 * A generous width of `text` at `size` px in the chart's sans-serif font, bold or not, by classes of
 * characters (nothing can be measured outside a browser).
 */
function textWidth(text: string, size: number): number {
  let ems = 0;
  for (const c of text) {
    if (c === 'M' || c === 'W' || c === 'm' || c === 'w') ems += 0.95;
    else if (c >= 'A' && c <= 'Z') ems += 0.75;
    else if (" .,:;!|'ijlIft-".includes(c)) ems += 0.4;
    else ems += 0.6;
  }
  return ems * size;
}

function round1(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return String(rounded === 0 ? 0 : rounded);
}

/** `1234567` → `1,234,567` (digits only). */
export function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * `12,345`, `8,000,000`, `1.5`, `0.0049`: GB in digits, thousands grouped (no `M`, which read as a unit
 * of its own, nor TB, whose size in GB KooDrive does not say), and never 0 for a size that is not.
 */
export function formatGB(value: number): string {
  const abs = Math.abs(value);
  const sign = value < 0 ? '-' : '';
  // BigInt writes every digit of a size past 1e21, where toFixed turns to exponents.
  if (abs >= 100 || Number.isInteger(abs))
    return `${sign}${groupThousands(BigInt(Math.round(abs)).toString())}`;
  if (abs < 0.01) return `${sign}${String(Number(abs.toPrecision(2)))}`;
  return `${sign}${trimZeros(abs.toFixed(abs >= 10 ? 1 : 2))}`;
}

/**
 * An axis label: as many decimals as the step needs (0.025 → 3), so that every gridline reads as the
 * value it stands at (formatGB's two decimals would label 0.025 and 0.075 as 0.03 and 0.08), in digits.
 */
export function formatTick(value: number, step: number): string {
  let decimals = 0;
  const whole = (x: number) => Math.round(x) >= 1 && Math.abs(Math.round(x) - x) <= x * 1e-9;
  while (decimals < 20 && !whole(step * 10 ** decimals)) decimals += 1;
  if (decimals === 0) return formatGB(value);
  return trimZeros(value.toFixed(decimals));
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function percent(ratio: number): string {
  return `${trimZeros((ratio * 100).toFixed(1))} %`;
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}

/** `2026-11-28 04:00 UTC`: unambiguous in a sentence. */
export function formatInstant(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())} UTC`;
}

function formatDays(fitted: number): string {
  // The fit's last bits are rounding noise: 12.499999999999993 days is the 12.5 of an exact line.
  const days = Number(fitted.toPrecision(12));
  if (days < 1) return 'less than a day';
  if (days < 10) return `about ${trimZeros(days.toFixed(1))} days`;
  return `about ${groupThousands(Math.round(days).toFixed(0))} days`;
}

/** Round numbers 1, 2, 5 × 10^k for an axis from 0 to at least `max`. */
export function niceScale(max: number, targetTicks = 5): { max: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: 0.2 };
  const rough = max / targetTicks;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= rough) ?? 10) * magnitude;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

type TickUnit =
  | { kind: 'ms'; size: number }
  | { kind: 'month'; size: number }
  | { kind: 'year'; size: number };

const TICK_UNITS: readonly TickUnit[] = [
  ...[1, 2, 5, 10, 15, 30].map((m): TickUnit => ({ kind: 'ms', size: m * MINUTE })),
  ...[1, 2, 3, 6, 12].map((h): TickUnit => ({ kind: 'ms', size: h * HOUR })),
  ...[1, 2, 7].map((d): TickUnit => ({ kind: 'ms', size: d * DAY })),
  ...[1, 2, 3, 6].map((m): TickUnit => ({ kind: 'month', size: m })),
  ...[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000].map((y): TickUnit => ({ kind: 'year', size: y })),
];

function approxMs(unit: TickUnit): number {
  if (unit.kind === 'ms') return unit.size;
  return unit.kind === 'month' ? unit.size * 30.4 * DAY : unit.size * 365.25 * DAY;
}

export interface TimeTick {
  at: number;
  /** First line of the label. */
  label: string;
  /** Second line, where the date or year changes (and on the first tick). */
  context?: string;
}

/** Date ticks on UTC boundaries (minutes to millennia), at most about `maxTicks` of them. */
export function timeTicks(start: number, end: number, maxTicks: number): TimeTick[] {
  const span = Math.max(end - start, 1);
  const unit = TICK_UNITS.find((u) => span / approxMs(u) <= maxTicks) ?? { kind: 'year', size: 5000 };
  const instants: number[] = [];
  if (unit.kind === 'ms') {
    const offset = unit.size === 7 * DAY ? MONDAY_OFFSET : 0;
    for (let at = Math.ceil((start - offset) / unit.size) * unit.size + offset; at <= end; at += unit.size) {
      instants.push(at);
    }
  } else {
    const first = new Date(start);
    let year = first.getUTCFullYear();
    let month = unit.kind === 'month' ? first.getUTCMonth() : 0;
    const stepMonths = unit.kind === 'month' ? unit.size : unit.size * 12;
    // Align to a multiple of the step (January, April, … or years divisible by the step).
    let index = year * 12 + month;
    index = Math.ceil(index / stepMonths) * stepMonths;
    for (; ; index += stepMonths) {
      year = Math.floor(index / 12);
      month = index % 12;
      const at = Date.UTC(year, month, 1);
      if (at < start) continue;
      if (at > end || instants.length > maxTicks * 2) break;
      instants.push(at);
    }
  }
  let previousDay = '';
  let previousYear = -1;
  return instants.map((at, i) => {
    const d = new Date(at);
    const year = d.getUTCFullYear();
    const day = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()] ?? ''}`;
    let tick: TimeTick;
    if (unit.kind === 'year') {
      tick = { at, label: String(year) };
    } else if (unit.kind === 'month') {
      tick = { at, label: MONTHS[d.getUTCMonth()] ?? '' };
      if (i === 0 || year !== previousYear) tick.context = String(year);
    } else if (unit.size >= DAY) {
      tick = { at, label: day };
      if (i === 0 || year !== previousYear) tick.context = String(year);
    } else {
      tick = { at, label: `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}` };
      if (i === 0 || day !== previousDay) tick.context = day;
    }
    previousDay = day;
    previousYear = year;
    return tick;
  });
}

function colourOf(key: string, others: Map<string, string>): string {
  const fixed = TYPE_COLOURS[key];
  if (fixed !== undefined) return fixed;
  let colour = others.get(key);
  if (colour === undefined) {
    colour = OTHER_COLOURS[others.size % OTHER_COLOURS.length] ?? '#777777';
    others.set(key, colour);
  }
  return colour;
}

/** Lines break where snapshots are missing: a gap over 3 × the usual interval is not drawn across. */
function gapThreshold(series: Map<string, SeriesPoint[]>): number {
  const times = series.get(TOTALS_KEY)?.map((p) => p.at) ?? [];
  const steps: number[] = [];
  for (let i = 1; i < times.length; i += 1) {
    const step = (times[i] ?? 0) - (times[i - 1] ?? 0);
    if (step > 0) steps.push(step);
  }
  if (steps.length < 2) return Number.POSITIVE_INFINITY;
  steps.sort((a, b) => a - b);
  const median = steps[Math.floor(steps.length / 2)] ?? 0;
  return median > 0 ? median * 3 : Number.POSITIVE_INFINITY;
}

/**
 * Moves label positions (each `y` a baseline) apart by at least `gap`, keeping their order and, as far
 * as they fit, the range from `min` to `max`: a simple vertical de-overlap.
 */
function spreadApart<T extends { y: number }>(labels: T[], gap: number, min: number, max: number): T[] {
  const sorted = [...labels].sort((a, b) => a.y - b.y);
  sorted.forEach((label, i) => {
    const above = sorted[i - 1];
    label.y = Math.max(label.y, min, above === undefined ? min : above.y + gap);
  });
  for (let i = sorted.length - 1; i >= 0; i -= 1) {
    const label = sorted[i] as T;
    const below = sorted[i + 1];
    label.y = Math.max(min, Math.min(label.y, below === undefined ? max : below.y - gap));
  }
  return sorted;
}

interface PlotPoint {
  x: number;
  y: number;
  at: number;
}

/**
 * The path of a series, broken at gaps (longer than `maxGap`, and not a stretch left unread), and the
 * points that stand alone (to be marked).
 */
function linePath(
  points: readonly PlotPoint[],
  maxGap: number,
  unread: readonly { from: number; to: number }[] = [],
): { d: string; lone: PlotPoint[] } {
  let d = '';
  const lone: PlotPoint[] = [];
  let run: PlotPoint[] = [];
  let previous: number | undefined;
  const flush = () => {
    const [only] = run;
    if (run.length === 1 && only !== undefined) lone.push(only);
    run = [];
  };
  for (const p of points) {
    const before = previous;
    const move =
      before === undefined ||
      (p.at - before > maxGap && !unread.some((stretch) => stretch.from <= p.at && stretch.to >= before));
    if (move) flush();
    run.push(p);
    // `h0` after each move: a point standing alone still has a box (its round cap).
    d += move ? `M${round1(p.x)} ${round1(p.y)}h0` : `L${round1(p.x)} ${round1(p.y)}`;
    previous = p.at;
  }
  flush();
  return { d, lone };
}

function trendSentence(
  key: string,
  points: readonly SeriesPoint[],
  trend: Trend,
  forecast: boolean,
  latestAt: number,
): string {
  const last = points.at(-1);
  if (last === undefined) return `${key}: no data`;
  const share = last.totalGB > 0 ? ` (${percent(last.allocatedGB / last.totalGB)})` : '';
  let outlook: string;
  const entry = trend[key];
  // A space type the latest snapshot no longer reports (deleted, say) has no outlook.
  if (last.at < latestAt) outlook = `not in the latest snapshot (last ${formatInstant(last.at)})`;
  // Over-allocation is a fact of the data, said with or without a forecast.
  else if (last.allocatedGB > last.totalGB) outlook = 'over-allocated';
  else if (!forecast || entry === undefined) outlook = 'no forecast';
  else if (entry.daysUntilFull === 0) outlook = 'full';
  else if (entry.slopeGBPerDay === null) outlook = 'too few snapshots for a forecast';
  else if (entry.daysUntilFull === null) {
    outlook =
      entry.slopeGBPerDay < 0 ? `shrinking by ${formatGB(-entry.slopeGBPerDay)} GB a day` : 'not growing';
  } else {
    outlook = `growing by ${formatGB(entry.slopeGBPerDay)} GB a day, full in ${formatDays(entry.daysUntilFull)}`;
  }
  return `${key}: ${formatGB(last.allocatedGB)} of ${formatGB(last.totalGB)} GB allocated${share}, ${outlook}`;
}

/** How soon a series needs attention: over-allocated first, then full, then by days until full. */
function urgency(
  points: readonly SeriesPoint[],
  trend: Trend,
  key: string,
  forecast: boolean,
  latestAt: number,
): number {
  const last = points.at(-1);
  if (last === undefined || last.at < latestAt) return Number.POSITIVE_INFINITY;
  if (last.allocatedGB > last.totalGB) return -2;
  const days = forecast ? trend[key]?.daysUntilFull : null;
  if (days === 0) return -1;
  return days ?? Number.POSITIVE_INFINITY;
}

interface LegendItem {
  label: string;
  colour: string;
  style: 'allocated' | 'total' | 'forecast' | 'full';
}

function swatch(x: number, y: number, item: LegendItem): string {
  const common = { x1: x, y1: y, x2: x + 20, y2: y, stroke: item.colour };
  if (item.style === 'total')
    return `<line${attrs({ ...common, 'stroke-width': 5, 'stroke-opacity': 0.35, 'stroke-linecap': 'round' })}/>`;
  if (item.style === 'full')
    return `<circle${attrs({ cx: x + 10, cy: y, r: 4, fill: '#ffffff', stroke: item.colour, 'stroke-width': 2 })}/>`;
  if (item.style === 'forecast')
    return `<line${attrs({ ...common, 'stroke-width': 2, 'stroke-dasharray': '5 3' })}/>`;
  return `<line${attrs({ ...common, 'stroke-width': 2.5, 'stroke-linecap': 'round' })}/>`;
}

/** Renders the chart; an empty `items` gives a chart frame that says there is nothing in the range. */
export function renderAllocationChart(input: AllocationChartInput): string {
  const width = input.width ?? 800;
  const height = input.height ?? 400;
  const { tenantId, thresholds } = input;
  const idBase = `kd-chart-${tenantId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const fromMs = input.from.getTime();
  const toMs = input.to.getTime();
  const series = allocationSeries(input.items);
  const totals = series.get(TOTALS_KEY) ?? [];
  const latest = totals.at(-1);
  const forecast = input.truncated !== true;
  // Lines break over a gap longer than this; a last snapshot further than that before `to` means the
  // snapshots stopped, and the forecast from it runs through time that has passed.
  const maxGap = gapThreshold(series);
  const staleSince = latest !== undefined && toMs - latest.at > maxGap ? latest.at : undefined;
  const rangeText = `${formatInstant(fromMs)} to ${formatInstant(toMs)}`;
  const title = `Space allocation of KooDrive tenant ${tenantId}`;

  const thresholdList = [...new Set(thresholds.filter((r) => Number.isFinite(r) && r > 0))].sort(
    (a, b) => a - b,
  );
  const thresholdText =
    thresholdList.length === 0
      ? ''
      : ` Dotted threshold lines at ${thresholdList.map(percent).join(', ')} of the latest total of all spaces; ticks at the right edge of the plot mark the same shares of each space type's own latest total.`;
  let desc: string;
  if (latest === undefined) {
    desc = `${title} from ${rangeText}: no snapshots in this range.`;
  } else {
    // The most urgent outlook first (stable: the others keep their order, space types, then totals).
    const sentences = [...series]
      .map(([key, points]) => ({
        text: trendSentence(key, points, input.trend, forecast, latest.at),
        urgency: urgency(points, input.trend, key, forecast, latest.at),
      }))
      .sort((a, b) => (a.urgency === b.urgency ? 0 : a.urgency < b.urgency ? -1 : 1))
      .map((sentence) => sentence.text);
    const count = Math.max(input.snapshotCount ?? 0, totals.length);
    const thinnedText =
      count > totals.length
        ? ` Drawn as ${groupThousands(String(totals.length))} points, each the fullest snapshot of its stretch of time.`
        : '';
    const staleText =
      staleSince === undefined
        ? ''
        : ` No snapshots since ${formatInstant(staleSince)}, ${formatDays((toMs - staleSince) / DAY)} before the end of the range: the forecasts start there.`;
    const truncatedText = forecast
      ? ''
      : ` The range holds more snapshots than one chart reads: ${groupThousands(String(count))} of them, spread over the range, are shown and no forecast is made; narrow the range to see every one.`;
    // The outlook first: the accessible name (the title) has already said whose chart and when.
    desc = `${sentences.join('; ')}.${staleText} ${title} from ${rangeText}, ${groupThousands(String(count))} ${count === 1 ? 'snapshot' : 'snapshots'}; the latest at ${formatInstant(latest.at)}.${thresholdText}${thinnedText}${truncatedText}`;
  }

  const out: string[] = [];
  out.push(
    `<svg${attrs({
      xmlns: 'http://www.w3.org/2000/svg',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-labelledby': `${idBase}-title`,
      'aria-describedby': `${idBase}-desc`,
      'font-family': FONT,
      'data-tenant': tenantId,
    })}>`,
    `<title id="${escapeXml(idBase)}-title">${escapeXml(`${title}, ${rangeText}`)}</title>`,
    `<desc id="${escapeXml(idBase)}-desc">${escapeXml(desc)}</desc>`,
    `<rect${attrs({ width, height, fill: '#ffffff' })}/>`,
  );
  // The heading, and the range at its right where both fit (a long tenant id leaves no room; the range
  // is in the title and the description too). A heading wider than the chart is squeezed to fit.
  const heading = `${tenantId} · space allocation`;
  const headingWidth = textWidth(heading, 15);
  const squeeze = headingWidth > width - 32;
  out.push(
    `<text${attrs({ x: 16, y: 24, 'font-size': 15, 'font-weight': 600, fill: INK, textLength: squeeze ? width - 32 : undefined, lengthAdjust: squeeze ? 'spacingAndGlyphs' : undefined })}>${escapeXml(heading)}</text>`,
  );
  if (16 + headingWidth + 24 + textWidth(rangeText, 12) <= width - 16) {
    out.push(
      `<text${attrs({ x: width - 16, y: 24, 'font-size': 12, fill: MUTED, 'text-anchor': 'end', 'data-range': 'true' })}>${escapeXml(rangeText)}</text>`,
    );
  }

  if (latest === undefined) {
    out.push(
      `<rect${attrs({ x: 16, y: 40, width: width - 32, height: height - 56, fill: '#f6f8fa', stroke: GRID, rx: 6 })}/>`,
      `<text${attrs({ x: width / 2, y: height / 2 + 8, 'font-size': 18, fill: MUTED, 'text-anchor': 'middle', 'data-empty': 'true' })}>No snapshots in this range</text>`,
      '</svg>',
    );
    return out.join('\n');
  }

  let span = toMs - fromMs;
  let startMs = fromMs;
  if (span < MINUTE) {
    // A one-instant range still gets a readable axis: the hour before it.
    span = HOUR;
    startMs = toMs - HOUR;
  }
  const endMs = toMs + span * FORECAST_SHARE;

  /** When the forecast of a series meets its total within the plot (its 'full' marker), if it does. */
  const fullAt = (key: string): number | undefined => {
    const entry = input.trend[key];
    const last = series.get(key)?.at(-1);
    if (!forecast || entry === undefined || entry.slopeGBPerDay === null || last === undefined)
      return undefined;
    // A space type the latest snapshot no longer reports is not forecast (see the series below).
    if (last.at < latest.at) return undefined;
    const days = entry.daysUntilFull;
    if (days === null || !(days > 0)) return undefined;
    const at = last.at + days * DAY;
    return at <= endMs ? at : undefined;
  };
  const fullKeys = [...series.keys()].filter((key) => fullAt(key) !== undefined);
  /**
   * Whether a series gets a dashed forecast (drawn below): a slope, not full already, reported by the
   * latest snapshot, and allocated left to shrink when it shrinks.
   */
  const forecastable = (key: string): boolean => {
    const entry = input.trend[key];
    const last = series.get(key)?.at(-1);
    if (!forecast || entry === undefined || entry.slopeGBPerDay === null || last === undefined) return false;
    if (entry.daysUntilFull === 0 || last.at < latest.at) return false;
    return !(entry.slopeGBPerDay < 0 && last.allocatedGB <= 0);
  };
  // The shaded future is called a forecast, and the legend explains the dashes, only when one is drawn.
  const futureWord = [...series.keys()].some(forecastable) ? 'forecast' : 'future';

  // Legend: one entry per series (its colour), then what the line styles mean; wraps when long.
  const others = new Map<string, string>();
  const legend: LegendItem[] = [...series.keys()].map((key) => ({
    label: key,
    colour: colourOf(key, others),
    style: 'allocated',
  }));
  legend.push(
    { label: 'allocated', colour: MUTED, style: 'allocated' },
    { label: 'total', colour: MUTED, style: 'total' },
  );
  if (futureWord === 'forecast') legend.push({ label: 'forecast', colour: MUTED, style: 'forecast' });
  let lx = 16;
  let ly = 48;
  const legendParts: string[] = [];
  const itemWidth = (item: LegendItem) => 28 + item.label.length * 7 + 18;
  legend.forEach((item, i) => {
    const w = itemWidth(item);
    if (lx + w > width - 16 && lx > 16) {
      lx = 16;
      ly += 18;
    }
    // A gap between the series names and the line-style key.
    if (i === series.size && lx > 16) lx += 14;
    legendParts.push(
      swatch(lx, ly - 4, item),
      `<text${attrs({ x: lx + 26, y: ly, 'font-size': 12, fill: item.colour === MUTED ? MUTED : INK })}>${escapeXml(item.label)}</text>`,
    );
    lx += w;
  });
  // The 'full' marker, when one is drawn and its entry fits on the last line.
  const fullItem: LegendItem = { label: 'full', colour: MUTED, style: 'full' };
  if (fullKeys.length > 0 && lx + itemWidth(fullItem) <= width - 16) {
    legendParts.push(
      swatch(lx, ly - 4, fullItem),
      `<text${attrs({ x: lx + 26, y: ly, 'font-size': 12, fill: MUTED })}>full</text>`,
    );
  }
  out.push(`<g class="legend">`, ...legendParts, '</g>');

  let maxY = 0;
  for (const points of series.values())
    for (const p of points) maxY = Math.max(maxY, p.allocatedGB, p.totalGB);
  // The data alone sets the range: the totals' total (their 100 %) is data, and a threshold line above
  // it would squash every series; such a line is left out (the description still names it).
  const scale = niceScale(maxY * 1.02);
  const yTicks: { value: number; label: string }[] = [];
  for (let v = 0; v <= scale.max + scale.step / 2; v += scale.step) {
    const value = Math.round(v / scale.step) * scale.step;
    yTicks.push({ value, label: formatTick(value, scale.step) });
  }

  // Plot area, its left margin as wide as the widest GB label.
  const left = Math.max(64, 18 + Math.max(...yTicks.map((t) => textWidth(t.label, 11))));
  // The right margin holds each series' name (at most a fifth of the chart).
  const longestName = Math.max(...[...series.keys()].map((key) => textWidth(key, 11)));
  const right = width - Math.max(58, Math.min(width * 0.2, longestName + 22));
  const top = ly + 28;
  const bottom = height - 42;
  const plotWidth = Math.max(right - left, 10);
  const plotHeight = Math.max(bottom - top, 10);

  const x = (at: number) => left + ((at - startMs) / (endMs - startMs)) * plotWidth;

  const latestTotal = latest.totalGB;
  const y = (gb: number) => bottom - (gb / scale.max) * plotHeight;

  const clipId = `${idBase}-plot`;
  out.push(
    `<defs><clipPath${attrs({ id: clipId })}><rect${attrs({ x: left, y: top - 4, width: plotWidth, height: plotHeight + 8 })}/></clipPath></defs>`,
  );

  // The future: shaded, so a forecast is never mistaken for data.
  const nowX = x(toMs);
  out.push(
    `<rect${attrs({ x: round1(nowX), y: top, width: round1(left + plotWidth - nowX), height: plotHeight, fill: '#f3f4f6' })}/>`,
    `<text${attrs({ x: round1(nowX + 6), y: top + 13, 'font-size': 11, fill: MUTED, 'font-style': 'italic' })}>${futureWord}</text>`,
  );
  if (staleSince !== undefined) {
    // The time since the last snapshot: tinted, so that a forecast drawn across it is not taken for data.
    const lastX = Math.max(left, x(staleSince));
    out.push(
      `<rect${attrs({ x: round1(lastX), y: top, width: round1(Math.max(0, nowX - lastX)), height: plotHeight, fill: THRESHOLD, 'fill-opacity': 0.07, 'data-stale-since': new Date(staleSince).toISOString() })}/>`,
    );
  }

  // GB axis and grid.
  const yAxis: string[] = [];
  for (const { value, label } of yTicks) {
    const py = round1(y(value));
    yAxis.push(
      `<line${attrs({ x1: left, y1: py, x2: left + plotWidth, y2: py, stroke: GRID, 'stroke-width': 1 })}/>`,
      `<text${attrs({ x: left - 8, y: round1(y(value) + 4), 'font-size': 11, fill: MUTED, 'text-anchor': 'end' })}>${escapeXml(label)}</text>`,
    );
  }
  yAxis.push(
    `<text${attrs({ x: left - 8, y: top - 8, 'font-size': 11, fill: MUTED, 'text-anchor': 'end' })}>GB</text>`,
  );
  out.push('<g class="y-axis">', ...yAxis, '</g>');

  // Time axis.
  const ticks = timeTicks(startMs, endMs, Math.max(2, Math.floor(plotWidth / 70)));
  const xAxis: string[] = [
    `<line${attrs({ x1: left, y1: bottom, x2: left + plotWidth, y2: bottom, stroke: MUTED, 'stroke-width': 1 })}/>`,
  ];
  for (const tick of ticks) {
    const px = round1(x(tick.at));
    xAxis.push(
      `<line${attrs({ x1: px, y1: bottom, x2: px, y2: bottom + 5, stroke: MUTED, 'stroke-width': 1 })}/>`,
      `<text${attrs({ x: px, y: bottom + 18, 'font-size': 11, fill: INK, 'text-anchor': 'middle' })}>${escapeXml(tick.label)}</text>`,
    );
    if (tick.context !== undefined) {
      xAxis.push(
        `<text${attrs({ x: px, y: bottom + 32, 'font-size': 10, fill: MUTED, 'text-anchor': 'middle' })}>${escapeXml(tick.context)}</text>`,
      );
    }
  }
  // The time zone at the axis's right end, on the second row, or the first where the last tick's date
  // would run into it there; where both are taken, the heading's range and the description say UTC.
  const axisEnd = left + plotWidth;
  const room = (row: 'label' | 'context') =>
    ticks.every((tick) => {
      const text = row === 'label' ? tick.label : tick.context;
      if (text === undefined) return true;
      const size = row === 'label' ? 11 : 10;
      return x(tick.at) + textWidth(text, size) / 2 + 6 <= axisEnd - textWidth('UTC', 10);
    });
  const zoneRow = room('context') ? bottom + 32 : room('label') ? bottom + 18 : undefined;
  if (zoneRow !== undefined) {
    xAxis.push(
      `<text${attrs({ x: axisEnd, y: zoneRow, 'font-size': 10, fill: MUTED, 'text-anchor': 'end', 'data-zone': 'UTC' })}>UTC</text>`,
    );
  }
  out.push('<g class="x-axis">', ...xAxis, '</g>');

  // Thresholds of all spaces: ratio × the latest total of the totals. Lines closer than a text line
  // share one label, inside the plot's left end, above the group (below it at the top of the plot).
  const thresholdParts: string[] = [];
  const thresholdGroups: { ratios: number[]; top: number; bottom: number }[] = [];
  for (const ratio of latestTotal > 0 ? thresholdList : []) {
    const gb = ratio * latestTotal;
    if (gb > scale.max) continue;
    const py = y(gb);
    thresholdParts.push(
      `<line${attrs({ x1: left, y1: round1(py), x2: left + plotWidth, y2: round1(py), stroke: THRESHOLD, 'stroke-width': 1, 'stroke-dasharray': '2 3', 'stroke-opacity': 0.8, 'data-threshold': ratio })}/>`,
    );
    const group = thresholdGroups.at(-1);
    if (group !== undefined && group.top - py < 12) {
      group.ratios.push(ratio);
      group.top = py;
    } else {
      thresholdGroups.push({ ratios: [ratio], top: py, bottom: py });
    }
  }
  const labelYOf = (group: { top: number; bottom: number }) =>
    group.top - 14 < top ? group.bottom + 12 : group.top - 4;
  // A label that has to sit below its line (at the top of the plot) can land on the next group's label,
  // which sits above that group's line: such groups share one label too, from the top down.
  for (let i = thresholdGroups.length - 1; i > 0; i -= 1) {
    const upper = thresholdGroups[i];
    const lower = thresholdGroups[i - 1];
    if (upper === undefined || lower === undefined) continue;
    if (Math.abs(labelYOf(upper) - labelYOf(lower)) < 12) {
      lower.ratios.push(...upper.ratios);
      lower.top = upper.top;
      thresholdGroups.splice(i, 1);
    }
  }
  for (const group of thresholdGroups) {
    const labelY = labelYOf(group);
    thresholdParts.push(
      `<text${attrs({ x: left + 4, y: round1(labelY), 'font-size': 10, fill: THRESHOLD, ...HALO })}>${escapeXml(`${group.ratios.map(percent).join(', ')} of all`)}</text>`,
    );
  }
  out.push('<g class="thresholds">', ...thresholdParts, '</g>');

  // Each space type's own thresholds: short ticks in its colour at the right edge of the plot (drawn
  // over the series, so that a forecast is seen to reach them), captioned above the plot.
  const tickParts: string[] = [];
  for (const [key, points] of series) {
    const own = points.at(-1)?.totalGB ?? 0;
    // Not for a space type the latest snapshot no longer reports: it has no thresholds to reach now.
    if (key === TOTALS_KEY || !(own > 0) || (points.at(-1)?.at ?? 0) < latest.at) continue;
    const colour = colourOf(key, others);
    for (const ratio of thresholdList) {
      const gb = ratio * own;
      if (gb > scale.max) continue;
      const py = round1(y(gb));
      tickParts.push(
        `<line${attrs({ x1: left + plotWidth - 9, y1: py, x2: left + plotWidth, y2: py, stroke: colour, 'stroke-width': 2, 'data-own-threshold': ratio, 'data-space': key })}><title>${escapeXml(`${key} ${percent(ratio)}: ${formatGB(gb)} GB`)}</title></line>`,
      );
    }
  }
  const shares = thresholdList.map((r) => trimZeros((r * 100).toFixed(1))).join('/');
  const tickCaption = `ticks: ${shares} % of each space`;
  // The caption, where it fits beside the GB unit.
  if (tickParts.length > 0 && textWidth(tickCaption, 10) < plotWidth - 40) {
    tickParts.push(
      `<text${attrs({ x: left + plotWidth, y: top - 8, 'font-size': 10, fill: MUTED, 'text-anchor': 'end' })}>${escapeXml(tickCaption)}</text>`,
    );
  }

  // Series: totals (faint, wide) first, allocated on top, forecasts last.
  const totalsPaths: string[] = [];
  const allocatedPaths: string[] = [];
  const forecastPaths: string[] = [];
  const nameLabels: { key: string; colour: string; lineY: number; y: number }[] = [];
  const fullLabels: { key: string; cx: number; y: number; text: string }[] = [];
  // A date as short as the range allows: with the time for a range of a few days or less, the year
  // when it is not that of the range's end.
  const shortDate = (at: number): string => {
    const d = new Date(at);
    const day = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()] ?? ''}`;
    const year = d.getUTCFullYear() === new Date(toMs).getUTCFullYear() ? '' : ` ${d.getUTCFullYear()}`;
    const time = endMs - startMs <= 4 * DAY ? ` ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}` : '';
    return `${day}${year}${time}`;
  };
  const overMarks: { key: string; x: number; y: number; label: string }[] = [];
  for (const [key, points] of series) {
    if (points.length === 0) continue;
    const colour = colourOf(key, others);
    const isTotals = key === TOTALS_KEY;
    const total = linePath(
      points.map((p) => ({ at: p.at, x: x(p.at), y: y(p.totalGB) })),
      maxGap,
      input.unread,
    );
    const allocated = linePath(
      points.map((p) => ({ at: p.at, x: x(p.at), y: y(p.allocatedGB) })),
      maxGap,
      input.unread,
    );
    // One line of the series: its total wide and faint, its allocated narrow and solid.
    const seriesPath = (part: 'total' | 'allocated', d: string, width: number, opacity?: number): string =>
      `<path${attrs({
        'data-series': `${key}-${part}`,
        d,
        fill: 'none',
        stroke: colour,
        'stroke-width': width,
        'stroke-opacity': opacity,
        'stroke-linecap': 'round',
        'stroke-linejoin': 'round',
      })}><title>${escapeXml(`${key} ${part}`)}</title></path>`;
    totalsPaths.push(seriesPath('total', total.d, isTotals ? 6 : 5, 0.3));
    allocatedPaths.push(seriesPath('allocated', allocated.d, isTotals ? 2.5 : 2));
    for (const p of allocated.lone) {
      allocatedPaths.push(
        `<circle${attrs({ cx: round1(p.x), cy: round1(p.y), r: 3.5, fill: colour, 'data-point': key })}/>`,
      );
    }
    const entry = input.trend[key];
    const last = points.at(-1);
    if (last !== undefined && last.allocatedGB > last.totalGB) {
      overMarks.push({
        key,
        x: x(last.at),
        y: y(last.allocatedGB),
        label: `${key} over-allocated: ${formatGB(last.allocatedGB)} of ${formatGB(last.totalGB)} GB`,
      });
    }
    if (last === undefined) continue;
    // The name goes where the series' line ends: its forecast's end, else its last point.
    const name = { key, colour, lineY: y(last.allocatedGB), y: 0 };
    nameLabels.push(name);
    // Not forecast: no slope, full already, or not reported by the latest snapshot (a space type
    // deleted: its line ends where its data ends, rather than a forecast drawn across the time it was
    // gone, with a 'full' date in the past).
    if (!forecastable(key) || entry?.slopeGBPerDay == null) continue;
    const slope = entry.slopeGBPerDay;
    const full = fullAt(key);
    let endAt = endMs;
    if (full !== undefined) {
      endAt = full;
    } else if (slope < 0 && last.allocatedGB + (slope * (endMs - last.at)) / DAY < 0) {
      endAt = last.at + (last.allocatedGB / -slope) * DAY;
    }
    if (endAt <= last.at) continue;
    const endGB = last.allocatedGB + (slope * (endAt - last.at)) / DAY;
    name.lineY = y(endGB);
    forecastPaths.push(
      `<path${attrs({ 'data-series': `${key}-forecast`, d: `M${round1(x(last.at))} ${round1(y(last.allocatedGB))}L${round1(x(endAt))} ${round1(y(endGB))}`, fill: 'none', stroke: colour, 'stroke-width': 2, 'stroke-dasharray': '6 4', 'stroke-linecap': 'butt' })}><title>${escapeXml(`${key} forecast`)}</title></path>`,
    );
    if (full !== undefined) {
      forecastPaths.push(
        `<circle${attrs({ cx: round1(x(endAt)), cy: round1(y(endGB)), r: 4, fill: '#ffffff', stroke: colour, 'stroke-width': 2, 'data-full': key })}><title>${escapeXml(`${key} full around ${formatInstant(endAt)}`)}</title></circle>`,
      );
      fullLabels.push({ key, cx: x(endAt), y: y(endGB), text: `${key} full ~${shortDate(endAt)}` });
    }
  }
  out.push(
    `<g class="series"${attrs({ 'clip-path': `url(#${clipId})` })}>`,
    ...totalsPaths,
    ...allocatedPaths,
    ...forecastPaths,
    '</g>',
  );
  // When a space fills: its name and the date above the marker (below it at the top of the plot), kept
  // inside the plot and clear of the ticks at its right edge; labels of markers at one height stack.
  const fullParts: string[] = [];
  const forecastWordEnd = nowX + 6 + textWidth(futureWord, 11);
  const fullPlaced = fullLabels.map((label) => {
    const w = textWidth(label.text, 11);
    const labelX = Math.max(left + 2, Math.min(label.cx - w / 2, left + plotWidth - 12 - w));
    let labelY = label.y - 18 < top ? label.y + 17 : label.y - 9;
    // Not over the word 'forecast' at the top of the shaded part.
    if (labelY < top + 27 && labelX < forecastWordEnd && labelX + w > nowX) labelY = top + 27;
    return { ...label, x: labelX, y: labelY };
  });
  for (const label of spreadApart(fullPlaced, 13, top + 11, bottom - 4)) {
    fullParts.push(
      `<text${attrs({ x: round1(label.x), y: round1(label.y), 'font-size': 11, fill: INK, 'data-full-label': label.key, ...HALO })}>${escapeXml(label.text)}</text>`,
    );
  }
  out.push('<g class="full">', ...fullParts, '</g>');
  // Series names in the right margin, level with where each line ends, moved apart where they would
  // overlap; a leader in the series' colour joins a moved name to its height at the plot's edge.
  const nameParts: string[] = [];
  const edge = left + plotWidth;
  // More names than lines beside the plot (many space types): they may rise to the legend (nothing else
  // is right of the plot there), and where even that is too short, they close up in a smaller font, so
  // that no two overprint.
  const nameMax = bottom + 8;
  const nameMin = (nameLabels.length - 1) * 12 > nameMax - (top + 4) ? ly + 14 : top + 4;
  const nameGap = Math.min(12, (nameMax - nameMin) / Math.max(1, nameLabels.length - 1));
  const nameSize = Math.min(11, Math.floor(nameGap * 10) / 10);
  for (const label of spreadApart(
    nameLabels.map((n) => {
      // A forecast may run out of the plot (it is clipped): its name stays at the edge it leaves by.
      const lineY = Math.max(top, Math.min(bottom, n.lineY));
      return { ...n, lineY, y: lineY + 4 };
    }),
    nameGap,
    nameMin,
    nameMax,
  )) {
    nameParts.push(
      `<line${attrs({ x1: round1(edge + 1), y1: round1(label.lineY), x2: round1(edge + 6), y2: round1(label.y - 4), stroke: label.colour, 'stroke-width': 1.5 })}/>`,
      `<text${attrs({ x: round1(edge + 8), y: round1(label.y), 'font-size': nameSize, 'font-weight': 600, fill: label.colour, 'data-series-name': label.key })}>${escapeXml(label.key)}</text>`,
    );
  }
  out.push('<g class="series-names">', ...nameParts, '</g>');
  // Over-allocation: a marker at the series' last point, and 'over' above it to the left (the data's
  // side of the now line).
  const overParts: string[] = [];
  for (const mark of overMarks) {
    overParts.push(
      `<circle${attrs({ cx: round1(mark.x), cy: round1(mark.y), r: 5, fill: THRESHOLD, stroke: '#ffffff', 'stroke-width': 1.5, 'data-over': mark.key })}><title>${escapeXml(mark.label)}</title></circle>`,
    );
  }
  const overLabels = overMarks.map((mark) => ({ x: mark.x - 8, y: mark.y - 6, key: mark.key }));
  for (const label of spreadApart(overLabels, 12, top + 10, bottom - 2)) {
    overParts.push(
      `<text${attrs({ x: round1(label.x), y: round1(label.y), 'font-size': 11, 'font-weight': 600, fill: THRESHOLD, 'text-anchor': 'end', 'data-over-label': label.key, ...HALO })}>over</text>`,
    );
  }
  out.push('<g class="over">', ...overParts, '</g>');
  out.push('<g class="own-thresholds">', ...tickParts, '</g>');
  // The boundary between data and forecast, drawn over the lines so it stays visible.
  out.push(
    `<line${attrs({ x1: round1(nowX), y1: top, x2: round1(nowX), y2: bottom, stroke: MUTED, 'stroke-width': 1, 'stroke-dasharray': '1 2' })}/>`,
  );
  if (!forecast) {
    out.push(
      `<text${attrs({ x: left + 8, y: top + 13, 'font-size': 11, fill: THRESHOLD })}>${escapeXml('More snapshots than one chart reads: a sample is shown, no forecast. Narrow the range.')}</text>`,
    );
  }
  if (staleSince !== undefined) {
    // Said beside the now line (under the truncation notice when there is one), right-aligned to it
    // where it fits.
    const text = `no snapshots since ${formatInstant(staleSince)}`;
    const fits = nowX - 6 - textWidth(text, 11) >= left;
    out.push(
      `<text${attrs({ x: round1(fits ? nowX - 6 : left + 4), y: forecast ? top + 13 : top + 27, 'font-size': 11, 'font-weight': 600, fill: THRESHOLD, 'text-anchor': fits ? 'end' : 'start', 'data-stale': 'true', ...HALO })}>${escapeXml(text)}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('\n');
}
