import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CHART_POINTS, thinForChart } from '../../handlers/chart.ts';
import { chartPath, fullestFirst, type NewestSnapshot, renderDashboard } from '../../lib/chart/dashboard.ts';
import {
  type AllocationChartInput,
  escapeXml,
  formatGB,
  formatTick,
  niceScale,
  renderAllocationChart,
  timeTicks,
} from '../../lib/chart/svg.ts';
import { deriveAllocation, normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { computeTrend } from '../../lib/trend.ts';
import type { Allocation } from '../../lib/types.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TO = new Date('2026-11-28T04:00:00.000Z');
const FROM = new Date(TO.getTime() - 7 * DAY);

/**
 * A small well-formedness check (no XML dependency): one root, tags nest and close, attributes are
 * quoted and unique, every `&` starts a known entity, no stray `<` or `>`. Returns the element names.
 */
function checkWellFormedXml(xml: string): string[] {
  const tag = /<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*"[^"<]*")*)\s*(\/?)>/y;
  const attribute = /([A-Za-z_][\w.:-]*)\s*=\s*"([^"<]*)"/g;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9A-Fa-f]+);)/;
  const stack: string[] = [];
  const names: string[] = [];
  let roots = 0;
  let i = 0;
  while (i < xml.length) {
    if (xml[i] === '<') {
      tag.lastIndex = i;
      const match = tag.exec(xml);
      if (match === null) throw new Error(`malformed tag at ${i}: ${xml.slice(i, i + 60)}`);
      const [whole, closing = '', name = '', attributes = '', selfClosing = ''] = match;
      if (closing !== '') {
        if (attributes !== '' || selfClosing !== '') throw new Error(`bad closing tag ${whole}`);
        const open = stack.pop();
        if (open !== name) throw new Error(`</${name}> closes <${open}>`);
      } else {
        if (stack.length === 0) roots += 1;
        names.push(name);
        const seen = new Set<string>();
        for (const [, attrName = '', value = ''] of attributes.matchAll(attribute)) {
          if (seen.has(attrName)) throw new Error(`duplicate attribute ${attrName} on <${name}>`);
          seen.add(attrName);
          if (entity.test(value)) throw new Error(`bad & in ${attrName}="${value}"`);
        }
        if (selfClosing === '') stack.push(name);
      }
      i += whole.length;
    } else {
      const end = xml.indexOf('<', i);
      const text = xml.slice(i, end === -1 ? xml.length : end);
      if (stack.length === 0 && text.trim() !== '') throw new Error(`text outside the root: ${text}`);
      if (entity.test(text) || text.includes('>')) throw new Error(`unescaped text: ${text.slice(0, 60)}`);
      i += text.length;
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}

/** A stored snapshot as the store reads it back (which, unlike a KooDrive answer, may list over 15 types). */
function item(at: number, spaces: { type: number; allocated: number; total: number }[]): Allocation {
  const normalized = deriveAllocation(
    spaces.map((s) => ({ type: s.type, allocatedGB: s.allocated, totalGB: s.total })),
  );
  return { tenantId: 'acme', observedAt: new Date(at).toISOString(), ...normalized };
}

/** A week of hourly snapshots: department grows 10 GB a day, personal is flat, group shrinks. */
function week(): Allocation[] {
  return Array.from({ length: 7 * 24 + 1 }, (_, h) =>
    item(FROM.getTime() + h * HOUR, [
      { type: 0, allocated: 500 + (10 * h) / 24, total: 1000 },
      { type: 1, allocated: 300, total: 500 },
      { type: 2, allocated: 200 - (2 * h) / 24, total: 400 },
    ]),
  );
}

function render(overrides: Partial<AllocationChartInput> = {}): string {
  const items = overrides.items ?? week();
  return renderAllocationChart({
    tenantId: 'acme',
    from: FROM,
    to: TO,
    items,
    trend: computeTrend(items),
    thresholds: [0.8, 0.9, 1],
    ...overrides,
  });
}

function attributeOf(svg: string, selector: RegExp, name: string): string | undefined {
  const element = selector.exec(svg)?.[0];
  return element === undefined ? undefined : new RegExp(`\\s${name}="([^"]*)"`).exec(element)?.[1];
}

function pathOf(svg: string, series: string): string | undefined {
  return attributeOf(svg, new RegExp(`<path[^>]*data-series="${series}"[^>]*>`), 'd');
}

/** Every `<tag>` of the SVG as its attributes, and its text (up to the next tag) as `text`. */
function elements(svg: string, tag: string): Record<string, string>[] {
  return [...svg.matchAll(new RegExp(`<${tag}\\s([^>]*?)/?>([^<]*)`, 'g'))].map(
    ([, attributes = '', text = '']) => ({
      ...Object.fromEntries(
        [...attributes.matchAll(/([\w:-]+)="([^"]*)"/g)].map(([, n = '', v = '']) => [n, v]),
      ),
      text,
    }),
  );
}

function descOf(svg: string): string {
  return /<desc[^>]*>([^<]*)<\/desc>/.exec(svg)?.[1] ?? '';
}

function coordinates(d: string): { x: number; y: number }[] {
  return [...d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map(([, x, y]) => ({ x: Number(x), y: Number(y) }));
}

describe('renderAllocationChart', () => {
  it('is well-formed XML with one <svg> root that scales and names itself for screen readers', () => {
    const svg = render();
    const names = checkWellFormedXml(svg);
    expect(names[0]).toBe('svg');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toContain('viewBox="0 0 800 400"');
    expect(svg).toContain('role="img"');
    // Named by the title alone; the long description describes it.
    const labelledBy = attributeOf(svg, /<svg[^>]*>/, 'aria-labelledby') ?? '';
    const describedBy = attributeOf(svg, /<svg[^>]*>/, 'aria-describedby') ?? '';
    expect(labelledBy).toMatch(/^[\w-]+$/);
    expect(describedBy).toMatch(/^[\w-]+$/);
    expect(svg).toContain(`<title id="${labelledBy}">`);
    expect(svg).toContain(`<desc id="${describedBy}">`);
  });

  it('draws allocated, total and forecast paths per space type and for the totals', () => {
    const svg = render();
    for (const key of ['department', 'personal', 'group', 'totals']) {
      for (const kind of ['allocated', 'total']) {
        const d = pathOf(svg, `${key}-${kind}`);
        expect(d, `${key}-${kind}`).toBeDefined();
        expect(coordinates(d ?? '').length).toBe(7 * 24 + 1);
      }
    }
    // Every series with a slope gets a forecast; the flat one stays level.
    for (const key of ['department', 'personal', 'group', 'totals']) {
      expect(pathOf(svg, `${key}-forecast`), key).toBeDefined();
    }
    const [start, end] = coordinates(pathOf(svg, 'personal-forecast') ?? '');
    expect(end?.y).toBe(start?.y);
  });

  it('keeps every series point inside the plot and draws larger values higher', () => {
    const svg = render();
    const allocated = coordinates(pathOf(svg, 'department-allocated') ?? '');
    for (const p of allocated) {
      expect(p.x).toBeGreaterThan(0);
      expect(p.x).toBeLessThan(800);
      expect(p.y).toBeGreaterThan(0);
      expect(p.y).toBeLessThan(400);
    }
    const [first] = allocated;
    const last = allocated.at(-1);
    // Time runs left to right; growth goes up (smaller y).
    expect(last?.x).toBeGreaterThan(first?.x ?? Number.POSITIVE_INFINITY);
    expect(last?.y).toBeLessThan(first?.y ?? Number.NEGATIVE_INFINITY);
    // The total line of department (1000) lies above its allocated line (500–570).
    const total = coordinates(pathOf(svg, 'department-total') ?? '');
    expect(total[0]?.y).toBeLessThan(first?.y ?? 0);
  });

  it('extends the forecast from the last point along the slope into the future, up to 25 % of the range', () => {
    const svg = render();
    const [start, end] = coordinates(pathOf(svg, 'department-forecast') ?? '');
    const last = coordinates(pathOf(svg, 'department-allocated') ?? '').at(-1);
    expect(start).toEqual(last);
    expect(end?.x).toBeGreaterThan(start?.x ?? Number.POSITIVE_INFINITY);
    expect(end?.y).toBeLessThan(start?.y ?? 0);
    // 43 days to full is beyond the 1.75 days of forecast room: no "full" marker for department.
    expect(svg).not.toContain('data-full="department"');
  });

  it('ends the forecast where it meets the total, with a marker', () => {
    // 100 GB a day from 500 of 1000: the last item (day 4) has 900, full a day later, within the room.
    const items = [0, 1, 2, 3, 4].map((d) =>
      item(FROM.getTime() + (d + 2) * DAY, [{ type: 0, allocated: 500 + 100 * d, total: 1000 }]),
    );
    const svg = render({ items });
    expect(svg).toContain('data-full="department"');
    const [, end] = coordinates(pathOf(svg, 'department-forecast') ?? '');
    const total = coordinates(pathOf(svg, 'department-total') ?? '');
    expect(end?.y).toBeCloseTo(total[0]?.y ?? 0, 0);
  });

  it('still marks a space that fills exactly at the end of the plot', () => {
    // 100 GB a day up to 825 of 1,000 GB at the end of the range: full 1.75 days later, just where the
    // plot ends (the range's end plus a quarter of its 7 days).
    const items = [0, 1, 2, 3, 4].map((d) =>
      item(TO.getTime() - (4 - d) * DAY, [{ type: 0, allocated: 425 + 100 * d, total: 1000 }]),
    );
    const svg = render({ items });
    const marker = elements(svg, 'circle').find((c) => c['data-full'] === 'department');
    expect(marker).toBeDefined();
    expect(svg).toContain('<title>department full around 2026-11-29 22:00 UTC</title>');
    // At the plot's right edge, where the own-threshold ticks end.
    const plotEdge = Number(elements(svg, 'line').find((l) => l['data-own-threshold'] !== undefined)?.x2);
    expect(Number(marker?.cx)).toBeCloseTo(plotEdge, 0);
    expect(elements(svg, 'text').find((t) => t['data-full-label'] === 'department')?.text).toBe(
      'department full ~29 Nov',
    );
  });

  it('writes when a space fills beside its marker, for a chart shown as an image (no hover)', () => {
    // Full a day after the last item (27 Nov 04:00): 28 Nov.
    const items = [0, 1, 2, 3, 4].map((d) =>
      item(FROM.getTime() + (d + 2) * DAY, [{ type: 0, allocated: 500 + 100 * d, total: 1000 }]),
    );
    const svg = render({ items });
    const marker = elements(svg, 'circle').find((c) => c['data-full'] === 'department');
    const label = elements(svg, 'text').find((t) => t['data-full-label'] === 'department');
    expect(label?.text).toBe('department full ~28 Nov');
    // Just above the marker, around it.
    expect(Number(marker?.cy) - Number(label?.y)).toBeGreaterThan(0);
    expect(Number(marker?.cy) - Number(label?.y)).toBeLessThan(20);
    expect(Number(label?.x)).toBeLessThan(Number(marker?.cx));
    expect(Number(label?.x)).toBeGreaterThan(Number(marker?.cx) - 100);
    // The legend says what the hollow circle is.
    const legend = svg.slice(
      svg.indexOf('<g class="legend">'),
      svg.indexOf('</g>', svg.indexOf('<g class="legend">')),
    );
    expect(legend).toMatch(/<circle[^>]*fill="#ffffff"[^>]*\/>\n<text[^>]*>full<\/text>/);
    // Without a marker, no such entry.
    expect(render()).not.toContain('>full</text>');
  });

  it('gives the time too when a space fills within a short range, and keeps the label off the right edge', () => {
    // An hour of minutes, growing 1 GB a minute to 990 of 1,000 GB at 05:00: full at 05:10, 5 minutes
    // before the plot ends (05:00 plus a quarter of the range).
    const to = new Date('2026-11-28T05:00:00.000Z');
    const items = Array.from({ length: 61 }, (_, m) =>
      item(to.getTime() - (60 - m) * 60_000, [{ type: 0, allocated: 930 + m, total: 1000 }]),
    );
    const svg = render({ items, from: new Date(to.getTime() - HOUR), to });
    const marker = elements(svg, 'circle').find((c) => c['data-full'] === 'department');
    const label = elements(svg, 'text').find((t) => t['data-full-label'] === 'department');
    expect(label?.text).toBe('department full ~28 Nov 05:10');
    // Centred on the marker it would run past the plot's right edge and over the ticks: shifted left.
    expect(Number(label?.x)).toBeLessThan(Number(marker?.cx) - 120);
  });

  it('draws threshold lines at ratio × the latest total of all spaces, and labels them so', () => {
    const svg = render();
    expect(svg).toContain('>80 % of all</text>');
    expect(svg).toContain('>90 % of all</text>');
    expect(svg).toContain('>100 % of all</text>');
    expect(svg.match(/data-threshold="/g)).toHaveLength(3);
    // Totals: 1000 + 500 + 400 = 1900 GB, so the 100 % line lies on the totals' total line.
    const y100 = Number(attributeOf(svg, /<line[^>]*data-threshold="1"[^>]*>/, 'y1'));
    const totalsTotal = coordinates(pathOf(svg, 'totals-total') ?? '').at(-1);
    expect(y100).toBeCloseTo(totalsTotal?.y ?? 0, 0);
    expect(descOf(svg)).toContain(
      'Dotted threshold lines at 80 %, 90 %, 100 % of the latest total of all spaces; ticks at the right edge of the plot mark the same shares of each space type',
    );
  });

  it("ticks each space type's own thresholds at the right edge of the plot, in its colour", () => {
    const svg = render();
    // Three thresholds for each of three space types; the totals have their lines.
    expect(svg.match(/data-own-threshold="/g)).toHaveLength(9);
    expect(svg).not.toContain('data-space="totals"');
    const tick = (space: string, ratio: number) =>
      elements(svg, 'line').find(
        (l) => l['data-space'] === space && l['data-own-threshold'] === String(ratio),
      );
    const tickY = (space: string, ratio: number) => Number(tick(space, ratio)?.y1);
    // department's 100 % is its own total (1,000 GB), far below the 100 % line of all (1,900 GB).
    const departmentTotal = coordinates(pathOf(svg, 'department-total') ?? '').at(-1)?.y ?? 0;
    expect(tickY('department', 1)).toBeCloseTo(departmentTotal, 0);
    const y100ofAll = Number(attributeOf(svg, /<line[^>]*data-threshold="1"[^>]*>/, 'y1'));
    expect(tickY('department', 1)).toBeGreaterThan(y100ofAll + 50);
    // 80 % of 1,000 GB: a fifth of the way from the total down to the axis at 0.
    const zero = Number(elements(svg, 'text').find((t) => t.text === '0')?.y) - 4;
    expect(tickY('department', 0.8)).toBeCloseTo(departmentTotal + (zero - departmentTotal) * 0.2, 0);
    expect(tick('personal', 0.9)?.stroke).toBe('#8F6500');
    expect(Number(tick('personal', 0.9)?.x2)).toBe(Number(tick('group', 1)?.x2));
    expect(svg).toContain('>ticks: 80/90/100 % of each space</text>');
  });

  it('sets the GB range by the data: a threshold above every total does not squash the lines', () => {
    const svg = render({ thresholds: [0.8, 1.5] });
    // Totals end at 1,900 GB: the axis stops at 2,000, not at the 2,850 of 150 %.
    expect(svg).toContain('>2,000</text>');
    expect(svg).not.toContain('>3,000</text>');
    expect(svg).toContain('data-threshold="0.8"');
    expect(svg).not.toContain('data-threshold="1.5"');
  });

  it('gives threshold lines closer than a text line one label', () => {
    const svg = render({ thresholds: [0.97, 0.98, 0.99, 1] });
    expect(svg.match(/data-threshold="/g)).toHaveLength(4);
    expect(svg).toContain('>97 %, 98 %, 99 %, 100 % of all</text>');
  });

  it('keeps threshold labels apart when the top one has to sit below its line (0.9, 0.95, 1 near the top)', () => {
    // Totals end at 2,400 GB on an axis to 2,500: the 100 % line is too near the plot's top for a label
    // above it, and a label below it would land on the 95 % line's label, 14 px lower.
    const items = Array.from({ length: 57 }, (_, i) =>
      item(FROM.getTime() + i * 3 * HOUR, [
        { type: 0, allocated: 1400 + i * 3, total: 1600 },
        { type: 1, allocated: 500, total: 800 },
      ]),
    );
    const svg = render({ items, thresholds: [0.9, 0.95, 1] });
    expect(svg.match(/data-threshold="/g)).toHaveLength(3);
    const labels = elements(svg, 'text').filter((t) => t.text?.endsWith('of all'));
    // Every threshold is named in some label.
    expect(labels.map((l) => l.text).join(' ')).toMatch(/90 %.*95 %.*100 %|90 %, 95 %, 100 %/);
    const ys = labels.map((l) => Number(l.y)).sort((a, b) => a - b);
    for (let i = 1; i < ys.length; i += 1) {
      // 10 px text: baselines a text line apart at least.
      expect((ys[i] ?? 0) - (ys[i - 1] ?? 0)).toBeGreaterThanOrEqual(11);
    }
  });

  it('forecasts no space type that the latest snapshot no longer reports (a deleted group space)', () => {
    // group is reported for the first three days only, growing fast; department and the totals go on.
    const items = Array.from({ length: 57 }, (_, i) =>
      item(FROM.getTime() + i * 3 * HOUR, [
        { type: 0, allocated: 500 + i * 3, total: 1000 },
        ...(i < 25 ? [{ type: 2, allocated: 100 + i * 10, total: 600 }] : []),
      ]),
    );
    const svg = render({ items });
    // Its line stays, as history; no forecast across the days it was gone, no "full" in the past.
    expect(pathOf(svg, 'group-allocated')).toBeDefined();
    expect(pathOf(svg, 'group-forecast')).toBeUndefined();
    expect(svg).not.toContain('data-full="group"');
    expect(svg).not.toContain('data-full-label="group"');
    expect(svg).not.toMatch(/data-own-threshold="[^"]*" data-space="group"/);
    expect(svg).toMatch(/data-own-threshold="[^"]*" data-space="department"/);
    const desc = descOf(svg);
    expect(desc).toContain(
      'group: 340 of 600 GB allocated (56.7 %), not in the latest snapshot (last 2026-11-24 04:00 UTC)',
    );
    // Not the description's most urgent news: department, which goes on, comes first.
    expect(desc.startsWith('department:')).toBe(true);
    expect(pathOf(svg, 'department-forecast')).toBeDefined();
  });

  it('marks an over-allocated series at its last point and says "over" there', () => {
    // department ends at 1,100 of 1,000 GB; personal and group stay within their totals.
    const items = week().map((i, h) =>
      item(Date.parse(i.observedAt), [
        { type: 0, allocated: 900 + (h / 168) * 200, total: 1000 },
        { type: 1, allocated: 300, total: 500 },
        { type: 2, allocated: 200, total: 400 },
      ]),
    );
    const svg = render({ items });
    checkWellFormedXml(svg);
    const markers = elements(svg, 'circle').filter((c) => c['data-over'] !== undefined);
    expect(markers.map((c) => c['data-over'])).toEqual(['department']);
    const last = coordinates(pathOf(svg, 'department-allocated') ?? '').at(-1);
    expect(Number(markers[0]?.cx)).toBeCloseTo(last?.x ?? 0, 0);
    expect(Number(markers[0]?.cy)).toBeCloseTo(last?.y ?? 0, 0);
    expect(svg).toContain('<title>department over-allocated: 1,100 of 1,000 GB</title>');
    const label = elements(svg, 'text').find((t) => t['data-over-label'] === 'department');
    expect(label?.text).toBe('over');
    // Beside the marker, on the data's side, just above it.
    expect(Number(label?.x)).toBeLessThan(last?.x ?? 0);
    expect(Number(label?.x)).toBeGreaterThan((last?.x ?? 0) - 20);
    expect(Number(label?.y)).toBeLessThan(last?.y ?? 0);
    expect(Number(label?.y)).toBeGreaterThan((last?.y ?? 0) - 20);
    // Nothing is over in the usual week.
    expect(render()).not.toContain('data-over=');
  });

  it('marks the totals too when all spaces together are over-allocated', () => {
    // One space type, ending at 1,100 of 1,000 GB: the totals are over as well.
    const items = week().map((i, h) =>
      item(Date.parse(i.observedAt), [{ type: 0, allocated: 900 + (h / 168) * 200, total: 1000 }]),
    );
    const svg = render({ items });
    checkWellFormedXml(svg);
    const markers = elements(svg, 'circle').filter((c) => c['data-over'] !== undefined);
    expect(markers.map((c) => c['data-over'])).toEqual(['department', 'totals']);
    const last = coordinates(pathOf(svg, 'totals-allocated') ?? '').at(-1);
    expect(Number(markers[1]?.cx)).toBeCloseTo(last?.x ?? 0, 0);
    expect(Number(markers[1]?.cy)).toBeCloseTo(last?.y ?? 0, 0);
    expect(svg).toContain('<title>totals over-allocated: 1,100 of 1,000 GB</title>');
    expect(elements(svg, 'text').find((t) => t['data-over-label'] === 'totals')?.text).toBe('over');
  });

  it('calls a space allocated exactly to its total full, not over-allocated, and ranks over-allocation first', () => {
    // department grows to exactly 1,000 of 1,000 GB; group ends over its total; personal is flat.
    const items = week().map((i, h) =>
      item(Date.parse(i.observedAt), [
        { type: 0, allocated: 500 + (500 * h) / 168, total: 1000 },
        { type: 1, allocated: 300, total: 500 },
        { type: 2, allocated: 450, total: 400 },
      ]),
    );
    const svg = render({ items });
    const desc = descOf(svg);
    // Over-allocated before full, though department comes first among the space types.
    expect(desc).toMatch(
      /^group: 450 of 400 GB allocated \(112\.5 %\), over-allocated; department: 1,000 of 1,000 GB allocated \(100 %\), full; totals: [^;]*full in about 2\.1 days; personal: [^;]*not growing\. /,
    );
    // Only group is marked over; department, exactly full, is not.
    expect(
      elements(svg, 'circle')
        .filter((c) => c['data-over'] !== undefined)
        .map((c) => c['data-over']),
    ).toEqual(['group']);
    expect(svg).not.toContain('department over-allocated');
  });

  it('says beside the now line when the snapshots stopped, and tints the time since', () => {
    // Hourly snapshots until two days before the end of the range.
    const items = week().filter((_, h) => h <= 5 * 24);
    const svg = render({ items });
    checkWellFormedXml(svg);
    const notice = elements(svg, 'text').find((t) => t['data-stale'] === 'true');
    expect(notice?.text).toBe('no snapshots since 2026-11-26 04:00 UTC');
    const nowX = Number(elements(svg, 'line').find((l) => l['stroke-dasharray'] === '1 2')?.x1);
    expect(notice?.['text-anchor']).toBe('end');
    expect(Number(notice?.x)).toBeLessThan(nowX);
    expect(Number(notice?.x)).toBeGreaterThan(nowX - 10);
    const tint = elements(svg, 'rect').find((r) => r['data-stale-since'] !== undefined);
    expect(tint?.['data-stale-since']).toBe('2026-11-26T04:00:00.000Z');
    const lastX = coordinates(pathOf(svg, 'totals-allocated') ?? '').at(-1)?.x ?? 0;
    expect(Number(tint?.x)).toBeCloseTo(lastX, 0);
    expect(Number(tint?.x) + Number(tint?.width)).toBeCloseTo(nowX, 0);
    expect(descOf(svg)).toContain(
      'No snapshots since 2026-11-26 04:00 UTC, about 2 days before the end of the range: the forecasts start there.',
    );
    // Within the usual spacing of the snapshots, nothing is said.
    for (const fresh of [render(), render({ to: new Date(TO.getTime() + 2 * HOUR) })]) {
      expect(fresh).not.toContain('data-stale');
      expect(descOf(fresh)).not.toContain('No snapshots since');
    }
  });

  it('puts the note that the snapshots stopped under the truncation notice, not over it', () => {
    const items = week().filter((_, h) => h <= 5 * 24);
    const svg = render({ items, truncated: true });
    const texts = elements(svg, 'text');
    const truncation = texts.find((t) => t.text?.startsWith('More snapshots than one chart reads'));
    const stale = texts.find((t) => t['data-stale'] === 'true');
    expect(stale?.text).toBe('no snapshots since 2026-11-26 04:00 UTC');
    // A line of 11 px text below it.
    expect(Number(stale?.y) - Number(truncation?.y)).toBeGreaterThanOrEqual(12);
    // Without the notice, the note takes its line.
    const alone = elements(render({ items }), 'text').find((t) => t['data-stale'] === 'true');
    expect(Number(alone?.y)).toBe(Number(truncation?.y));
  });

  it("names each series at the right, level with its line's end, and moves names apart that would overlap", () => {
    const svg = render();
    const names = elements(svg, 'text').filter((t) => t['data-series-name'] !== undefined);
    expect(names.map((n) => n.text).sort()).toEqual(['department', 'group', 'personal', 'totals']);
    const plotEdge = Number(elements(svg, 'line').find((l) => l['data-own-threshold'] !== undefined)?.x2);
    for (const name of names) {
      expect(Number(name.x)).toBeGreaterThan(plotEdge);
      // Inside the chart, even the longest name (about 7 px a character).
      expect(Number(name.x) + (name.text?.length ?? 0) * 7).toBeLessThanOrEqual(800);
      // Where its line ends: the forecast's end, here clear of the others.
      const end = coordinates(pathOf(svg, `${name.text}-forecast`) ?? '').at(-1)?.y ?? 0;
      expect(Number(name.y) - 4).toBeCloseTo(end, 0);
      expect(name.fill).toBe(
        attributeOf(svg, new RegExp(`<path[^>]*data-series="${name.text}-allocated"[^>]*>`), 'stroke'),
      );
    }
    // Two flat series at one height: their names are a text line apart, in the lines' order.
    const level = week().map((i) =>
      item(Date.parse(i.observedAt), [
        { type: 0, allocated: 300, total: 1000 },
        { type: 1, allocated: 300, total: 500 },
      ]),
    );
    const stacked = elements(render({ items: level }), 'text').filter(
      (t) => t['data-series-name'] !== undefined,
    );
    const [first, second] = ['department', 'personal'].map((key) =>
      Number(stacked.find((n) => n.text === key)?.y),
    );
    expect(Math.abs((first ?? 0) - (second ?? 0))).toBeGreaterThanOrEqual(12);
  });

  it('keeps the series names apart with 20 space types, where they outnumber the lines of the margin', () => {
    const items = Array.from({ length: 29 }, (_, i) =>
      item(FROM.getTime() + i * 6 * HOUR, [
        ...Array.from({ length: 20 }, (_, type) => ({
          type,
          allocated: 100 * type + i * (type % 3),
          total: 100 * type + 500,
        })),
      ]),
    );
    const svg = render({ items });
    const names = elements(svg, 'text').filter((t) => t['data-series-name'] !== undefined);
    expect(names).toHaveLength(21);
    const placed = names
      .map((n) => ({ y: Number(n.y), size: Number(n['font-size']) }))
      .sort((a, b) => a.y - b.y);
    for (let i = 1; i < placed.length; i += 1) {
      const [above, below] = [placed[i - 1], placed[i]];
      // No two names overprint: baselines at least a text line (the font size) apart.
      expect((below?.y ?? 0) - (above?.y ?? 0)).toBeGreaterThanOrEqual(below?.size ?? 11);
    }
    // And still legible.
    expect(Math.min(...placed.map((p) => p.size))).toBeGreaterThanOrEqual(8);
  });

  it('leaves the range out of the heading when a long tenant id would run into it', () => {
    const range = (svg: string) => elements(svg, 'text').find((t) => t['data-range'] === 'true')?.text;
    expect(range(render())).toBe('2026-11-21 04:00 UTC to 2026-11-28 04:00 UTC');
    const tenantId = `finance-department-emea-${'x'.repeat(40)}`;
    expect(tenantId).toHaveLength(64);
    const svg = render({ tenantId, items: week().map((i) => ({ ...i, tenantId })) });
    expect(range(svg)).toBeUndefined();
    // Still named in full, and the range is still in the title.
    const heading = elements(svg, 'text').find((t) => t.text === `${tenantId} · space allocation`);
    expect(heading?.x).toBe('16');
    expect(svg).toContain(`, 2026-11-21 04:00 UTC to 2026-11-28 04:00 UTC</title>`);
    // A heading wider than the chart is squeezed into it.
    expect(heading?.textLength).toBeUndefined();
    const wide = render({
      tenantId: 'W'.repeat(64),
      items: week().map((i) => ({ ...i, tenantId: 'W'.repeat(64) })),
    });
    expect(elements(wide, 'text').find((t) => t.text?.startsWith('WWW'))?.textLength).toBe('768');
  });

  it('has readable date ticks and GB ticks', () => {
    const svg = render();
    for (const day of ['22 Nov', '25 Nov', '28 Nov', '29 Nov']) expect(svg).toContain(`>${day}</text>`);
    expect(svg).toContain('>2026</text>');
    expect(svg).toContain('>UTC</text>');
    expect(svg).toContain('>GB</text>');
    expect(svg).toContain('>0</text>');
    expect(svg).toContain('>1,000</text>');
  });

  it('labels a huge GB axis in grouped digits, widening its margin to fit them, and says the sizes exactly', () => {
    // Petabytes: 3,000,000 to 3,500,000 of 5,000,000 GB and others.
    const items = week().map((i, h) =>
      item(Date.parse(i.observedAt), [
        { type: 0, allocated: 3_000_000 + h * 3_000, total: 5_000_000 },
        { type: 1, allocated: 1_000_000, total: 2_000_000 },
      ]),
    );
    const svg = render({ items });
    const labels = elements(svg, 'text').map((t) => t.text);
    expect(labels).toContain('8,000,000');
    expect(labels).toContain('GB');
    expect(labels.some((t) => /\d[MTP]$/.test(t ?? ''))).toBe(false);
    // The widest label stays right of the chart's edge, and the plot starts right of the labels.
    const tick = elements(svg, 'text').find((t) => t.text === '8,000,000');
    expect(Number(tick?.x) - 9 * 7).toBeGreaterThanOrEqual(0);
    const first = coordinates(pathOf(svg, 'totals-allocated') ?? '')[0];
    expect(first?.x).toBeGreaterThan(Number(tick?.x));
    expect(descOf(svg)).toContain('department: 3,504,000 of 5,000,000 GB allocated (70.1 %)');
  });

  it('summarises tenant, range, latest totals and days until full in <desc>', () => {
    const desc = /<desc[^>]*>([^<]*)<\/desc>/.exec(render())?.[1] ?? '';
    expect(desc).toContain('tenant acme');
    expect(desc).toContain('2026-11-21 04:00 UTC to 2026-11-28 04:00 UTC');
    expect(desc).toContain('169 snapshots');
    // Totals: 570 + 300 + 186 = 1,056 of 1,900 GB.
    // 844 GB left at 8 GB a day: 105.5 days, give or take the last bit of rounding.
    expect(desc).toMatch(
      /totals: 1,056 of 1,900 GB allocated \(55\.6 %\), growing by 8 GB a day, full in about 10[56] days/,
    );
    expect(desc).toContain(
      'department: 570 of 1,000 GB allocated (57 %), growing by 10 GB a day, full in about 43 days',
    );
    expect(desc).toContain('personal: 300 of 500 GB allocated (60 %), not growing');
    expect(desc).toContain('group: 186 of 400 GB allocated (46.5 %), shrinking by 2 GB a day');
  });

  it('opens the description with the most urgent outlook: over-allocated, then full soonest', () => {
    // group is over-allocated; personal fills in about 1.8 days, the totals in 9, department in 43.
    const items = week().map((i, h) =>
      item(Date.parse(i.observedAt), [
        { type: 0, allocated: 500 + (10 * h) / 24, total: 1000 },
        { type: 1, allocated: 400 + (40 * h) / 24, total: 750 },
        { type: 2, allocated: 450, total: 400 },
      ]),
    );
    const desc = descOf(render({ items }));
    expect(desc).toMatch(
      /^group: 450 of 400 GB allocated \(112\.5 %\), over-allocated; personal: [^;]*full in about 1\.8 days; totals: [^;]*full in about 9 days; department: [^;]*full in about 43 days\. /,
    );
    // The summary of tenant, range and snapshots follows.
    expect(desc.indexOf('Space allocation of KooDrive tenant acme')).toBeGreaterThan(
      desc.indexOf('totals: '),
    );
    // Over-allocation is said even when no forecast is made.
    expect(descOf(render({ items, truncated: true }))).toMatch(/^group: [^;]*, over-allocated; /);
  });

  it('escapes every text and attribute, and replaces characters XML forbids', () => {
    const tenantId = `a<b>&"c'\u0001\uD800`;
    const svg = render({ tenantId, items: week().map((i) => ({ ...i, tenantId })) });
    checkWellFormedXml(svg);
    expect(svg).not.toContain('a<b>');
    expect(svg).toContain('a&lt;b&gt;&amp;&quot;c&apos;\uFFFD\uFFFD');
    expect(svg).toContain('data-tenant="a&lt;b&gt;&amp;&quot;c&apos;');
    // Ids keep to safe characters.
    expect(attributeOf(svg, /<svg[^>]*>/, 'aria-labelledby')).toMatch(/^[\w-]+$/);
    expect(attributeOf(svg, /<svg[^>]*>/, 'aria-describedby')).toMatch(/^[\w-]+$/);
  });

  it('says "No snapshots in this range" for an empty range, still as valid SVG', () => {
    const svg = render({ items: [] });
    checkWellFormedXml(svg);
    expect(svg).toContain('No snapshots in this range');
    expect(svg).toContain('role="img"');
    expect(svg).not.toContain('data-series=');
    expect(/<desc[^>]*>([^<]*)<\/desc>/.exec(svg)?.[1]).toContain('no snapshots in this range');
  });

  it('marks a lone snapshot so it shows, and survives a range of one instant', () => {
    const items = [item(TO.getTime(), [{ type: 0, allocated: 10, total: 20 }])];
    const svg = render({ items, from: TO, to: TO });
    checkWellFormedXml(svg);
    expect(svg).toContain('data-point="department"');
    expect(coordinates(pathOf(svg, 'department-allocated') ?? '')).toHaveLength(1);
    expect(svg).toMatch(/, 1 snapshot; the latest/);
    expect(svg).not.toContain('NaN');
    expect(svg).not.toContain('Infinity');
  });

  it('calls the shaded part "forecast" and explains the dashes only when a forecast is drawn', () => {
    const legendLabels = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    const weekly = render();
    expect(weekly).toContain('-forecast"');
    expect(legendLabels(weekly).filter((label) => label === 'forecast')).toHaveLength(2);

    // Two snapshots: too few for a slope, so no series is forecast.
    const items = [
      item(TO.getTime() - DAY, [{ type: 0, allocated: 10, total: 20 }]),
      item(TO.getTime(), [{ type: 0, allocated: 12, total: 20 }]),
    ];
    const sparse = render({ items });
    expect(sparse).not.toContain('-forecast"');
    expect(legendLabels(sparse)).not.toContain('forecast');
    expect(legendLabels(sparse)).toContain('future');
  });

  it('breaks lines over gaps in the snapshots', () => {
    const items = week().filter((_, h) => h < 50 || h > 80);
    const d = pathOf(render({ items }), 'department-allocated') ?? '';
    expect(d.match(/M/g)).toHaveLength(2);
  });

  it('draws no forecast and says so when the range was truncated', () => {
    const svg = render({ truncated: true });
    expect(svg).not.toContain('-forecast"');
    expect(svg).toContain('More snapshots than one chart reads');
    expect(svg).toContain('169 of them, spread over the range, are shown and no forecast is made');
  });

  it("thins a long series to the points a chart can show, keeping each stretch's peak and the latest", () => {
    // 2,000 snapshots a minute apart, flat at 100 GB but for one spike and a last, lower value.
    const series = Array.from({ length: 2_000 }, (_, m) =>
      item(FROM.getTime() + m * 60_000, [{ type: 0, allocated: m === 1_234 ? 900 : 100, total: 1000 }]),
    );
    series.push(item(FROM.getTime() + 2_000 * 60_000, [{ type: 0, allocated: 50, total: 1000 }]));
    const range = { from: FROM, to: new Date(FROM.getTime() + 2_000 * 60_000) };
    const thinned = thinForChart(series, range, 100);
    expect(thinned.length).toBeLessThanOrEqual(101);
    expect(thinned.length).toBeGreaterThanOrEqual(95);
    expect(thinned.map((i) => i.totals.allocatedGB)).toContain(900);
    expect(thinned.at(-1)?.totals.allocatedGB).toBe(50);
    const times = thinned.map((i) => Date.parse(i.observedAt));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // Short series are drawn whole.
    expect(thinForChart(series.slice(0, 100), range, 100)).toHaveLength(100);
    expect(MAX_CHART_POINTS).toBeLessThanOrEqual(2_000);
  });

  it('counts every snapshot of the range when it draws a thinned selection of them', () => {
    const items = week();
    const svg = render({ items: items.filter((_, h) => h % 4 === 0), snapshotCount: items.length });
    const desc = /<desc[^>]*>([^<]*)<\/desc>/.exec(svg)?.[1] ?? '';
    expect(desc).toContain('169 snapshots');
    expect(desc).toContain('Drawn as 43 points, each the fullest snapshot of its stretch of time.');
  });

  it('honours width and height', () => {
    const svg = render({ width: 400, height: 240 });
    checkWellFormedXml(svg);
    expect(svg).toContain('viewBox="0 0 400 240"');
    for (const p of coordinates(pathOf(svg, 'totals-allocated') ?? '')) {
      expect(p.x).toBeLessThan(400);
      expect(p.y).toBeLessThan(240);
    }
  });
});

describe('renderAllocationChart on any history (property)', () => {
  // Whatever KooDrive reported and whenever in the range it was stored: sizes from 0 to petabytes,
  // fractions, totals of 0, over-allocation, one point or many at the same time, space types appearing
  // and disappearing, any thresholds, a range of a minute or of years. Sizes are 0 or from a kilobyte
  // (1e-6 GB) up: KooDrive gives no denormal size (a total of 5e-324 GB makes the ratio Infinity).
  const size = fc.oneof(
    fc.constant(0),
    fc.double({ min: 1e-6, max: 1e9, noNaN: true }),
    fc.integer({ min: 0, max: 5000 }),
  );
  const space = fc.record({ type: fc.constantFrom(0, 1, 2, 7), allocated: size, total: size });
  const history = fc.record({
    span: fc.oneof(fc.constant(60_000), fc.integer({ min: 60_000, max: 3 * 365 * DAY })),
    points: fc.array(
      fc.record({
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        spaces: fc.uniqueArray(space, { minLength: 1, maxLength: 4, selector: (s) => s.type }),
      }),
      { maxLength: 40 },
    ),
    thresholds: fc.uniqueArray(fc.double({ min: 0.01, max: 2, noNaN: true }), { maxLength: 4 }),
    truncated: fc.boolean(),
    // The sizes history.svg takes (`width`, `height`), or its default 800 × 400.
    frame: fc.option(
      fc.record({ width: fc.integer({ min: 480, max: 2400 }), height: fc.integer({ min: 240, max: 1200 }) }),
      { nil: undefined },
    ),
  });

  it('draws a well-formed chart with only finite numbers, inside its frame', () => {
    fc.assert(
      fc.property(history, ({ span, points, thresholds, truncated, frame }) => {
        const to = TO.getTime();
        const from = to - span;
        const items = points.map((p) => item(Math.round(from + p.at * span), p.spaces));
        const svg = render({
          from: new Date(from),
          to: new Date(to),
          items,
          thresholds,
          truncated,
          ...frame,
        });
        checkWellFormedXml(svg);
        expect(svg).not.toMatch(/NaN|Infinity|undefined|null/);
        const width = Number(attributeOf(svg, /<svg[^>]*>/, 'width'));
        const height = Number(attributeOf(svg, /<svg[^>]*>/, 'height'));
        expect([width, height]).toEqual([frame?.width ?? 800, frame?.height ?? 400]);
        // Every text starts inside the frame.
        for (const text of elements(svg, 'text')) {
          expect(Number(text.x)).toBeGreaterThanOrEqual(0);
          expect(Number(text.x)).toBeLessThanOrEqual(width);
          expect(Number(text.y)).toBeGreaterThanOrEqual(0);
          expect(Number(text.y)).toBeLessThanOrEqual(height);
        }
        for (const [, d = ''] of svg.matchAll(/\sd="([^"]*)"/g)) {
          for (const { x, y } of coordinates(d)) {
            expect(x).toBeGreaterThanOrEqual(0);
            expect(x).toBeLessThanOrEqual(width);
            expect(y).toBeGreaterThanOrEqual(0);
            expect(y).toBeLessThanOrEqual(height);
          }
        }
      }),
      { numRuns: 300, seed: 20261129 },
    );
  });
});

describe('the time axis’s zone label', () => {
  /** The x-axis texts: the zone label, and each tick's date or time with its row (its y). */
  const axis = (svg: string) => {
    const texts = elements(svg, 'text');
    const zone = texts.find((t) => t.text === 'UTC');
    const rows = new Set(texts.filter((t) => t['text-anchor'] === 'middle').map((t) => t.y));
    return { zone, rows };
  };

  it('stands at the end of the dates row when the last date leaves it room', () => {
    const { zone, rows } = axis(render());
    expect(zone?.text).toBe('UTC');
    expect([...rows].sort()).toContain(zone?.y);
  });

  it('moves off a row where the last tick’s date would run into it (24 hours ending 18:00 UTC)', () => {
    const to = new Date('2026-11-28T18:00:00.000Z');
    const from = new Date(to.getTime() - DAY);
    const items = Array.from({ length: 25 }, (_, h) =>
      item(from.getTime() + h * HOUR, [{ type: 0, allocated: 500 + h, total: 1000 }]),
    );
    const svg = render({ from, to, items, trend: computeTrend(items) });
    const texts = elements(svg, 'text');
    const zone = texts.find((t) => t.text === 'UTC');
    // The last tick's date ('29 Nov', at midnight, 6 hours before the end) sits on the second row.
    const dateRow = texts.find((t) => t.text === '29 Nov')?.y;
    expect(dateRow).toBeDefined();
    expect(zone === undefined || zone.y !== dateRow).toBe(true);
    // The heading's range and the description still say the zone.
    expect(descOf(svg)).toContain('UTC');
  });
});

describe('chart helpers', () => {
  it('escapeXml escapes markup and quotes', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });

  it('formatGB groups thousands, however large, in GB', () => {
    expect(formatGB(0)).toBe('0');
    expect(formatGB(1500)).toBe('1,500');
    expect(formatGB(2.5)).toBe('2.5');
    expect(formatGB(12.25)).toBe('12.3');
    expect(formatGB(2_500_000)).toBe('2,500,000');
    expect(formatGB(8_000_000.4)).toBe('8,000,000');
    expect(formatGB(-350_000_000)).toBe('-350,000,000');
    expect(formatGB(2e15)).toBe('2,000,000,000,000,000');
    // Past 1e21, where toFixed writes exponents.
    expect(formatGB(3e21)).toBe('3,000,000,000,000,000,000,000');
  });

  it('formatTick labels each gridline with the value it stands at, in digits', () => {
    const labels = (max: number) => {
      const { max: top, step } = niceScale(max);
      return Array.from({ length: Math.round(top / step) + 1 }, (_, i) => formatTick(i * step, step));
    };
    expect(labels(0.12)).toEqual(['0', '0.025', '0.05', '0.075', '0.1', '0.125']);
    expect(labels(1.2e-8)).toEqual(
      ['0', '2.5e-9', '5e-9', '7.5e-9', '1e-8', '1.25e-8'].map((v) =>
        Number(v)
          .toFixed(20)
          .replace(/\.?0+$/, ''),
      ),
    );
    expect(labels(1200)).toEqual(['0', '250', '500', '750', '1,000', '1,250']);
  });

  it('formatGB never shows a size that is not zero as 0', () => {
    expect(formatGB(0.000_49)).toBe('0.00049');
    expect(formatGB(0.004_93)).toBe('0.0049');
    expect(formatGB(-0.003)).toBe('-0.003');
    expect(formatGB(0.05)).toBe('0.05');
  });

  it('niceScale rounds the axis up to 1, 2, 2.5 or 5 × 10^k steps', () => {
    expect(niceScale(1900)).toEqual({ max: 2000, step: 500 });
    expect(niceScale(7)).toEqual({ max: 8, step: 2 });
    expect(niceScale(0)).toEqual({ max: 1, step: 0.2 });
  });

  it('timeTicks picks hours, days, months or years by the span', () => {
    const start = Date.parse('2026-11-28T00:00:00Z');
    const hours = timeTicks(start, start + 6 * HOUR, 8);
    expect(hours[0]).toEqual({ at: start, label: '00:00', context: '28 Nov' });
    expect(hours.map((t) => t.label)).toContain('03:00');
    const days = timeTicks(start, start + 7 * DAY, 8);
    expect(days.map((t) => t.label)).toEqual([
      '28 Nov',
      '29 Nov',
      '30 Nov',
      '1 Dec',
      '2 Dec',
      '3 Dec',
      '4 Dec',
      '5 Dec',
    ]);
    const months = timeTicks(Date.parse('2026-01-15T00:00:00Z'), Date.parse('2026-12-31T00:00:00Z'), 8);
    expect(months.map((t) => t.label)).toEqual(['Mar', 'May', 'Jul', 'Sep', 'Nov']);
    const years = timeTicks(Date.parse('1990-06-01T00:00:00Z'), Date.parse('2030-01-01T00:00:00Z'), 8);
    expect(years.map((t) => t.label)).toEqual([
      '1995',
      '2000',
      '2005',
      '2010',
      '2015',
      '2020',
      '2025',
      '2030',
    ]);
    for (const ticks of [hours, days, months, years]) expect(ticks.length).toBeLessThanOrEqual(9);
  });
});

/** A newest snapshot of `allocated` of `total` GB (one department space) at `at`. */
function stored(allocated: number, total: number, at = '2026-11-28T04:00:00.000Z'): NewestSnapshot {
  const normalized = normalizeAllocation({
    code: 0,
    data: [{ type: 0, allocateCapacity: allocated, totalCapacity: total }],
  });
  return { state: 'stored', snapshot: { observedAt: at, totals: normalized.totals } };
}

/** Every tenant with the same modest snapshot, in configuration order. */
function newestOf(tenantIds: readonly string[]): Map<string, NewestSnapshot> {
  return new Map(tenantIds.map((tenantId) => [tenantId, stored(100, 1000)]));
}

describe('renderDashboard', () => {
  it('lists every tenant with a heading, links and an <img> of its chart, with relative URLs', () => {
    const tenantIds = ['acme', 'beta_2'];
    const html = renderDashboard({ tenantIds, newest: newestOf(tenantIds), from: FROM, to: TO });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<h2 /g)).toHaveLength(2);
    expect(html).toContain('>acme</h2>');
    expect(html).toContain('>beta_2</h2>');
    const src = chartPath('acme', { from: FROM, to: TO });
    expect(src).toBe(
      'tenants/acme/allocation/history.svg?from=2026-11-21T04%3A00%3A00.000Z&to=2026-11-28T04%3A00%3A00.000Z',
    );
    expect(html).toContain(`<img src="${src.replaceAll('&', '&amp;')}" width="800" height="400" alt="`);
    expect(html).toContain('href="tenants/beta_2/allocation"');
    // Self-contained: no script, no external asset.
    expect(html).not.toMatch(/<script|<link|https?:\/\//i);
  });

  it('lays the charts out in as many columns as fit, one on a phone', () => {
    const tenantIds = ['acme', 'beta_2'];
    const html = renderDashboard({ tenantIds, newest: newestOf(tenantIds), from: FROM, to: TO });
    expect(html).toMatch(
      /main \{[^}]*display: grid; grid-template-columns: repeat\(auto-fill, minmax\(min\(600px, 100%\), 1fr\)\)/,
    );
    // Nothing caps the page at one chart's width (a media query's max-width is no cap).
    expect(html).not.toMatch(/[;{] max-width: \d+px/);
    expect(html).toMatch(/img, figure > svg \{[^}]*width: 100%; height: auto/);
  });

  it("names each tenant once: a chart's own heading does, the section's heading shows only without a chart", () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><title>acme</title></svg>';
    const charts = new Map([
      ['acme', { svg }],
      ['beta_2', { error: 'STORE_UNAVAILABLE: the snapshot table could not be read' }],
    ]);
    const tenantIds = ['acme', 'beta_2'];
    const inline = renderDashboard({ tenantIds, newest: newestOf(tenantIds), from: FROM, to: TO, charts });
    expect(inline).toContain('<h2 id="heading-acme" class="chart-shown">acme</h2>');
    expect(inline).toContain('<h2 id="heading-beta_2">beta_2</h2>');
    expect(inline).toMatch(/\.chart-shown \{ position: absolute; width: 1px; height: 1px; overflow: hidden;/);
    // Charts loaded as images name their tenant too (in their section; the table links to it).
    const images = renderDashboard({ tenantIds: ['acme'], newest: newestOf(['acme']), from: FROM, to: TO });
    expect(images).toContain('<h2 id="heading-acme" class="chart-shown">acme</h2>');
    expect(images.match(/>acme</g)).toHaveLength(2);
    expect(images).toContain('<a href="#tenant-acme">acme</a>');
  });

  it('says so when no tenant is configured', () => {
    const html = renderDashboard({ tenantIds: [], newest: new Map(), from: FROM, to: TO });
    expect(html).toContain('No tenant is configured');
    expect(html).not.toContain('<table');
  });
});

describe('the dashboard\'s "Fullest first" table', () => {
  // In configuration order; every case of the ordering at once.
  const tenantIds = ['calm', 'tie-b', 'fresh', 'down', 'over', 'zero', 'tie-a', 'zero-over'];
  const newest = new Map<string, NewestSnapshot>([
    ['calm', stored(2_500, 10_000)],
    ['tie-b', stored(8_000, 10_000)],
    ['fresh', { state: 'none' }],
    ['down', { state: 'unavailable' }],
    ['over', stored(12_345.5, 10_000, '2026-11-28T03:45:00.000Z')],
    // Total 0: a null ratio, over-allocated when anything is allocated.
    ['zero', stored(0, 0)],
    ['tie-a', stored(4_000, 5_000)],
    ['zero-over', stored(5, 0)],
  ]);
  const expected = ['over', 'tie-a', 'tie-b', 'calm', 'zero', 'zero-over', 'fresh', 'down'];

  /** The table's body rows, each as its cells' text (tags removed). */
  function rows(html: string): string[][] {
    const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
    return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map(([, row = '']) =>
      [...row.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map(([, cell = '']) =>
        cell.replace(/<[^>]+>/g, ''),
      ),
    );
  }

  it('orders by the ratio, highest first; then a null ratio, no snapshot and a failed read; ties by id', () => {
    expect(fullestFirst(tenantIds, newest)).toEqual(expected);
    // A tenant the reads did not answer for counts as unavailable.
    expect(fullestFirst(['b', 'a', 'c'], new Map([['c', stored(1, 10)]]))).toEqual(['c', 'a', 'b']);
  });

  it('gives each tenant a row, in that order: GB of total, the ratio, over-allocation and the time in UTC', () => {
    const html = renderDashboard({ tenantIds, newest, from: FROM, to: TO });
    expect(rows(html)).toEqual([
      ['over', '12,346 of 10,000 GB', '123.5 %', 'over-allocated', '2026-11-28 03:45 UTC'],
      ['tie-a', '4,000 of 5,000 GB', '80.0 %', '', '2026-11-28 04:00 UTC'],
      ['tie-b', '8,000 of 10,000 GB', '80.0 %', '', '2026-11-28 04:00 UTC'],
      ['calm', '2,500 of 10,000 GB', '25.0 %', '', '2026-11-28 04:00 UTC'],
      ['zero', '0 of 0 GB', 'no total', '', '2026-11-28 04:00 UTC'],
      ['zero-over', '5 of 0 GB', 'no total', 'over-allocated', '2026-11-28 04:00 UTC'],
      ['fresh', 'no snapshot yet'],
      ['down', 'unavailable'],
    ]);
    expect(html).toContain('<time datetime="2026-11-28T03:45:00.000Z">2026-11-28 03:45 UTC</time>');
    // Thousands grouped in a ratio too (over-allocated a dozen times).
    const huge = renderDashboard({
      tenantIds: ['x'],
      newest: new Map([['x', stored(123_455, 10)]]),
      from: FROM,
      to: TO,
    });
    expect(rows(huge)[0]?.[2]).toBe('1,234,550.0 %');
  });

  it('links each row to its chart, and the charts follow the same order', () => {
    const html = renderDashboard({ tenantIds, newest, from: FROM, to: TO });
    const links = [...html.matchAll(/<th scope="row"><a href="#([^"]+)">([^<]+)<\/a><\/th>/g)];
    expect(links.map(([, anchor]) => anchor)).toEqual(expected.map((t) => `tenant-${t}`));
    expect(links.map(([, , name]) => name)).toEqual(expected);
    const sections = [
      ...html.matchAll(/<section id="([^"]+)" aria-labelledby="([^"]+)" data-tenant="([^"]+)">/g),
    ];
    expect(sections.map(([, id]) => id)).toEqual(expected.map((t) => `tenant-${t}`));
    expect(sections.map(([, , labelledBy]) => labelledBy)).toEqual(expected.map((t) => `heading-${t}`));
    // Ids are unique on the page: the sections', their headings' and the table's own.
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map(([, id]) => id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is a real table, named, with header cells for columns and rows, above the charts', () => {
    const html = renderDashboard({ tenantIds, newest, from: FROM, to: TO });
    expect(html).toContain(
      '<div class="fullest" role="region" aria-labelledby="fullest-caption" tabindex="0">\n<table>\n<caption id="fullest-caption">Fullest first</caption>',
    );
    expect(html.match(/<th scope="col"/g)).toHaveLength(5);
    expect(html.match(/<th scope="row">/g)).toHaveLength(tenantIds.length);
    expect(html.indexOf('<table>')).toBeLessThan(html.indexOf('<main>'));
    // A long table scrolls inside its box, and sideways on a phone, rather than widening the page.
    expect(html).toMatch(/\.fullest \{ max-height: 60vh; overflow: auto;/);
    expect(html).not.toMatch(/<script/i);
  });

  it('comes first with charts inside the page too', () => {
    const charts = new Map(
      tenantIds.map((t) => [t, { svg: `<svg xmlns="http://www.w3.org/2000/svg" data-of="${t}"/>` }]),
    );
    const html = renderDashboard({ tenantIds, newest, from: FROM, to: TO, charts });
    expect(html.indexOf('<caption')).toBeLessThan(html.indexOf('<figure>'));
    expect([...html.matchAll(/data-of="([^"]+)"/g)].map(([, t]) => t)).toEqual(expected);
  });

  it('escapes the tenant id in the link, the anchor and the text', () => {
    const odd = 'a"<b>&';
    const html = renderDashboard({
      tenantIds: [odd],
      newest: new Map([[odd, stored(1, 2)]]),
      from: FROM,
      to: TO,
    });
    expect(html).toContain('<a href="#tenant-a&quot;&lt;b&gt;&amp;">a&quot;&lt;b&gt;&amp;</a>');
    expect(html).toContain('<section id="tenant-a&quot;&lt;b&gt;&amp;"');
    expect(html).not.toContain('<b>');
  });
});
