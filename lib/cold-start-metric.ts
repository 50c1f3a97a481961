import {
  getBooleanFromEnv,
  getServiceName,
  getStringFromEnv,
  isDevMode,
} from '@aws-lambda-powertools/commons/utils/env';

/** Powertools Metrics' name for a function's cold starts (COLD_START_METRIC) and its unset service. */
const COLD_START = 'ColdStart';
const SERVICE_UNDEFINED = 'service_undefined';

/**
 * Whether Powertools Metrics would print nothing: POWERTOOLS_METRICS_DISABLED, else POWERTOOLS_DEV. Throws,
 * as Powertools does, when POWERTOOLS_METRICS_DISABLED is not a boolean, naming the value and the fix.
 */
function metricsDisabled(): boolean {
  const value = process.env.POWERTOOLS_METRICS_DISABLED;
  if (value !== undefined) {
    try {
      return getBooleanFromEnv({
        key: 'POWERTOOLS_METRICS_DISABLED',
        defaultValue: false,
        extendedParsing: true,
      });
    } catch {
      throw new Error(
        `POWERTOOLS_METRICS_DISABLED is '${value.slice(0, 40)}', not a boolean: set it to true or false (1/0, yes/no, on/off), or remove it.`,
      );
    }
  }
  return isDevMode();
}

/**
 * The `ColdStart` metric of a function that answers callers, in Embedded Metric Format: the document
 * Powertools Metrics' `captureColdStartMetric` prints for the snapshot function (dimensions `service`
 * and `function_name`, count 1), without loading Metrics into the bundles on the request path for one
 * line per execution environment. A test compares both (test/unit/cold-start-metric.test.ts).
 *
 * Undefined, so nothing is printed, when metrics are disabled or POWERTOOLS_METRICS_NAMESPACE is unset:
 * the deployed functions always have a namespace (stage parameter `metricsNamespace`), and a handler
 * run without one (a test, a script) should not file metrics under Powertools' `default_namespace`.
 * Throws, as Powertools Metrics does, when POWERTOOLS_METRICS_DISABLED is not a boolean.
 */
export function coldStartMetricDocument(
  functionName: string | undefined,
  now: number = Date.now(),
): Record<string, unknown> | undefined {
  const namespace = getStringFromEnv({ key: 'POWERTOOLS_METRICS_NAMESPACE', defaultValue: '' });
  if (namespace === '' || metricsDisabled()) return undefined;
  const service = getServiceName() || SERVICE_UNDEFINED;
  // Powertools' order: POWERTOOLS_METRICS_FUNCTION_NAME before the context's name.
  const name =
    getStringFromEnv({ key: 'POWERTOOLS_METRICS_FUNCTION_NAME', defaultValue: '' }) || functionName?.trim();
  const dimensions: Record<string, string> = { service };
  if (name !== undefined && name !== '') dimensions.function_name = name;
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [Object.keys(dimensions)],
          Metrics: [{ Name: COLD_START, Unit: 'Count' }],
        },
      ],
    },
    ...dimensions,
    [COLD_START]: 1,
  };
}

/** Prints the cold start metric (see {@link coldStartMetricDocument}) on stdout, where Lambda's EMF is read. */
export function writeColdStartMetric(functionName: string | undefined): void {
  const document = coldStartMetricDocument(functionName);
  if (document !== undefined) process.stdout.write(`${JSON.stringify(document)}\n`);
}
