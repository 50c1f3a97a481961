import { type Logger, LogLevelThreshold } from '@aws-lambda-powertools/logger';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AWS_REQUEST_HANDLER, SECRETS_MANAGER_MAX_ATTEMPTS } from './aws/request-handler.ts';
import { type Config, loadConfig } from './config.ts';
import { type CredentialsProvider, createCredentialsProvider } from './credentials.ts';
import { type AttemptReport, createKooDriveClient, type KooDriveClient } from './koodrive/client.ts';
import type { Transport } from './koodrive/transport.ts';

/** What a function needs to fetch allocations, built once per container and reused while warm. */
export interface Runtime {
  config: Config;
  credentials: CredentialsProvider;
  koodrive: KooDriveClient;
}

export interface RuntimeOptions {
  logger?: Logger;
  secretsClient?: Pick<SecretsManagerClient, 'send'>;
  transport?: Transport;
  /** Also told of every KooDrive attempt (metrics). */
  onAttempt?: (report: AttemptReport) => void;
}

export function createSecretsClient(): SecretsManagerClient {
  // Endpoints come from the SDK's own variables (AWS_ENDPOINT_URL_SECRETS_MANAGER) for the local stack.
  return new SecretsManagerClient({
    requestHandler: AWS_REQUEST_HANDLER,
    maxAttempts: SECRETS_MANAGER_MAX_ATTEMPTS,
  });
}

function createRuntime(config: Config, options: RuntimeOptions = {}): Runtime {
  const credentials = createCredentialsProvider({
    client: options.secretsClient ?? createSecretsClient(),
    cacheSeconds: config.secretCacheSeconds,
  });
  const { logger } = options;
  const koodrive = createKooDriveClient({
    credentials,
    defaultBaseUrl: config.baseUrl,
    timeoutMs: config.timeoutMs,
    maxAttempts: config.maxAttempts,
    ...(options.transport === undefined ? {} : { transport: options.transport }),
    onAttempt: (report) => {
      if (report.outcome !== 'ok') logger?.warn('KooDrive attempt failed', { ...report });
      // Checked first: even a DEBUG line that is not printed costs the Logger an environment read and
      // a copy of the report, on every warm call.
      else if (logger !== undefined && logger.level <= LogLevelThreshold.DEBUG) {
        logger.debug('KooDrive attempt succeeded', { ...report });
      }
      options.onAttempt?.(report);
    },
  });
  return { config, credentials, koodrive };
}

/** A runtime built on first use, and the configuration it is built from. */
export interface LazyRuntime {
  (): Runtime;
  /**
   * The configuration alone (tenants, …), read on first use: a bad setting of KooDrive calls
   * (KOODRIVE_TIMEOUT_MS=abc), which fails the runtime, does not fail it, so a request still knows
   * its tenant for its log lines.
   */
  config(): Config;
}

/**
 * A lazily built runtime: configuration is read on the first invocation, so a bad setting becomes a
 * CONFIGURATION_ERROR answer instead of a crash during init; once built it is reused.
 */
export function lazyRuntime(
  options: RuntimeOptions & { env?: Record<string, string | undefined> } = {},
): LazyRuntime {
  let config: Config | undefined;
  let runtime: Runtime | undefined;
  const getConfig = (): Config => {
    config ??= loadConfig(options.env ?? process.env);
    return config;
  };
  return Object.assign(
    (): Runtime => {
      runtime ??= createRuntime(getConfig(), options);
      return runtime;
    },
    { config: getConfig },
  );
}
