/**
 * What `npm start`'s banner tells about the stack it started: the region it reads real secrets in (and
 * where that came from), and snapshot commands for a tenant the stack has.
 */
import { describe, expect, it } from 'vitest';
import { localRegion, snapshotCommandsHint } from '../../local/start.ts';

describe('npm start banner', () => {
  it('names the variable the region came from, as the stack reads it', () => {
    expect(localRegion({ AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-west-2' })).toEqual({
      region: 'eu-west-1',
      from: 'AWS_REGION',
    });
    expect(localRegion({ AWS_DEFAULT_REGION: 'us-west-2' })).toEqual({
      region: 'us-west-2',
      from: 'AWS_DEFAULT_REGION',
    });
    expect(localRegion({ AWS_REGION: ' ' })).toEqual({
      region: 'us-east-1',
      from: 'the default: set AWS_REGION',
    });
  });

  it("suggests snapshot commands for the stack's own first tenant, not the demo's when it is not served", () => {
    expect(snapshotCommandsHint('demo=koodrive/demo,lab=koodrive/lab')).toBe(
      'npm run snapshot:local -- --sqs demo | --event demo | --schedule',
    );
    expect(snapshotCommandsHint('acme=arn:aws:secretsmanager:eu-west-1:1:secret:koodrive/acme,beta')).toBe(
      'npm run snapshot:local -- --sqs acme | --event acme | --schedule',
    );
    expect(snapshotCommandsHint(' beta , gamma')).toBe(
      'npm run snapshot:local -- --sqs beta | --event beta | --schedule',
    );
  });

  it('skips the empty entries the tenants setting may hold, as the functions do (a leading comma)', () => {
    // parseTenants skips an empty pair: the stack serves acme, and has no demo tenant to snapshot.
    expect(snapshotCommandsHint(',acme=koodrive/acme')).toBe(
      'npm run snapshot:local -- --sqs acme | --event acme | --schedule',
    );
    expect(snapshotCommandsHint(' , beta')).toBe(
      'npm run snapshot:local -- --sqs beta | --event beta | --schedule',
    );
  });
});
