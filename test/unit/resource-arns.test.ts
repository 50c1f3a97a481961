/** The secrets the roles may read, as packaging derives them from the tenants and secretIdTemplate parameters. */
import { describe, expect, it } from 'vitest';
import { EXACT_SECRET_LIMIT, tenantSecretResources } from '../../serverless/resource-arns.ts';

const manyTenants = Array.from({ length: EXACT_SECRET_LIMIT + 10 }, (_, i) => `t${i}`).join(',');

describe('tenantSecretResources past the exact-secret limit', () => {
  it('refuses a template with no fixed part, whose wildcard would grant every secret of the account', () => {
    // `{tenantId}` alone would become `secret:*-??????`: GetSecretValue on every secret in the account and
    // region (database passwords, other apps' keys), for the functions behind the HTTP API.
    expect(() => tenantSecretResources(manyTenants, '{tenantId}')).toThrow(
      /secretIdTemplate '\{tenantId\}' has no fixed part.*every secret.*e\.g\. koodrive\/\{tenantId\}/,
    );
  });

  it('still grants a template with a fixed part by its wildcard', () => {
    for (const [template, pattern] of [
      ['koodrive/{tenantId}', 'koodrive/*'],
      ['{tenantId}/koodrive', '*/koodrive'],
    ] as const) {
      expect(tenantSecretResources(manyTenants, template)).toEqual([
        {
          'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${pattern}-??????`,
        },
      ]);
    }
  });

  it('names each secret of a template with no fixed part while they fit', () => {
    expect(tenantSecretResources('a,b', '{tenantId}')).toHaveLength(2);
  });
});
