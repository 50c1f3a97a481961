/**
 * Reading the snapshot table for an HTTP answer: DynamoDB calls end at the invocation's deadline (an
 * AbortSignal, so a slow table gives the contract's problem+json instead of a Lambda timeout), and
 * DynamoDB's failures become errors that say what they mean to the operator:
 *
 * - the table cannot be read for now (throttling that outlasted the SDK's retries, a 5xx, a network
 *   error, the deadline): {@link StoreUnavailableError}, 503 `STORE_UNAVAILABLE`, safe to retry;
 * - the table or the function is set up wrongly (no such table, no permission): 500
 *   `CONFIGURATION_ERROR` naming the table and what to check;
 * - anything else stays as it is (500 `INTERNAL_ERROR`, details in the logs only).
 */
import { type AppError, ConfigurationError, StoreUnavailableError } from '../errors.ts';

/** DynamoDB's (and the SDK's) names for "too many requests", after the SDK's own retries. */
const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);
/** Server-side failures and the SDK's own time limits (requestTimeout, connectionTimeout). */
const SERVER_OR_TIMEOUT = new Set([
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
/** Node's codes for a connection that could not be made or was lost. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** How the table was being used when a call failed: to read (nothing changed) or to write, and the IAM action. */
export interface TableUse {
  read: boolean;
  action: string;
}

const QUERY: TableUse = { read: true, action: 'dynamodb:Query' };

/** What a set-up mistake means and what to check; `table` is the table's name. */
const CONFIGURATION_HINTS: Record<string, (table: string, use: TableUse) => string> = {
  ResourceNotFoundException: (table) =>
    `no table '${table}' exists in this account and region: check SNAPSHOT_TABLE and that the stack's SnapshotsTable is deployed in the function's region`,
  AccessDeniedException: (table, use) =>
    `the function's role may not use it so: grant ${use.action} on table '${table}' to the role`,
  UnrecognizedClientException: () =>
    "DynamoDB did not accept the function's AWS credentials: check the function's role (locally, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
  CredentialsProviderError: () =>
    'the function found no AWS credentials in its environment (Lambda provides them; locally, export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)',
};

function propertyOf(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[name] : undefined;
}

/**
 * What a failed DynamoDB read of `table` means for the caller. `error` is what `client.send` threw;
 * an AppError (or anything not recognised) is returned unchanged.
 */
export function tableReadError(error: unknown, table: string): unknown {
  return tableError(error, table, QUERY);
}

/**
 * What a failed DynamoDB call on `table` means, for a read or a write (`use`): the same classes as
 * {@link tableReadError}, worded for what was being done. Anything not recognised is returned unchanged.
 */
export function tableError(error: unknown, table: string, use: TableUse): unknown {
  if (!(error instanceof Error)) return error;
  const name = error.name;
  const hint = CONFIGURATION_HINTS[name];
  const verb = use.read ? 'read' : 'written';
  if (hint !== undefined) {
    return new ConfigurationError(
      `The snapshot table '${table}' (SNAPSHOT_TABLE) could not be ${verb}: ${hint(table, use)} (${name}).`,
      { cause: error },
    );
  }
  const code = propertyOf(error, 'code');
  const metadata = propertyOf(error, '$metadata');
  const status = propertyOf(metadata, 'httpStatusCode');
  let reason: string | undefined;
  if (THROTTLING.has(name))
    reason = `DynamoDB throttled the ${use.read ? 'reads' : 'writes'}, also through the SDK's retries (${name})`;
  else if (typeof code === 'string' && NETWORK_CODES.has(code))
    reason = `DynamoDB could not be reached (${code})`;
  else if (SERVER_OR_TIMEOUT.has(name) || propertyOf(error, '$fault') === 'server')
    reason = `DynamoDB failed or did not answer in time (${name})`;
  else if (typeof status === 'number' && status >= 500) reason = `DynamoDB answered HTTP ${status} (${name})`;
  if (reason === undefined) return error;
  return new StoreUnavailableError(
    `The snapshot table '${table}' could not be ${verb}: ${reason}. ${
      use.read
        ? 'Nothing was changed; retrying later is safe.'
        : 'Retrying is safe: the same event stores its snapshot once.'
    }`,
    { cause: error },
  );
}

/** One read of the table (one or more calls) that must end by a deadline. */
export interface TableRead {
  /** The second argument of `client.send`: aborts the call at the deadline. */
  readonly sendOptions: { abortSignal?: AbortSignal };
  /** The error to throw for what a call threw: {@link tableReadError}, or the deadline's own. */
  failure(error: unknown): unknown;
  /** Stops the deadline's timer; call it once the read is over, however it ended. */
  end(): void;
}

const NO_DEADLINE: Omit<TableRead, 'failure'> = { sendOptions: {}, end: () => undefined };

/**
 * Starts a read of `table` that must be over at `deadline` (epoch ms, Date.now's clock; undefined: no
 * limit but the client's own). Throws STORE_UNAVAILABLE at once when the deadline has passed already.
 */
export function beginTableRead(table: string, deadline: number | undefined): TableRead {
  if (deadline === undefined) {
    return { ...NO_DEADLINE, failure: (error) => tableReadError(error, table) };
  }
  const budgetMs = Math.round(deadline - Date.now());
  const late = (cause?: unknown): AppError =>
    new StoreUnavailableError(
      `The snapshot table '${table}' could not be read: DynamoDB did not answer within the ${Math.max(0, budgetMs)} ms left in this invocation. Nothing was changed; retrying later is safe. If it repeats, check DynamoDB's health and the table's throttling metrics; for history and charts, ask for a narrower range (the HTTP functions' 29 s cannot grow); in snapshot runs, raise the snapshot function's timeout.`,
      cause === undefined ? undefined : { cause },
    );
  if (budgetMs <= 0) throw late();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), budgetMs);
  return {
    sendOptions: { abortSignal: controller.signal },
    // Whatever the SDK threw once the signal fired (AbortError, a reset socket), the deadline is the cause.
    failure: (error) => (controller.signal.aborted ? late(error) : tableReadError(error, table)),
    end: () => clearTimeout(timer),
  };
}
