import {
  getNumberFromEnv,
  getStringFromEnv,
  getXRayTraceIdFromEnv,
  isDevMode,
} from '@aws-lambda-powertools/commons/utils/env';
import { Logger, LogLevelThreshold } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { AppError } from './errors.ts';
import { originalStack } from './source-map.ts';

/** The service name of each Logger {@link createLogger} made: the settings its lines can be written with. */
const SERVICE_NAMES = new WeakMap<Logger, string>();

/**
 * One structured JSON logger per function. Its `service` is POWERTOOLS_SERVICE_NAME (the stage's
 * metricsService, as on the metrics), else `koodrive-allocation`; a test may name its own.
 */
export function createLogger(
  serviceName = process.env.POWERTOOLS_SERVICE_NAME?.trim() || 'koodrive-allocation',
): Logger {
  const logger = new Logger({ serviceName });
  SERVICE_NAMES.set(logger, serviceName);
  return logger;
}

/** One invocation's keys and its one INFO line (see {@link createRequestLogs}). */
export interface RequestLog {
  /** Adds keys to every line of this invocation: the Logger's and the INFO line. */
  appendKeys(keys: Record<string, string>): void;
  /** Prints `message` at INFO with the invocation's keys, then `fields`, when the Logger prints INFO. */
  info(message: string, fields: Record<string, unknown>): void;
  /** Whether this is the execution environment's first invocation, as the Logger's `cold_start` says. */
  readonly coldStart: boolean;
}

/** Powertools' sampling rate as the Logger reads it (Logger.setInitialSampleRate): valid in [0, 1], else 0. */
function sampleRateFromEnv(): number {
  let rate: number;
  try {
    rate = getNumberFromEnv({ key: 'POWERTOOLS_LOGGER_SAMPLE_RATE', defaultValue: 0 });
  } catch {
    return 0;
  }
  return rate >= 0 && rate <= 1 ? rate : 0;
}

/**
 * The one INFO line an HTTP function prints per request, written straight to stdout with the fields and
 * order Powertools Logger would give it, because Logger's generic path (merging attribute stores into a
 * log item, a JSON replacer, a Console) measured ~40 µs of a ~430 µs warm call: more than the signature,
 * the parsing and the handler framework together. Every other line goes through the Logger.
 *
 * The line copies what the Logger would print with {@link createLogger}'s settings; for anything else it
 * hands the line to the Logger: a Logger made elsewhere, POWERTOOLS_DEV (indented, on the global
 * console), a TZ other than UTC (Powertools' offset timestamps), an invocation without a context. A test
 * compares both ways' lines under the settings that change them (test/unit/request-log.test.ts).
 */
export function createRequestLogs(logger: Logger): { begin(context: Context | undefined): RequestLog } {
  const service = SERVICE_NAMES.get(logger);
  // Read once, as the Logger reads them when it is made: Utility's cold start (only an on-demand
  // environment has one) and the sampling rate.
  let coldStart = process.env.AWS_LAMBDA_INITIALIZATION_TYPE?.trim() === 'on-demand';
  const samplingRate = sampleRateFromEnv();
  // Powertools formats a timestamp in another zone with its offset; UTC (or none) as toISOString does.
  const tz = getStringFromEnv({ key: 'TZ', defaultValue: '' });
  const direct = service !== undefined && !isDevMode() && (tz === '' || tz.includes('UTC'));
  return {
    begin(context) {
      // The Logger's addContext takes its cold start on each invocation; this mirrors it.
      const invocationColdStart = coldStart;
      coldStart = false;
      const keys: Record<string, string> = {};
      return {
        coldStart: invocationColdStart,
        appendKeys(added) {
          logger.appendKeys(added);
          Object.assign(keys, added);
        },
        info(message, fields) {
          if (logger.level > LogLevelThreshold.INFO) return;
          if (!direct || context === undefined) {
            logger.info(message, fields);
            return;
          }
          // PowertoolsLogFormatter's order. LogItem.prepareForPrint drops undefined, null and '': JSON
          // leaves out undefined itself, and the others (rare) are deleted, so the common line keeps
          // the object's fast shape.
          const line: Record<string, unknown> = {
            level: 'INFO',
            message,
            timestamp: new Date().toISOString(),
            service,
            cold_start: invocationColdStart,
            function_arn: context.invokedFunctionArn,
            function_memory_size: context.memoryLimitInMB,
            function_name: context.functionName,
            function_request_id: context.awsRequestId,
            sampling_rate: samplingRate,
            xray_trace_id: getXRayTraceIdFromEnv(),
            tenant_id: context.tenantId,
            ...keys,
            ...fields,
          };
          for (const key in line) {
            const value = line[key];
            if (value === null || value === '') delete line[key];
          }
          process.stdout.write(`${JSON.stringify(line)}\n`);
        },
      };
    },
  };
}

/**
 * What may be logged about an error: its name, code and message (ours never hold secrets), the
 * cause's name, and a malformed snapshot item's key — never request headers, secret values or signatures. An unexpected error (not one of
 * ours) also gets its stack, mapped to the sources, unless `stack` is false (an expected state, whose
 * stack would be noise: then the bundle's source map is not read for it either).
 */
export function describeError(error: unknown, options: { stack?: boolean } = {}): Record<string, unknown> {
  if (error instanceof AppError) {
    const cause = error.cause instanceof Error ? error.cause.name : undefined;
    return {
      errorCode: error.code,
      errorName: error.name,
      errorMessage: error.message,
      ...(cause === undefined ? {} : { causeName: cause }),
      ...(error.upstreamCode === undefined ? {} : { upstreamCode: error.upstreamCode }),
      // Already redacted and cut to 300 characters, as in answers: the vendor's own words for the failure.
      ...(error.upstreamMessage === undefined ? {} : { upstreamMessage: error.upstreamMessage }),
      ...(error.koodriveTraceId === undefined ? {} : { koodriveTraceId: error.koodriveTraceId }),
    };
  }
  if (error instanceof Error) {
    // A malformed snapshot item's table key (lib/snapshots/store.ts), read by name so that this module
    // does not load the store: ids and a time, nothing secret.
    const itemKey = (error as { itemKey?: unknown }).itemKey;
    return {
      errorName: error.name,
      errorMessage: error.message,
      ...(typeof itemKey === 'object' && itemKey !== null ? { itemKey } : {}),
      ...(error.stack === undefined || options.stack === false ? {} : { stack: originalStack(error.stack) }),
    };
  }
  return { errorName: typeof error };
}
