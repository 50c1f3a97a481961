/**
 * The time limits of every AWS SDK client the functions build (Secrets Manager, DynamoDB,
 * EventBridge): 2 s to connect, 5 s for an answer. `throwOnRequestTimeout` matters: without it the
 * SDK's node:http handler only prints a warning when `requestTimeout` passes and keeps waiting, so an
 * endpoint that accepts the connection and never answers would hold the invocation until Lambda's own
 * timeout, with no problem+json answer and no record of what failed. With it, the call fails with
 * `TimeoutError`, which the SDK retries like any transient failure (Secrets Manager and DynamoDB: 3
 * attempts in all, below; EventBridge: none).
 */
export const AWS_REQUEST_HANDLER = {
  connectionTimeout: 2_000,
  requestTimeout: 5_000,
  throwOnRequestTimeout: true,
} as const;

/**
 * Tries of each Secrets Manager call (the SDK's default for it, pinned: newer SDKs change some
 * clients' defaults, DynamoDB's to 4). A read with no answer fails after this many tries of
 * `requestTimeout`, and its detail says so ("time limit × tries").
 */
export const SECRETS_MANAGER_MAX_ATTEMPTS = 3;

/**
 * Tries of each DynamoDB call, pinned: the SDK's default became 4 with its 2026 retry settings, while
 * the snapshot job's budgets (the 20 s margin of a run, the lease time kept before publishing threshold
 * events) are sized for three tries of `requestTimeout`.
 */
export const DYNAMODB_MAX_ATTEMPTS = 3;
