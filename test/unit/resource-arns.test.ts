/** The secrets the roles may read, as packaging derives them from the tenants and secretIdTemplate parameters. */
import { describe, expect, it } from 'vitest';
import {
  EXACT_SECRET_LIMIT,
  foreignRegionArns,
  tenantSecretResources,
} from '../../serverless/resource-arns.ts';

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

describe('tenantSecretResources for secrets given by ARN', () => {
  const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:koodrive/acme';
  // A partial ARN whose name ends in a hyphen and six letters: it looks like a full ARN, but its full
  // ARN is this with Secrets Manager's suffix, which IAM compares the resource with.
  const ambiguous = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:koodrive/acme-backup';
  const full = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:koodrive/acme-AbC123';

  it('grants a partial ARN with the -?????? suffix only', () => {
    expect(tenantSecretResources(`acme=${partial}`, '')).toEqual([`${partial}-??????`]);
  });

  it('grants an ARN that looks full both as given and with -??????, since it may be a partial one', () => {
    expect(tenantSecretResources(`acme=${ambiguous}`, '')).toEqual([ambiguous, `${ambiguous}-??????`]);
    expect(tenantSecretResources(`acme=${full}`, '')).toEqual([full, `${full}-??????`]);
  });

  it('keeps both entries past the exact-secret limit, beside the template’s wildcard', () => {
    expect(tenantSecretResources(`${manyTenants},acme=${ambiguous}`, 'koodrive/{tenantId}')).toEqual([
      ambiguous,
      `${ambiguous}-??????`,
      {
        'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:koodrive/*-??????`,
      },
    ]);
  });

  it('counts secrets, not entries, against the limit: ARNs take two entries, and the setting caps them', () => {
    const arn = (i: number) => full.replace('koodrive/acme', `a${i}`);
    const arns = Array.from({ length: 40 }, (_, i) => `t${i}=${arn(i)}`);
    const names = Array.from({ length: EXACT_SECRET_LIMIT - 40 }, (_, i) => `u${i}=x/${i}`);
    // 50 secrets, named one by one: 40 ARNs (two entries each) and 10 names.
    expect(tenantSecretResources([...arns, ...names].join(','), '')).toHaveLength(2 * 40 + 10);
    // 50 such ARNs do not fit in the tenants setting at all, so the doubled entries stay far below IAM's
    // 10,240 characters for a role's policies.
    const fifty = Array.from({ length: EXACT_SECRET_LIMIT }, (_, i) => `t${i}=${arn(i)}`).join(',');
    expect(() => tenantSecretResources(fifty, '')).toThrow(/over the 3000 that fit/);
  });

  it('names a foreign secret once, as given, however many entries grant it', () => {
    expect(foreignRegionArns({ Resource: [ambiguous, `${ambiguous}-??????`] }, 'eu-west-1')).toEqual([
      ambiguous,
    ]);
  });
});
