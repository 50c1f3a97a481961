import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_APP, DEMO_SECRET_ID, demoSecretString } from '../../local/demo.ts';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const REGION = 'eu-central-1';

let sm: LocalSecretsManager;
let client: SecretsManagerClient;

async function errorOf(
  promise: Promise<unknown>,
): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  sm = await startLocalSecretsManager({
    port: 0,
    region: REGION,
    secrets: { 'koodrive/acme': '{"appId":"a"}' },
  });
  client = new SecretsManagerClient({
    endpoint: sm.url,
    region: REGION,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await sm.close();
});

beforeEach(() => {
  sm.reset();
});

describe('local Secrets Manager with the real SDK', () => {
  it('answers GetSecretValue by name with the AWS shape', async () => {
    const out = await client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' }));
    expect(out.SecretString).toBe('{"appId":"a"}');
    expect(out.Name).toBe('koodrive/acme');
    expect(out.ARN).toMatch(
      /^arn:aws:secretsmanager:eu-central-1:000000000000:secret:koodrive\/acme-[A-Za-z0-9]{6}$/,
    );
    expect(out.ARN).toBe(sm.arnOf('koodrive/acme'));
    expect(out.VersionStages).toEqual(['AWSCURRENT']);
    expect(out.VersionId).toMatch(/.+/);
    expect(out.CreatedDate).toBeInstanceOf(Date);
    expect(Math.abs((out.CreatedDate?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
  });

  it('answers GetSecretValue by full ARN', async () => {
    const arn = sm.arnOf('koodrive/acme');
    expect(arn).toBeDefined();
    const out = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    expect(out.Name).toBe('koodrive/acme');
    expect(out.SecretString).toBe('{"appId":"a"}');
  });

  it('serves a new version after PutSecretValue and keeps the ARN', async () => {
    const { arn } = sm.setSecret('rotating', 'v1');
    const first = await client.send(new GetSecretValueCommand({ SecretId: 'rotating' }));
    const put = await client.send(new PutSecretValueCommand({ SecretId: 'rotating', SecretString: 'v2' }));
    expect(put.ARN).toBe(arn);
    expect(put.VersionId).not.toBe(first.VersionId);
    const second = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    expect(second.SecretString).toBe('v2');
    expect(second.VersionId).toBe(put.VersionId);
    const previous = await client.send(
      new GetSecretValueCommand({ SecretId: 'rotating', VersionStage: 'AWSPREVIOUS' }),
    );
    expect(previous.SecretString).toBe('v1');
  });

  it('reflects setSecret rotations immediately', async () => {
    sm.setSecret('rotated-locally', 'old');
    sm.setSecret('rotated-locally', 'new');
    const out = await client.send(new GetSecretValueCommand({ SecretId: 'rotated-locally' }));
    expect(out.SecretString).toBe('new');
  });

  it('creates, describes and lists secrets', async () => {
    const created = await client.send(new CreateSecretCommand({ Name: 'created/one', SecretString: 's' }));
    expect(created.ARN).toBe(sm.arnOf('created/one'));
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'created/one' }));
    expect(described.Name).toBe('created/one');
    expect(Object.values(described.VersionIdsToStages ?? {})).toEqual([['AWSCURRENT']]);
    const listed = await client.send(new ListSecretsCommand({}));
    expect(listed.SecretList?.map((s) => s.Name)).toContain('created/one');
    const again = await errorOf(
      client.send(new CreateSecretCommand({ Name: 'created/one', SecretString: 's' })),
    );
    expect(again.name).toBe('ResourceExistsException');
  });

  it('answers an unknown secret with ResourceNotFoundException', async () => {
    const error = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'no/such/secret' })));
    expect(error.name).toBe('ResourceNotFoundException');
    expect(error.$metadata?.httpStatusCode).toBe(400);
  });

  it('forgets a deleted secret', async () => {
    sm.setSecret('short-lived', 'x');
    sm.deleteSecret('short-lived');
    expect(sm.arnOf('short-lived')).toBeUndefined();
    const error = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'short-lived' })));
    expect(error.name).toBe('ResourceNotFoundException');
  });

  it('marks a secret for deletion as AWS does, refusing its value until restored; forced, forgets it', async () => {
    sm.setSecret('doomed', '{"appId":"d"}');
    const marked = await client.send(
      new DeleteSecretCommand({ SecretId: 'doomed', RecoveryWindowInDays: 7 }),
    );
    expect(marked.Name).toBe('doomed');
    const refused = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'doomed' })));
    expect(refused.name).toBe('InvalidRequestException');
    expect(refused.message).toContain('marked for deletion');
    expect((await client.send(new DescribeSecretCommand({ SecretId: 'doomed' }))).DeletedDate).toBeInstanceOf(
      Date,
    );
    await client.send(new RestoreSecretCommand({ SecretId: 'doomed' }));
    expect((await client.send(new GetSecretValueCommand({ SecretId: 'doomed' }))).SecretString).toBe(
      '{"appId":"d"}',
    );
    await client.send(new DeleteSecretCommand({ SecretId: 'doomed', ForceDeleteWithoutRecovery: true }));
    const gone = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'doomed' })));
    expect(gone.name).toBe('ResourceNotFoundException');
  });

  it('injects throttling and access-denied faults as named SDK errors, then recovers', async () => {
    sm.enqueueFault({ type: 'ThrottlingException' });
    sm.enqueueFault({ type: 'AccessDeniedException' });
    const throttled = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' })));
    expect(throttled.name).toBe('ThrottlingException');
    expect(throttled.$metadata?.httpStatusCode).toBe(400);
    const denied = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' })));
    expect(denied.name).toBe('AccessDeniedException');
    const ok = await client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' }));
    expect(ok.SecretString).toBe('{"appId":"a"}');
  });

  it('injects internal errors and faults restricted to one secret, several times', async () => {
    sm.setSecret('other', 'o');
    sm.enqueueFault({ type: 'InternalServiceError', secretId: 'koodrive/acme', times: 2 });
    const other = await client.send(new GetSecretValueCommand({ SecretId: 'other' }));
    expect(other.SecretString).toBe('o');
    const arn = sm.arnOf('koodrive/acme');
    const first = await errorOf(client.send(new GetSecretValueCommand({ SecretId: arn })));
    expect(first.name).toBe('InternalServiceError');
    expect(first.$metadata?.httpStatusCode).toBe(500);
    const second = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' })));
    expect(second.name).toBe('InternalServiceError');
    const third = await client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' }));
    expect(third.SecretString).toBe('{"appId":"a"}');
  });

  it('injects a not-found fault for an existing secret', async () => {
    sm.enqueueFault({ type: 'ResourceNotFoundException', secretId: 'koodrive/acme' });
    const error = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' })));
    expect(error.name).toBe('ResourceNotFoundException');
  });

  it('drops the connection for a reset fault', async () => {
    sm.enqueueFault({ type: 'reset' });
    const error = await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' })));
    expect(error.$metadata?.httpStatusCode).toBeUndefined();
    expect(error.name).not.toBe('ResourceNotFoundException');
    const ok = await client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' }));
    expect(ok.SecretString).toBe('{"appId":"a"}');
  });

  it('counts GetSecretValue calls per secret, by name or ARN, faulted ones included', async () => {
    sm.setSecret('counted', 'c');
    const arn = sm.arnOf('counted');
    await client.send(new GetSecretValueCommand({ SecretId: 'counted' }));
    await client.send(new GetSecretValueCommand({ SecretId: arn }));
    sm.enqueueFault({ type: 'ThrottlingException' });
    await errorOf(client.send(new GetSecretValueCommand({ SecretId: 'counted' })));
    await client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' }));
    await client.send(new DescribeSecretCommand({ SecretId: 'counted' }));
    expect(sm.getSecretValueCalls('counted')).toBe(3);
    expect(sm.getSecretValueCalls(arn)).toBe(3);
    expect(sm.getSecretValueCalls('koodrive/acme')).toBe(1);
    expect(sm.getSecretValueCalls()).toBe(4);
    sm.reset();
    expect(sm.getSecretValueCalls()).toBe(0);
  });

  it('is reached through AWS_ENDPOINT_URL_SECRETS_MANAGER', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url;
    const envClient = new SecretsManagerClient({
      region: REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    try {
      const out = await envClient.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' }));
      expect(out.SecretString).toBe('{"appId":"a"}');
      expect(sm.getSecretValueCalls('koodrive/acme')).toBe(1);
    } finally {
      envClient.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
      else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = saved;
    }
  });

  it('serves the demo secret as the contract JSON', async () => {
    sm.setSecret(DEMO_SECRET_ID, demoSecretString(DEMO_APP, 'http://127.0.0.1:8787'));
    const out = await client.send(new GetSecretValueCommand({ SecretId: DEMO_SECRET_ID }));
    expect(JSON.parse(out.SecretString ?? '')).toEqual({
      appId: DEMO_APP.appId,
      appSecret: 'local-demo-secret-not-for-production',
      userId: '1505084218764547200',
      baseUrl: 'http://127.0.0.1:8787',
    });
    expect(JSON.parse(demoSecretString(DEMO_APP))).not.toHaveProperty('baseUrl');
  });

  it('answers a request without an operation target with an AWS-style error', async () => {
    const response = await fetch(sm.url, { method: 'POST', body: '{}' });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    const body: unknown = await response.json();
    expect(body).toMatchObject({ __type: 'UnknownOperationException' });
  });
});
