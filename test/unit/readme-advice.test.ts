/**
 * The README's 3 a.m. advice against what the template allows: a remedy the deployment cannot take
 * (raising an HTTP function's timeout past API Gateway's 30 s) must not be what an operator is told to do.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PUBLISH_CALL_BUDGET_MS, PUBLISH_RECORD_BUDGET_MS } from '../../lib/snapshots/job.ts';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const SERVERLESS_YML = readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8');

/** The rows of the "At 3 a.m." table. */
function threeAmRows(): string[] {
  const start = README.indexOf('## At 3 a.m.');
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end)
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| you see'));
}

/** Each function's `timeout` in serverless.yml. */
function functionTimeouts(): Record<string, number> {
  const functions = SERVERLESS_YML.slice(
    SERVERLESS_YML.indexOf('\nfunctions:'),
    SERVERLESS_YML.indexOf('\nresources:'),
  );
  const timeouts: Record<string, number> = {};
  for (const match of functions.matchAll(/^ {2}(\w+):\n(?: {4}.*\n)*? {4}timeout: (\d+)$/gm)) {
    timeouts[match[1] ?? ''] = Number(match[2]);
  }
  return timeouts;
}

describe('README, At 3 a.m.', () => {
  it('reads the functions’ timeouts: the HTTP functions are at 29 s, one short of API Gateway’s 30', () => {
    expect(functionTimeouts()).toEqual({ allocation: 29, history: 29, chart: 29, snapshot: 300 });
  });

  it('tells to raise a timeout only for the snapshot function, whose 300 s can grow', () => {
    const rows = threeAmRows();
    expect(rows.length).toBeGreaterThan(10);
    const raised = rows.flatMap((row) => [...row.matchAll(/raise (?:the )?([^|.;,]*?)`timeout`/g)]);
    expect(raised.length).toBeGreaterThan(0);
    for (const [clause, whose] of raised) expect(whose, clause).toBe("snapshot function's ");
  });

  it('answers a slow store on the HTTP routes with a narrower range, and slow KooDrive calls with fewer or shorter attempts', () => {
    const row = (code: string) => threeAmRows().find((line) => line.startsWith(`| \`${code}\``)) ?? '';
    expect(row('STORE_UNAVAILABLE')).toMatch(/narrower one \(`from`\/`to`/);
    expect(row('STORE_UNAVAILABLE')).toContain('cannot be raised');
    expect(row('UPSTREAM_TIMEOUT')).toMatch(
      /on the live routes .*lower `KOODRIVE_TIMEOUT_MS` × `KOODRIVE_MAX_ATTEMPTS`/,
    );
    expect(row('UPSTREAM_TIMEOUT')).toContain('cannot be raised, since API Gateway');
  });
});

describe('README, threshold events', () => {
  it('gives the lease and invocation time a PutEvents call needs as the job counts them', () => {
    const seconds = (ms: number) => `${ms / 1000} s`;
    expect(README).toContain(`only with ${seconds(PUBLISH_CALL_BUDGET_MS)} of its lease left`);
    expect(README).toContain(`It also needs ${seconds(PUBLISH_RECORD_BUDGET_MS)} of the invocation left`);
  });
});

describe('README, links within it', () => {
  /** GitHub's anchor of a heading: lower case, punctuation other than '-' dropped, spaces as '-'. */
  const slug = (heading: string) =>
    heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');

  it('has a contents line whose every link reaches a heading, and one link per top-level section', () => {
    const headings = new Set([...README.matchAll(/^#{2,6} (.+)$/gm)].map((match) => slug(match[1] ?? '')));
    const links = [...README.matchAll(/\]\(#([^)]+)\)/g)].map((match) => match[1] ?? '');
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) expect(headings, `#${link}`).toContain(link);
    const sections = [...README.matchAll(/^## (.+)$/gm)].map((match) => slug(match[1] ?? ''));
    expect(new Set(links)).toEqual(new Set(sections));
  });
});
