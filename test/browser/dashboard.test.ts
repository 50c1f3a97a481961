/**
 * The dashboard in a real browser: headless Chromium (the Debian `chromium` package) driven by
 * playwright-core, against the chart function behind a local stand-in for API Gateway, reading
 * snapshots from an in-memory dynalite. Leaves a screenshot in /tmp/dashboard.png. axe-core checks the
 * page (both modes) and a chart against WCAG 2.1 A and AA.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChartHandler } from '../../handlers/chart.ts';
import { loadConfig } from '../../lib/config.ts';
import { normalizeAllocation } from '../../lib/koodrive/allocation.ts';
import { createLogger } from '../../lib/logger.ts';
import { createDynamoSnapshotStore, type Snapshot } from '../../lib/snapshots/store.ts';
import { type Dynalite, startDynalite } from '../integration/snapshots-support.ts';
import { type Chromium, launchChromium } from './chromium.ts';
import { type LocalApi, startLocalApi } from './server.ts';

const SCREENSHOT = '/tmp/dashboard.png';
const TABLE = 'browser-snapshots';
const TENANTS = ['acme', 'beta'];
const HOUR = 3_600_000;
const NOW = new Date('2026-11-28T04:10:00.000Z');
const LAST = Date.parse('2026-11-28T04:00:00.000Z');

/*
 * The browser globals used by the functions that run in the page. The project's TypeScript has no DOM
 * library (it is Node code), so they are declared here, in this module only, as far as used.
 */
interface PageImage {
  readonly complete: boolean;
  readonly naturalWidth: number;
  readonly naturalHeight: number;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { width: number; height: number };
}
interface PageSvgElement {
  readonly localName: string;
  readonly parentElement: { getAttribute(name: string): string | null } | null;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  getBBox(): { width: number; height: number };
}
interface ParsedDocument {
  readonly documentElement: { localName: string };
  getElementsByTagName(name: string): { length: number };
  querySelector(selectors: string): { textContent: string | null } | null;
}
declare const document: {
  readonly body: object;
  readonly images: Iterable<PageImage>;
  querySelectorAll(selectors: string): Iterable<PageSvgElement>;
};
declare function getComputedStyle(element: object): {
  marginTop: string;
  fill: string;
  stroke: string;
  fillOpacity: string;
  strokeOpacity: string;
};
declare class DOMParser {
  parseFromString(text: string, type: string): ParsedDocument;
}
/** What the axe checks read of axe-core's results (its own types need the DOM library). */
interface AxeResult {
  readonly id: string;
  readonly help: string;
  readonly helpUrl: string;
  readonly nodes: readonly { readonly target: readonly unknown[]; readonly failureSummary?: string }[];
}
declare const axe: {
  run(
    context: object,
    options: { runOnly: { type: 'tag'; values: readonly string[] } },
  ): Promise<{ violations: AxeResult[]; passes: AxeResult[] }>;
};

let dynamo: Dynalite;
let api: LocalApi;
let browser: Chromium;
let page: Page;

/** A week of hourly snapshots; acme's department grows 12 GB a day, beta's group shrinks. */
function week(tenantId: string): Snapshot[] {
  return Array.from({ length: 7 * 24 }, (_, i) => {
    const hoursAgo = 7 * 24 - 1 - i;
    const observedAt = new Date(LAST - hoursAgo * HOUR).toISOString();
    const days = i / 24;
    const data =
      tenantId === 'acme'
        ? [
            { type: 0, allocateCapacity: 620 + 12 * days + 4 * Math.sin(i / 6), totalCapacity: 1000 },
            { type: 1, allocateCapacity: 410, totalCapacity: 500 },
            { type: 2, allocateCapacity: 90 + 3 * days, totalCapacity: 300 },
          ]
        : [
            { type: 0, allocateCapacity: 5000, totalCapacity: 8000 },
            { type: 2, allocateCapacity: 1500 - 40 * days, totalCapacity: 2000 },
          ];
    return {
      tenantId,
      observedAt,
      fetchedAt: observedAt,
      source: 'schedule',
      traceId: 'browser-test',
      ...normalizeAllocation({ code: 0, data }),
    };
  });
}

