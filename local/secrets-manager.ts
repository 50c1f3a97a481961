/**
 * A local AWS Secrets Manager endpoint for tests and the local stack. It speaks enough of the AWS JSON 1.1
 * protocol (POST `/`, `X-Amz-Target: secretsmanager.<Op>`) that the real `@aws-sdk/client-secrets-manager`
 * client works against it through `endpoint` or `AWS_ENDPOINT_URL_SECRETS_MANAGER`. SigV4 is not verified.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listen } from './listen.ts';

/** A failure to answer instead of the next matching call; `reset` drops the connection without an answer. */
export interface SecretsManagerFault {
  type:
    | 'ThrottlingException'
    | 'AccessDeniedException'
    | 'ResourceNotFoundException'
    | 'InternalServiceError'
    | 'reset';
  /** Only calls naming this secret (by name or ARN); any call when absent. */
  secretId?: string;
  /** How many matching calls fail; default 1. */
  times?: number;
  /** The error's message, as AWS words a variant of it (`Access to KMS is not allowed`); default a typical one. */
  message?: string;
}

/** Handle on a running local Secrets Manager endpoint. */
export interface LocalSecretsManager {
  readonly url: string;
  /** Creates the secret, or puts a new current version of it. */
  setSecret(name: string, secretString: string): { arn: string };
  deleteSecret(name: string): void;
  arnOf(name: string): string | undefined;
  enqueueFault(fault: SecretsManagerFault): void;
  /** GetSecretValue calls received (faulted ones included); for a secret, calls by its name or its ARN. */
  getSecretValueCalls(secretId?: string): number;
  /** Clears counters and faults; secrets stay. */
  reset(): void;
  close(): Promise<void>;
}

export interface LocalSecretsManagerOptions {
  port?: number;
  host?: string;
  region?: string;
  /** Secrets to create at start, name → SecretString. */
  secrets?: Record<string, string>;
}

interface SecretVersion {
  versionId: string;
  secretString: string;
  createdAt: number;
}

interface StoredSecret {
  name: string;
  arn: string;
  createdAt: number;
  lastChangedAt: number;
  /** Oldest first; the last one is AWSCURRENT, the one before AWSPREVIOUS. */
  versions: SecretVersion[];
  /** Set by DeleteSecret with a recovery window: the secret stays, refusing its value, until RestoreSecret. */
  deletedAt?: number;
}

const MARKED_FOR_DELETION =
  "You can't perform this operation on the secret because it was marked for deletion.";

interface PendingFault {
  type: SecretsManagerFault['type'];
  secretId: string | undefined;
  remaining: number;
  message: string | undefined;
}

/** An AWS-style error answer: `__type` in the body and `x-amzn-errortype` in the headers. */
class ServiceError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.name = 'ServiceError';
    this.type = type;
    this.status = status;
  }
}

const ACCOUNT_ID = '000000000000';
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_KEPT_VERSIONS = 10;
const ARN_SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const FAULT_MESSAGES: Record<Exclude<SecretsManagerFault['type'], 'reset'>, string> = {
  ThrottlingException: 'Rate exceeded',
  AccessDeniedException:
    'User: arn:aws:sts::000000000000:assumed-role/local/test is not authorized to perform: secretsmanager:GetSecretValue because no identity-based policy allows the secretsmanager:GetSecretValue action',
  ResourceNotFoundException: "Secrets Manager can't find the specified secret.",
  InternalServiceError: 'An error occurred on the server side.',
};

function randomArnSuffix(): string {
  const bytes = randomBytes(6);
  let suffix = '';
  for (const byte of bytes) suffix += ARN_SUFFIX_ALPHABET[byte % ARN_SUFFIX_ALPHABET.length] ?? 'A';
  return suffix;
}

const epochSeconds = (ms: number): number => ms / 1000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requiredString(input: Record<string, unknown>, field: string): string {
  const value = input[field];
  if (typeof value !== 'string' || value === '') {
    throw new ServiceError(
      'InvalidParameterException',
      `${field} is required and must be a non-empty string.`,
    );
  }
  return value;
}

