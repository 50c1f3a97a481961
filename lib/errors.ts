/**
 * The product's error family. Each error carries the contract's `code` and HTTP status, so the HTTP
 * layer maps errors to problem+json in one place. Messages are written for the operator who reads
 * them: they say what was wrong and how to fix it, and never contain a secret value or a signature.
 */
export const ERROR_CODES = {
  INVALID_REQUEST: 400,
  UNKNOWN_TENANT: 404,
  NOT_FOUND: 404,
  CONFIGURATION_ERROR: 500,
  UPSTREAM_REJECTED: 502,
  UPSTREAM_ERROR: 502,
  CREDENTIALS_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
  UPSTREAM_TIMEOUT: 504,
  INTERNAL_ERROR: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_TITLES: Record<ErrorCode, string> = {
  INVALID_REQUEST: 'Invalid request',
  UNKNOWN_TENANT: 'Unknown tenant',
  NOT_FOUND: 'Not found',
  CONFIGURATION_ERROR: 'Configuration error',
  UPSTREAM_REJECTED: 'KooDrive rejected the credentials',
  UPSTREAM_ERROR: 'The KooDrive call failed',
  CREDENTIALS_UNAVAILABLE: 'Credentials unavailable',
  STORE_UNAVAILABLE: 'Snapshot store unavailable',
  UPSTREAM_TIMEOUT: 'KooDrive did not answer in time',
  INTERNAL_ERROR: 'Internal error',
};

export interface AppErrorOptions {
  cause?: unknown;
  upstreamCode?: string;
  upstreamMessage?: string;
}

/** Base of every error the product reports on purpose. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly upstreamCode: string | undefined;
  readonly upstreamMessage: string | undefined;
  /**
   * The X-Traceid of the KooDrive call this error came from, set by the client once a request was sent:
   * the id KooDrive logged, for the logs of runs (a snapshot) that have no answer header to carry it.
   */
  koodriveTraceId: string | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code];
    this.upstreamCode = options.upstreamCode;
    this.upstreamMessage = options.upstreamMessage;
  }
}

export class InvalidRequestError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('INVALID_REQUEST', message, options);
    this.name = 'InvalidRequestError';
  }
}

export class UnknownTenantError extends AppError {
  readonly tenantId: string;
  constructor(tenantId: string) {
    super(
      'UNKNOWN_TENANT',
      `Tenant '${tenantId}' is not configured. Add it to KOODRIVE_TENANTS as ${tenantId}=<secret id>, or as ${tenantId} alone when its secret is named by KOODRIVE_SECRET_ID_TEMPLATE.`,
    );
    this.name = 'UnknownTenantError';
    this.tenantId = tenantId;
  }
}

export class NotFoundError extends AppError {
  constructor(message: string) {
    super('NOT_FOUND', message);
    this.name = 'NotFoundError';
  }
}

export class ConfigurationError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('CONFIGURATION_ERROR', message, options);
    this.name = 'ConfigurationError';
  }
}

export class CredentialsUnavailableError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('CREDENTIALS_UNAVAILABLE', message, options);
    this.name = 'CredentialsUnavailableError';
  }
}

/**
 * The snapshot table could not be read for now: DynamoDB throttled through the SDK's retries, failed
 * (5xx), could not be reached, or did not answer before the invocation's deadline. Nothing was changed;
 * the same request later is safe.
 */
export class StoreUnavailableError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('STORE_UNAVAILABLE', message, options);
    this.name = 'StoreUnavailableError';
  }
}

export class UpstreamRejectedError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('UPSTREAM_REJECTED', message, options);
    this.name = 'UpstreamRejectedError';
  }
}

export class UpstreamError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('UPSTREAM_ERROR', message, options);
    this.name = 'UpstreamError';
  }
}

/** KooDrive answered, but not in the documented shape: the request worked, the data was wrong. */
export class MalformedAllocationError extends UpstreamError {
  constructor(message: string, options?: AppErrorOptions) {
    super(`KooDrive answered in an unexpected shape: ${message}`, options);
    this.name = 'MalformedAllocationError';
  }
}

export class UpstreamTimeoutError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('UPSTREAM_TIMEOUT', message, options);
    this.name = 'UpstreamTimeoutError';
  }
}

/** Wraps anything that is not an AppError so callers see one family; the original stays as `cause`. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError('INTERNAL_ERROR', 'An unexpected error occurred; see the function logs.', {
    cause: error,
  });
}