/** The WCAG 2.0 and 2.1 success criteria of levels A and AA, as axe-core tags its rules. */
const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's WCAG 2.1 A and AA rules on the document open in `target`: each violation as a line that
 * says what to fix (rule, element, help and its page, axe's summary), and the rules that passed (so a
 * test can tell that axe checked what it is about, not an empty page).
 *
 * axe is not added with `addScriptTag`: that adds an inline <script>, which the pages' own policies
 * refuse (default-src 'none', no script-src: "Executing inline script violates the following Content
 * Security Policy directive"), and a chart opened on its own is an SVG document, with no <head> to add
 * it to. Nor from a context that bypasses the policy (`bypassCSP` is fixed when the persistent context
 * is launched: a second browser). Its source is evaluated through the DevTools protocol instead, which
 * no page policy governs, so axe checks each page as served, under its own policy.
 */
async function axeCheck(target: Page): Promise<{ violations: string[]; passed: string[] }> {
  await target.evaluate(AXE_SOURCE);
  const { violations, passed } = await target.evaluate(async (tags) => {
    const results = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
    const found = results.violations.map((v) => ({
      id: v.id,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String), failureSummary: n.failureSummary ?? '' })),
    }));
    return { violations: found, passed: results.passes.map((p) => p.id) };
  }, WCAG_AA);
  const lines = violations.flatMap((v) =>
    v.nodes.map(
      (n) =>
        `${v.id} at ${n.target.join(' ')}: ${v.help} (${v.helpUrl})\n    ${n.failureSummary.replaceAll('\n', '\n    ')}`,
    ),
  );
  return { violations: lines, passed };
}

/** `rgb(r, g, b)` (a computed colour) as its three channels. */
function channels(colour: string): [number, number, number] {
  const [r = Number.NaN, g = Number.NaN, b = Number.NaN] = (colour.match(/\d+(\.\d+)?/g) ?? []).map(Number);
  return [r, g, b];
}

