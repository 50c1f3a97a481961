/**
 * A local osls plugin: variable sources that turn configured names into the exact IAM resources they stand for,
 * so each policy names only what the functions use. Resolved offline (no AWS call), at package and print time.
 *
 * - `${tenantSecretArns:<param>}`: the secrets of the `tenantId=secretId` list in that stage parameter. A secret
 *   given by name gets Secrets Manager's random 6-character suffix as `-??????`; one given as an ARN stays as is.
 * - `${eventBusArn:<param>}`: the ARN of the event bus named (or given by ARN) in that stage parameter.
 */
import { parseTenants } from '../lib/tenants.ts';

/** A policy `Resource` entry: a literal ARN or a CloudFormation `Fn::Sub` filled in by the stack. */
export type IamResource = string | { 'Fn::Sub': string };

interface VariableSourceContext {
  address?: string | null;
  resolveVariable: (variable: string) => Promise<unknown>;
}

/** Secrets Manager resources for a `KOODRIVE_TENANTS` value, one per distinct secret, in configuration order. */
export function tenantSecretResources(tenants: string): IamResource[] {
  const secretIds = [...new Set(parseTenants(tenants).all.map((tenant) => tenant.secretId))];
  return secretIds.map((secretId) =>
    secretId.startsWith('arn:')
      ? secretId
      : {
          'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${secretId}-??????`,
        },
  );
}

/** The EventBridge bus resource for a bus name (`default` included) or ARN. */
export function eventBusResource(bus: string): IamResource {
  const name = bus.trim();
  if (name === '') throw new Error('The event bus name is empty: give a bus name, "default", or a bus ARN.');
  return name.startsWith('arn:')
    ? name
    : { 'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/${name}` };
}

async function readParam(source: string, context: VariableSourceContext): Promise<string> {
  const name = context.address ?? '';
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new Error(`\${${source}:…} needs the name of a stage parameter, e.g. \${${source}:tenants}.`);
  }
  const value = await context.resolveVariable(`param:${name}`);
  if (typeof value !== 'string')
    throw new Error(`Stage parameter '${name}' must be a string for \${${source}:…}.`);
  return value;
}

/** The plugin osls loads from `plugins:`; it only contributes variable sources. */
export default class ResourceArnsPlugin {
  readonly configurationVariablesSources = {
    tenantSecretArns: {
      resolve: async (context: VariableSourceContext) => ({
        value: tenantSecretResources(await readParam('tenantSecretArns', context)),
      }),
    },
    eventBusArn: {
      resolve: async (context: VariableSourceContext) => ({
        value: eventBusResource(await readParam('eventBusArn', context)),
      }),
    },
  };
}
