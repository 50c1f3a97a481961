import { Logger } from '@aws-lambda-powertools/logger';
import { AppError } from './errors.ts';
import { originalStack } from './source-map.ts';

/**
 * One structured JSON logger per function. Its `service` is POWERTOOLS_SERVICE_NAME (the stage's
 * metricsService, as on the metrics), else `koodrive-allocation`; a test may name its own.
 */
export function createLogger(
  serviceName = process.env.POWERTOOLS_SERVICE_NAME?.trim() || 'koodrive-allocation',
): Logger {
  return new Logger({ serviceName });
}

/**
 * What may be logged about an error: its name, code and message (ours never hold secrets), and the
 * cause's name — never request headers, secret values or signatures. An unexpected error (not one of
 * ours) also gets its stack, mapped to the sources.
 */
export function describeError(error: unknown): Record<string, unknown> {
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
  if (error instanceof Error)
    return {
      errorName: error.name,
      errorMessage: error.message,
      ...(error.stack === undefined ? {} : { stack: originalStack(error.stack) }),
    };
  return { errorName: typeof error };
}
