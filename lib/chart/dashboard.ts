/**
 * The operator's dashboard: one self-contained HTML page (inline CSS, no script, no external asset)
 * with each tenant's allocation chart. Links are relative, so the page works under an API stage
 * path, a custom domain's base path, or inside another page's frame.
 */
import { escapeXml } from './svg.ts';

export interface DashboardInput {
  /** Tenant ids, in configuration order. */
  tenantIds: readonly string[];
  /** The range every chart shows. */
  from: Date;
  to: Date;
  /** Chart size in CSS pixels (the SVG scales down on narrow screens). */
  chartWidth?: number;
  chartHeight?: number;
  /**
   * Charts drawn inside the page, by tenant id (the page then loads nothing): the SVG, or why there is
   * none. Without it, each chart is an image loaded from its route.
   */
  charts?: ReadonlyMap<string, InlineChart>;
}

/** A chart inside the page: its SVG document, or the reason it could not be drawn. */
export type InlineChart = { svg: string } | { error: string };

/** An SVG document as an element of the HTML page (without an XML declaration, which HTML does not take). */
function inlineSvg(svg: string): string {
  return svg.startsWith('<?xml') ? svg.slice(svg.indexOf('?>') + 2).trimStart() : svg;
}

/** The relative URL of a tenant's chart (`tenants/{id}/allocation/history.svg?from=&to=`). */
export function chartPath(tenantId: string, range: { from: Date; to: Date }): string {
  const query = new URLSearchParams({ from: range.from.toISOString(), to: range.to.toISOString() });
  return `tenants/${encodeURIComponent(tenantId)}/allocation/history.svg?${query.toString()}`;
}

function historyPath(tenantId: string, range: { from: Date; to: Date }): string {
  const query = new URLSearchParams({ from: range.from.toISOString(), to: range.to.toISOString() });
  return `tenants/${encodeURIComponent(tenantId)}/allocation/history?${query.toString()}`;
}

function utc(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 32px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; color: #1f2328; background: #f6f8fa; }
h1 { font-size: 1.4rem; margin: 0 0 4px; }
header p { margin: 0 0 16px; color: #57606a; max-width: 70em; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(600px, 100%), 1fr)); gap: 20px; }
section { position: relative; min-width: 0; background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: 10px 12px 12px; }
h2 { font-size: 1.1rem; margin: 0 0 4px; }
.chart-shown { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
nav { font-size: 0.9rem; margin: 0 0 6px; }
nav a { color: #0969da; margin-right: 14px; }
figure { margin: 0; }
img, figure > svg { display: block; width: 100%; height: auto; border: 0; }
.chart-error { margin: 0; padding: 12px; border-left: 4px solid #cf222e; background: #fff8f8; }
footer { margin: 20px 0 0; color: #57606a; font-size: 0.85rem; }
`.trim();

/** Renders the dashboard page; every tenant id is escaped (the id pattern already excludes markup). */
export function renderDashboard(input: DashboardInput): string {
  const width = input.chartWidth ?? 800;
  const height = input.chartHeight ?? 400;
  const range = { from: input.from, to: input.to };
  const figure = (tenantId: string, chart: string): string => {
    const inline = input.charts?.get(tenantId);
    if (inline === undefined) {
      return `<figure><img src="${escapeXml(chart)}" width="${width}" height="${height}" alt="${escapeXml(`Chart of the space allocated and total for tenant ${tenantId}, per space type and in total, from ${utc(input.from)} to ${utc(input.to)}, with a forecast.`)}" loading="lazy" decoding="async"></figure>`;
    }
    // The chart's own title and description name it for screen readers.
    if ('svg' in inline) return `<figure>${inlineSvg(inline.svg)}</figure>`;
    return `<p class="chart-error" role="status">${escapeXml(inline.error)}</p>`;
  };
  const sections = input.tenantIds.map((tenantId, index) => {
    const id = `tenant-${index + 1}`;
    const chart = chartPath(tenantId, range);
    const name = escapeXml(tenantId);
    // A chart names its tenant in its own heading: the section's heading is then for screen readers
    // and the page's outline only. Where no chart is drawn, it shows.
    const inline = input.charts?.get(tenantId);
    const shown = inline === undefined || 'svg' in inline;
    return `<section aria-labelledby="${id}" data-tenant="${name}">
<h2 id="${id}"${shown ? ' class="chart-shown"' : ''}>${name}</h2>
<nav aria-label="${escapeXml(`Links for ${tenantId}`)}"><a href="${escapeXml(chart)}">Chart (SVG)</a><a href="${escapeXml(historyPath(tenantId, range))}">History (JSON)</a><a href="tenants/${escapeXml(encodeURIComponent(tenantId))}/allocation">Current allocation (JSON)</a></nav>
${figure(tenantId, chart)}
</section>`;
  });
  const body =
    sections.length === 0
      ? '<section><p>No tenant is configured (KOODRIVE_TENANTS).</p></section>'
      : sections.join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>KooDrive allocation</title>
<style>
${STYLE}
</style>
</head>
<body>
<header>
<h1>KooDrive allocation</h1>
<p>Allocated and total space of each tenant from ${escapeXml(utc(input.from))} to ${escapeXml(utc(input.to))}. Solid lines are allocated space, faint lines the total, dashed lines the forecast; dotted lines mark the allocation thresholds of all spaces together, the ticks at the right edge of a chart those of each space type.</p>
</header>
<main>
${body}
</main>
<footer><p>Generated ${escapeXml(utc(input.to))}. Times in UTC.</p></footer>
</body>
</html>
`;
}