/** WCAG's contrast ratio of a colour, painted at `opacity` over `background`, against that background. */
function contrastOver(colour: string, opacity: number, background: string): number {
  const bg = channels(background);
  const fg = channels(colour).map((c, i) => opacity * c + (1 - opacity) * (bg[i] ?? 0));
  const luminance = (rgb: readonly number[]) => {
    const [r = 0, g = 0, b = 0] = rgb.map((c) => {
      const s = c / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  return ((light ?? 0) + 0.05) / ((dark ?? 0) + 0.05);
}

/** What a chart's text and lines are drawn on: its background, and the shaded future of the plot. */
const CHART_BACKGROUNDS = ['rgb(255, 255, 255)', 'rgb(243, 244, 246)'];
/**
 * The lines that carry the chart's data (WCAG 1.4.11, 3:1): allocated, forecast, thresholds, each
 * series' leader and legend swatch. Not the grid (the axis labels give its values) nor the totals, drawn
 * faint on purpose behind the allocated lines, whose numbers the description gives.
 */
const DATA_LINES =
  'path[data-series$="-allocated"], path[data-series$="-forecast"], [data-threshold], [data-own-threshold], .series-names line, .legend line:not([stroke-opacity])';

/**
 * Text below 4.5:1 and data lines below 3:1 in the chart open in `target`, against either background.
 * axe cannot tell what SVG text is drawn on (it leaves color-contrast there "incomplete"), so this
 * computes it from the painted colours.
 */
async function chartContrastFailures(target: Page): Promise<string[]> {
  const painted = await target.evaluate(
    (lines) => [
      ...Array.from(document.querySelectorAll('svg text'), (text) => {
        const style = getComputedStyle(text);
        return {
          what: `text "${text.textContent ?? ''}"`,
          colour: style.fill,
          opacity: Number(style.fillOpacity),
          min: 4.5,
        };
      }),
      ...Array.from(document.querySelectorAll(lines), (line) => {
        const style = getComputedStyle(line);
        const threshold = line.getAttribute('data-threshold');
        const what =
          line.getAttribute('data-series') ??
          (line.getAttribute('data-own-threshold') === null
            ? threshold === null
              ? `line in ${line.parentElement?.getAttribute('class') ?? 'the chart'}`
              : `threshold ${threshold}`
            : `${line.getAttribute('data-space') ?? ''} tick ${line.getAttribute('data-own-threshold')}`);
        return {
          what,
          colour: style.stroke,
          opacity: Number(style.strokeOpacity),
          min: 3,
        };
      }),
    ],
    DATA_LINES,
  );
  expect(painted.length).toBeGreaterThan(20);
  return painted.flatMap(({ what, colour, opacity, min }) =>
    CHART_BACKGROUNDS.flatMap((background) => {
      const ratio = contrastOver(colour, opacity, background);
      return ratio >= min
        ? []
        : [`${what}: ${colour} on ${background} is ${ratio.toFixed(2)}:1, below ${min}:1`];
    }),
  );
}

beforeAll(async () => {
  // First, so a missing browser fails fast with the command that installs it.
  browser = await launchChromium();
  dynamo = await startDynalite();
  await dynamo.createSnapshotTable(TABLE);
  const store = createDynamoSnapshotStore({
    client: dynamo.client,
    tableName: TABLE,
    retentionDays: 400,
    cursorKey: 'browser-test-cursor-key',
    now: () => NOW.getTime(),
  });
  for (const tenantId of TENANTS) {
    const outcomes = await Promise.all(week(tenantId).map((snapshot) => store.put(snapshot)));
    expect(outcomes.every((o) => o === 'stored')).toBe(true);
  }
  const handler = createChartHandler({
    logger: createLogger('chart-browser-test'),
    getConfig: () => loadConfig({ KOODRIVE_TENANTS: TENANTS.map((t) => `${t}=koodrive/${t}`).join(',') }),
    getStore: () => store,
    now: () => NOW,
  });
  api = await startLocalApi(handler);
  page = await browser.context.newPage();
});

afterAll(async () => {
  await browser?.close();
  await api?.close();
  await dynamo?.close();
});

describe('the dashboard in Chromium', () => {
  it('loads every tenant chart as an image', async () => {
    const response = await page.goto(`${api.url}/dashboard`);
    expect(response?.status()).toBe(200);
    expect(await page.locator('h1').textContent()).toBe('KooDrive allocation');
    expect(await page.locator('h2').allTextContents()).toEqual(TENANTS);
    // The "Fullest first" table, named by its caption, leads with acme (about 68 % allocated; beta 62 %).
    const fullest = page.getByRole('table', { name: 'Fullest first' });
    expect(await fullest.locator('tbody tr th[scope="row"]').allTextContents()).toEqual(['acme', 'beta']);
    await page.waitForFunction(() => Array.from(document.images).every((image) => image.complete));
    const images = await page.evaluate(() =>
      Array.from(document.images, (image) => ({
        src: image.getAttribute('src') ?? '',
        naturalWidth: image.naturalWidth,
        naturalHeight: image.naturalHeight,
        shownWidth: image.getBoundingClientRect().width,
      })),
    );
    expect(images).toHaveLength(TENANTS.length);
    for (const image of images) {
      expect(image.src).toMatch(/^tenants\/[a-z]+\/allocation\/history\.svg\?from=/);
      expect(image.naturalWidth).toBe(800);
      expect(image.naturalHeight).toBe(400);
      expect(image.shownWidth).toBeGreaterThan(0);
    }
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
  });

  it('renders each series of a chart as a visible path', async () => {
    for (const tenantId of TENANTS) {
      const response = await page.goto(`${api.url}/tenants/${tenantId}/allocation/history.svg`);
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-type']).toBe('image/svg+xml; charset=utf-8');
      const paths = await page.evaluate(() =>
        Array.from(document.querySelectorAll('path[data-series]'), (path) => {
          const box = path.getBBox();
          return {
            series: path.getAttribute('data-series') ?? '',
            d: path.getAttribute('d') ?? '',
            width: box.width,
            height: box.height,
          };
        }),
      );
      const allocated = paths.filter((p) => p.series.endsWith('-allocated')).map((p) => p.series);
      const expected = tenantId === 'acme' ? ['department', 'personal', 'group'] : ['department', 'group'];
      expect(allocated.sort()).toEqual([...expected, 'totals'].map((s) => `${s}-allocated`).sort());
      for (const p of paths) {
        expect(p.d, p.series).not.toBe('');
        // Every series spans time; flat ones have no height.
        expect(p.width, p.series).toBeGreaterThan(0);
      }
      const growing = paths.find(
        (p) => p.series === (tenantId === 'acme' ? 'department-allocated' : 'group-allocated'),
      );
      expect(growing?.height).toBeGreaterThan(0);
    }
  });

  it('parses each chart as XML and exposes its title and description', async () => {
    // The dashboard's own policy forbids fetch (connect-src 'none'): parse on a blank page instead.
    await page.goto('about:blank');
    for (const tenant of TENANTS) {
      const answer = await page.request.get(`${api.url}/tenants/${tenant}/allocation/history.svg`);
      expect(answer.status()).toBe(200);
      const result = await page.evaluate(
        (text) => {
          const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
          return {
            errors: doc.getElementsByTagName('parsererror').length,
            root: doc.documentElement.localName,
            title: doc.querySelector('title')?.textContent ?? '',
            desc: doc.querySelector('desc')?.textContent ?? '',
          };
        },
        await answer.text(),
      );
      expect(result).toMatchObject({ errors: 0, root: 'svg' });
      expect(result.title).toContain(`tenant ${tenant}`);
      expect(result.desc).toContain('168 snapshots');
    }
  });

  it('is self-contained: it requests nothing but its charts', async () => {
    const requests: string[] = [];
    page.on('request', (request) => {
      const pathname = new URL(request.url()).pathname;
      // The browser's own favicon probe is not the page's doing.
      if (pathname !== '/favicon.ico') requests.push(pathname);
    });
    await page.goto(`${api.url}/dashboard`);
    await page.waitForFunction(() => Array.from(document.images).every((image) => image.complete));
    expect(requests.sort()).toEqual(
      ['/dashboard', ...TENANTS.map((t) => `/tenants/${t}/allocation/history.svg`)].sort(),
    );
  });

  it('loads the charts of many tenants as they come near the screen, not all at once', async () => {
    // Each chart is a function call and a DynamoDB query: with hundreds of tenants, loading every one at
    // once would run into the API's throttle and cost for charts nobody looks at.
    const many = Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    const charts = new Set<string>();
    const manyHandler = createChartHandler({
      logger: createLogger('chart-browser-test-many'),
      getConfig: () => loadConfig({ KOODRIVE_TENANTS: many.map((t) => `${t}=koodrive/${t}`).join(',') }),
      getStore: () =>
        createDynamoSnapshotStore({
          client: dynamo.client,
          tableName: TABLE,
          retentionDays: 400,
          cursorKey: 'browser-test-cursor-key',
        }),
      now: () => NOW,
    });
    const manyApi = await startLocalApi((event, context) => {
      if (event.rawPath.endsWith('.svg')) charts.add(event.rawPath);
      return manyHandler(event, context);
    });
    const manyPage = await browser.context.newPage();
    try {
      await manyPage.goto(`${manyApi.url}/dashboard`);
      await manyPage.waitForLoadState('networkidle');
      const first = charts.size;
      expect(first).toBeGreaterThan(0);
      expect(first).toBeLessThan(many.length / 2);
      // Scrolled through, every chart loads, each once.
      const images = manyPage.locator('img');
      for (let i = 0; i < many.length; i++) await images.nth(i).scrollIntoViewIfNeeded();
      await manyPage.waitForFunction(() => Array.from(document.images).every((image) => image.complete));
      expect([...charts].sort()).toEqual(many.map((t) => `/tenants/${t}/allocation/history.svg`));
    } finally {
      await manyPage.close();
      await manyApi.close();
    }
  });

  it('draws every chart inside the page with ?inline=1, loading nothing else', async () => {
    const requests: string[] = [];
    page.on('request', (request) => {
      const pathname = new URL(request.url()).pathname;
      if (pathname !== '/favicon.ico') requests.push(pathname);
    });
    const response = await page.goto(`${api.url}/dashboard?inline=1`);
    expect(response?.status()).toBe(200);
    const charts = await page.evaluate(() =>
      Array.from(document.querySelectorAll('figure > svg'), (svg) => {
        const box = svg.getBBox();
        return { label: svg.getAttribute('aria-labelledby') ?? '', width: box.width, height: box.height };
      }),
    );
    expect(charts).toHaveLength(TENANTS.length);
    for (const chart of charts) {
      expect(chart.label).not.toBe('');
      expect(chart.width).toBeGreaterThan(0);
      expect(chart.height).toBeGreaterThan(0);
    }
    const series = await page.evaluate(() =>
      Array.from(document.querySelectorAll('figure > svg path[data-series$="-allocated"]'), (path) => ({
        series: path.getAttribute('data-series') ?? '',
        width: path.getBBox().width,
      })),
    );
    // acme: department, personal, group and totals; beta: department, group and totals.
    expect(series).toHaveLength(7);
    for (const path of series) expect(path.width, path.series).toBeGreaterThan(0);
    expect(requests).toEqual(['/dashboard']);
    page.removeAllListeners('request');
  });

  it('keeps drawing the inline page saved to a file, under its own policy, with nothing refused', async () => {
    const refused: string[] = [];
    const saved = await browser.context.newPage();
    saved.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
    });
    const folder = await mkdtemp(path.join(tmpdir(), 'dashboard-'));
    try {
      const html = await (await fetch(`${api.url}/dashboard?inline=1`)).text();
      const file = path.join(folder, 'dashboard.html');
      await writeFile(file, html);
      await saved.goto(pathToFileURL(file).href);
      const drawn = await saved.evaluate(() =>
        Array.from(
          document.querySelectorAll('figure > svg path[data-series$="-allocated"]'),
          (p) => p.getBBox().width,
        ),
      );
      expect(drawn).toHaveLength(7);
      for (const width of drawn) expect(width).toBeGreaterThan(0);
      // The page's own styles applied (a refused <style> would leave the body's default margin of 8px).
      const margin = await saved.evaluate(() => getComputedStyle(document.body).marginTop);
      expect(margin).toBe('0px');
      expect(refused).toEqual([]);
    } finally {
      await saved.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('the dashboard and its charts against WCAG 2.1 A and AA (axe-core)', () => {
  it('finds no violation on the dashboard with its charts as images', async () => {
    await page.goto(`${api.url}/dashboard`);
    await page.waitForFunction(() => Array.from(document.images).every((image) => image.complete));
    const { violations, passed } = await axeCheck(page);
    expect(violations, `axe found, on /dashboard:\n${violations.join('\n')}`).toEqual([]);
    // What the page is about was checked: the charts' alt text, the table's headers, the link names.
    expect(passed).toEqual(
      expect.arrayContaining(['image-alt', 'th-has-data-cells', 'link-name', 'html-has-lang']),
    );
  });

  it('finds no violation on the dashboard with its charts inside (?inline=1)', async () => {
    await page.goto(`${api.url}/dashboard?inline=1`);
    const { violations, passed } = await axeCheck(page);
    expect(violations, `axe found, on /dashboard?inline=1:\n${violations.join('\n')}`).toEqual([]);
    expect(passed).toEqual(expect.arrayContaining(['svg-img-alt', 'th-has-data-cells', 'link-name']));
  });

  it('finds no violation on a chart opened on its own', async () => {
    for (const tenant of TENANTS) {
      const chart = `/tenants/${tenant}/allocation/history.svg`;
      await page.goto(`${api.url}${chart}`);
      const { violations, passed } = await axeCheck(page);
      expect(violations, `axe found, on ${chart}:\n${violations.join('\n')}`).toEqual([]);
      expect(passed).toContain('svg-img-alt');
    }
  });

  it("draws a chart's text at 4.5:1 and its data lines at 3:1 against what they are drawn on", async () => {
    for (const tenant of TENANTS) {
      const chart = `/tenants/${tenant}/allocation/history.svg`;
      await page.goto(`${api.url}${chart}`);
      const failures = await chartContrastFailures(page);
      expect(failures, `too faint in ${chart}:\n${failures.join('\n')}`).toEqual([]);
    }
  });
});
