/**
 * The CloudWatch metrics that Embedded Metric Format documents among a function's log lines create: each
 * namespace, metric name and dimension set with its values is one custom metric, billed per month.
 */

import { isRecord } from '../probe/common.ts';

/** One metric a document creates; `tenant` when one of its dimensions is the tenant. */
export interface EmfMetric {
  id: string;
  tenant?: string;
}

/** The metrics of one log line: none when it is not an EMF document. */
function emfMetrics(line: string): EmfMetric[] {
  if (!line.includes('"CloudWatchMetrics"')) return [];
  let document: unknown;
  try {
    document = JSON.parse(line);
  } catch {
    return [];
  }
  if (!isRecord(document) || !isRecord(document._aws)) return [];
  const directives = document._aws.CloudWatchMetrics;
  if (!Array.isArray(directives)) return [];
  const metrics: EmfMetric[] = [];
  for (const directive of directives) {
    if (!isRecord(directive) || !Array.isArray(directive.Dimensions) || !Array.isArray(directive.Metrics))
      continue;
    const namespace = String(directive.Namespace);
    for (const dimensions of directive.Dimensions) {
      if (!Array.isArray(dimensions)) continue;
      const names = dimensions.map(String);
      const values = names.map((name) => `${name}=${String(document[name])}`).join(',');
      const tenant = names.includes('Tenant') ? String(document.Tenant) : undefined;
      for (const metric of directive.Metrics) {
        if (!isRecord(metric)) continue;
        metrics.push({
          id: `${namespace}|${String(metric.Name)}|${values}`,
          ...(tenant === undefined ? {} : { tenant }),
        });
      }
    }
  }
  return metrics;
}

/** Distinct metrics seen, per tenant and outside any tenant. */
export class MetricCensus {
  readonly #all = new Map<string, EmfMetric>();

  addLine(line: string): void {
    for (const metric of emfMetrics(line)) this.#all.set(metric.id, metric);
  }

  /** Metrics with a Tenant dimension (those `which` keeps), averaged over the tenants that have any. */
  perTenant(which: (id: string) => boolean = () => true): number {
    const tenants = new Set<string>();
    let count = 0;
    for (const metric of this.#all.values()) {
      if (metric.tenant === undefined) continue;
      tenants.add(metric.tenant);
      if (which(metric.id)) count += 1;
    }
    return tenants.size === 0 ? 0 : count / tenants.size;
  }

  /** Metrics without a Tenant dimension (those `which` keeps): one set per deployment. */
  shared(which: (id: string) => boolean = () => true): number {
    return [...this.#all.values()].filter((metric) => metric.tenant === undefined && which(metric.id)).length;
  }
}