function optionalString(input: Record<string, unknown>, field: string): string | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new ServiceError('InvalidParameterException', `${field} must be a string.`);
  return value;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ServiceError('InvalidRequestException', 'The request body is too large.'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The `http://host:port` a listening server answers on. */
/** Starts the endpoint on 127.0.0.1 (port 0 = any free port) and resolves once it listens. */
export async function startLocalSecretsManager(
  options: LocalSecretsManagerOptions = {},
): Promise<LocalSecretsManager> {
  const region = options.region ?? 'us-east-1';
  const secrets = new Map<string, StoredSecret>();
  const faults: PendingFault[] = [];
  const getCalls: { requested: string; name: string | undefined }[] = [];
  const sockets = new Set<Socket>();

  function findSecret(secretId: string): StoredSecret | undefined {
    const byName = secrets.get(secretId);
    if (byName !== undefined) return byName;
    if (!secretId.startsWith('arn:')) return undefined;
    for (const secret of secrets.values()) if (secret.arn === secretId) return secret;
    return undefined;
  }

  function requireSecret(secretId: string): StoredSecret {
    const secret = findSecret(secretId);
    if (secret === undefined)
      throw new ServiceError('ResourceNotFoundException', FAULT_MESSAGES.ResourceNotFoundException);
    return secret;
  }

  /** A secret whose value may be read or changed: not marked for deletion (AWS refuses those). */
  function requireLiveSecret(secretId: string): StoredSecret {
    const secret = requireSecret(secretId);
    if (secret.deletedAt !== undefined)
      throw new ServiceError('InvalidRequestException', MARKED_FOR_DELETION);
    return secret;
  }

  function addVersion(secret: StoredSecret, secretString: string, versionId: string): SecretVersion {
    const now = Date.now();
    const version = { versionId, secretString, createdAt: now };
    secret.versions.push(version);
    if (secret.versions.length > MAX_KEPT_VERSIONS)
      secret.versions.splice(0, secret.versions.length - MAX_KEPT_VERSIONS);
    secret.lastChangedAt = now;
    return version;
  }

  function createSecret(name: string, secretString: string, versionId: string): StoredSecret {
    const now = Date.now();
    const secret: StoredSecret = {
      name,
      arn: `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:${name}-${randomArnSuffix()}`,
      createdAt: now,
      lastChangedAt: now,
      versions: [],
    };
    addVersion(secret, secretString, versionId);
    secrets.set(name, secret);
    return secret;
  }

  function stagesOf(secret: StoredSecret, version: SecretVersion): string[] {
    const index = secret.versions.indexOf(version);
    if (index === secret.versions.length - 1) return ['AWSCURRENT'];
    if (index === secret.versions.length - 2) return ['AWSPREVIOUS'];
    return [];
  }

  function versionsToStages(secret: StoredSecret): Record<string, string[]> {
    const result: Record<string, string[]> = {};
    for (const version of secret.versions) {
      const stages = stagesOf(secret, version);
      if (stages.length > 0) result[version.versionId] = stages;
    }
    return result;
  }

  /** Puts a version, honouring the SDK's idempotency token the way AWS does (it becomes the VersionId). */
  function putVersion(secret: StoredSecret, secretString: string, token: string | undefined): SecretVersion {
    const existing = token === undefined ? undefined : secret.versions.find((v) => v.versionId === token);
    if (existing !== undefined) {
      if (existing.secretString !== secretString) {
        throw new ServiceError(
          'ResourceExistsException',
          'A version with this ClientRequestToken already exists with a different secret value.',
        );
      }
      return existing;
    }
    return addVersion(secret, secretString, token ?? randomUUID());
  }

  function takeFault(secretIds: string[]): PendingFault | undefined {
    const names = secretIds.map((id) => findSecret(id)?.name);
    const index = faults.findIndex((fault) => {
      if (fault.secretId === undefined) return true;
      const faultName = findSecret(fault.secretId)?.name;
      return secretIds.includes(fault.secretId) || (faultName !== undefined && names.includes(faultName));
    });
    const fault = faults[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.splice(index, 1);
    return fault;
  }

  const operations: Record<string, (input: Record<string, unknown>) => Record<string, unknown>> = {
    GetSecretValue(input) {
      const secret = requireLiveSecret(requiredString(input, 'SecretId'));
      const versionId = optionalString(input, 'VersionId');
      const stage = optionalString(input, 'VersionStage');
      let version: SecretVersion | undefined;
      if (versionId !== undefined) {
        version = secret.versions.find((v) => v.versionId === versionId);
        if (version !== undefined && stage !== undefined && !stagesOf(secret, version).includes(stage))
          version = undefined;
      } else {
        const wanted = stage ?? 'AWSCURRENT';
        version = secret.versions.find((v) => stagesOf(secret, v).includes(wanted));
      }
      if (version === undefined) {
        throw new ServiceError(
          'ResourceNotFoundException',
          "Secrets Manager can't find the specified secret value for the requested VersionId or VersionStage.",
        );
      }
      return {
        ARN: secret.arn,
        Name: secret.name,
        SecretString: version.secretString,
        VersionId: version.versionId,
        VersionStages: stagesOf(secret, version),
        CreatedDate: epochSeconds(version.createdAt),
      };
    },
    CreateSecret(input) {
      const name = requiredString(input, 'Name');
      const secretString = optionalString(input, 'SecretString');
      if (secretString === undefined) {
        throw new ServiceError(
          'InvalidRequestException',
          'This local endpoint stores SecretString values only.',
        );
      }
      if (secrets.has(name)) {
        throw new ServiceError(
          'ResourceExistsException',
          `The operation failed because the secret ${name} already exists.`,
        );
      }
      const secret = createSecret(
        name,
        secretString,
        optionalString(input, 'ClientRequestToken') ?? randomUUID(),
      );
      const version = secret.versions.at(-1);
      return { ARN: secret.arn, Name: secret.name, VersionId: version?.versionId };
    },
    PutSecretValue(input) {
      const secret = requireLiveSecret(requiredString(input, 'SecretId'));
      const secretString = optionalString(input, 'SecretString');
      if (secretString === undefined) {
        throw new ServiceError(
          'InvalidRequestException',
          'This local endpoint stores SecretString values only.',
        );
      }
      const version = putVersion(secret, secretString, optionalString(input, 'ClientRequestToken'));
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.versionId,
        VersionStages: stagesOf(secret, version),
      };
    },
    DescribeSecret(input) {
      const secret = requireSecret(requiredString(input, 'SecretId'));
      return {
        ARN: secret.arn,
        Name: secret.name,
        CreatedDate: epochSeconds(secret.createdAt),
        LastChangedDate: epochSeconds(secret.lastChangedAt),
        VersionIdsToStages: versionsToStages(secret),
        ...(secret.deletedAt === undefined ? {} : { DeletedDate: epochSeconds(secret.deletedAt) }),
      };
    },
    /**
     * As AWS: with ForceDeleteWithoutRecovery the secret is gone (ResourceNotFoundException from then on);
     * otherwise it is marked for deletion, its value refused, until RestoreSecret (the local endpoint never
     * ends the recovery window itself).
     */
    DeleteSecret(input) {
      const secret = requireSecret(requiredString(input, 'SecretId'));
      const now = Date.now();
      if (input.ForceDeleteWithoutRecovery === true) secrets.delete(secret.name);
      else secret.deletedAt ??= now;
      const days = typeof input.RecoveryWindowInDays === 'number' ? input.RecoveryWindowInDays : 30;
      return {
        ARN: secret.arn,
        Name: secret.name,
        DeletionDate: epochSeconds(input.ForceDeleteWithoutRecovery === true ? now : now + days * 86_400_000),
      };
    },
    RestoreSecret(input) {
      const secret = requireSecret(requiredString(input, 'SecretId'));
      delete secret.deletedAt;
      return { ARN: secret.arn, Name: secret.name };
    },
    ListSecrets() {
      return {
        SecretList: [...secrets.values()].map((secret) => ({
          ARN: secret.arn,
          Name: secret.name,
          CreatedDate: epochSeconds(secret.createdAt),
          LastChangedDate: epochSeconds(secret.lastChangedAt),
          SecretVersionsToStages: versionsToStages(secret),
        })),
      };
    },
  };

  function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/x-amz-json-1.1');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.setHeader('x-amzn-RequestId', randomUUID());
    if (errorType !== undefined) res.setHeader('x-amzn-ErrorType', errorType);
    res.end(text);
  }

  function sendError(res: ServerResponse, error: ServiceError): void {
    send(res, error.status, { __type: error.type, message: error.message }, error.type);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const target = req.headers['x-amz-target'];
    const prefix = 'secretsmanager.';
    if (req.method !== 'POST' || typeof target !== 'string' || !target.startsWith(prefix)) {
      throw new ServiceError(
        'UnknownOperationException',
        'Send POST / with X-Amz-Target: secretsmanager.<Operation>.',
      );
    }
    const operationName = target.slice(prefix.length);
    const operation = Object.hasOwn(operations, operationName) ? operations[operationName] : undefined;
    if (operation === undefined) {
      throw new ServiceError(
        'UnknownOperationException',
        `This local endpoint does not implement ${operationName}.`,
      );
    }
    let input: unknown;
    try {
      input = raw.trim() === '' ? {} : JSON.parse(raw);
    } catch {
      throw new ServiceError('SerializationException', 'The request body is not JSON.');
    }
    if (!isRecord(input))
      throw new ServiceError('SerializationException', 'The request body must be a JSON object.');

    const secretIds = [input.SecretId, input.Name].filter((v): v is string => typeof v === 'string');
    if (operationName === 'GetSecretValue') {
      const requested = secretIds[0] ?? '';
      getCalls.push({ requested, name: findSecret(requested)?.name });
    }
    const fault = takeFault(secretIds);
    if (fault !== undefined) {
      if (fault.type === 'reset') {
        req.socket.destroy();
        return;
      }
      throw new ServiceError(
        fault.type,
        fault.message ?? FAULT_MESSAGES[fault.type],
        fault.type === 'InternalServiceError' ? 500 : 400,
      );
    }
    send(res, 200, operation(input));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      sendError(
        res,
        error instanceof ServiceError
          ? error
          : new ServiceError('InternalServiceError', 'Unexpected local error.', 500),
      );
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  for (const [name, secretString] of Object.entries(options.secrets ?? {}))
    createSecret(name, secretString, randomUUID());

  const url = await listen(server, options.port, options.host);

  return {
    url,
    setSecret(name, secretString) {
      const existing = secrets.get(name);
      if (existing === undefined) return { arn: createSecret(name, secretString, randomUUID()).arn };
      addVersion(existing, secretString, randomUUID());
      return { arn: existing.arn };
    },
    deleteSecret(name) {
      secrets.delete(name);
    },
    arnOf(name) {
      return secrets.get(name)?.arn;
    },
    enqueueFault(fault) {
      faults.push({
        type: fault.type,
        secretId: fault.secretId,
        remaining: fault.times ?? 1,
        message: fault.message,
      });
    },
    getSecretValueCalls(secretId) {
      if (secretId === undefined) return getCalls.length;
      const name = findSecret(secretId)?.name;
      return getCalls.filter(
        (call) => call.requested === secretId || (name !== undefined && call.name === name),
      ).length;
    },
    reset() {
      faults.length = 0;
      getCalls.length = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}
