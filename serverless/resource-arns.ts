/**
 * A local osls plugin: variable sources that turn configured names into the exact IAM resources they stand for,
 * so each policy names only what the functions use. Resolved offline (no AWS call), at package and print time.
 *
 * - `${tenantSecretArns:<param>}`: the secrets of the tenant list in that stage parameter (with the
 *   `secretIdTemplate` parameter for bare tenant ids). A secret given by name, or by a partial ARN, gets
 *   Secrets Manager's random 6-character suffix as `-??????`; an ARN that ends like a full one is granted
 *   as given and with `-??????`, since a name may end that way too. Past {@link EXACT_SECRET_LIMIT}
 *   secrets, those the template names are granted by its wildcard (`koodrive/*`), as IAM limits a role's
 *   policies to 10,240 characters; a template with no fixed part (`{tenantId}`), whose wildcard would be
 *   every secret of the account, is refused then.
 * - `${eventBusArn:<param>}`: the ARN of the event bus named (or given by ARN) in that stage parameter.
 */
import { parseSecretIdTemplate, parseTenants, TENANT_PLACEHOLDER } from '../lib/tenants.ts';
import { asUserError, stageParamName, userErrorsOf, type VariableSourceContext } from './plugin-support.ts';

/** A policy `Resource` entry: a literal ARN or a CloudFormation `Fn::Sub` filled in by the stack. */
export type IamResource = string | { 'Fn::Sub': string };

/** Past this many distinct secrets, the templated ones are granted by the template's wildcard. */
export const EXACT_SECRET_LIMIT = 50;
/**
 * The longest tenants setting accepted: Lambda allows 4 KB for all of a function's environment
 * variables, and the others take about 1 KB.
 */
const MAX_TENANTS_SETTING = 3_000;

/**
 * A secret's full ARN ends in the hyphen and six characters Secrets Manager adds to the name; but so
 * does a partial ARN whose name happens to end that way (`…:secret:koodrive/acme-backup`).
 */
const MAY_BE_FULL_SECRET_ARN = /:secret:.+-[A-Za-z0-9]{6}$/;

/**
 * The IAM resources of one secret: a name gets Secrets Manager's random suffix as `-??????`; so does a
 * partial ARN (one without the suffix), which GetSecretValue accepts but IAM would compare with the
 * full ARN and deny. An ARN that ends like a full one may still be partial (a name ending in a hyphen
 * and six letters or digits, which AWS advises against for that reason): it is granted both as given
 * and with `-??????`, one of which is the secret's full ARN. (The second also matches a secret whose
 * name is that whole ARN's name, a neighbour of the same prefix: a small widening, against a denied
 * GetSecretValue at every run.)
 */
function secretResources(secretId: string): IamResource[] {
  if (secretId.startsWith('arn:')) {
    return MAY_BE_FULL_SECRET_ARN.test(secretId) ? [secretId, `${secretId}-??????`] : [`${secretId}-??????`];
  }
  return [
    {
      'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${secretId}-??????`,
    },
  ];
}

/**
 * Secrets Manager resources for a `KOODRIVE_TENANTS` value (and `KOODRIVE_SECRET_ID_TEMPLATE`): one per
 * distinct secret, in configuration order, or past {@link EXACT_SECRET_LIMIT} the template's wildcard
 * for the secrets it names. Throws, at package time, what would otherwise fail the deployment.
 */
export function tenantSecretResources(tenants: string, template = ''): IamResource[] {
  if (tenants.length > MAX_TENANTS_SETTING) {
    throw new Error(
      `The tenants parameter is ${tenants.length} characters, over the ${MAX_TENANTS_SETTING} that fit in Lambda's 4 KB of environment variables: ` +
        `list bare tenant ids (acme,beta,…) and name their secrets with the secretIdTemplate parameter (e.g. koodrive/${TENANT_PLACEHOLDER}).`,
    );
  }
  const checkedTemplate = parseSecretIdTemplate(template, 'secretIdTemplate');
  const all = parseTenants(tenants, 'tenants', checkedTemplate).all;
  const secretIds = [...new Set(all.map((tenant) => tenant.secretId))];
  // The limits count secrets, not entries: an ARN that may be full takes two, but the tenants setting's
  // 3,000 characters hold fewer than 50 ARNs, which keeps the policy well within IAM's 10,240.
  if (secretIds.length <= EXACT_SECRET_LIMIT) return secretIds.flatMap(secretResources);
  const templated = (tenantId: string) =>
    checkedTemplate === '' ? undefined : checkedTemplate.replace(TENANT_PLACEHOLDER, tenantId);
  const exact = [
    ...new Set(
      all.filter((tenant) => tenant.secretId !== templated(tenant.tenantId)).map((tenant) => tenant.secretId),
    ),
  ];
  if (exact.length > EXACT_SECRET_LIMIT) {
    throw new Error(
      `The tenants parameter names ${exact.length} secrets one by one, more than an IAM policy can list (${EXACT_SECRET_LIMIT}): ` +
        `name them after one pattern with the secretIdTemplate parameter (e.g. koodrive/${TENANT_PLACEHOLDER}) and list bare tenant ids.`,
    );
  }
  const templatedCount = secretIds.length - exact.length;
  // `{tenantId}` alone would become `*-??????`: every secret of the account and region, not KooDrive's.
  if (templatedCount > 0 && checkedTemplate === TENANT_PLACEHOLDER) {
    throw new Error(
      `The tenants parameter names ${secretIds.length} secrets, more than an IAM policy can list one by one (${EXACT_SECRET_LIMIT}), ` +
        `and the secretIdTemplate '${TENANT_PLACEHOLDER}' has no fixed part: its wildcard would let the functions read every secret in the account and region. ` +
        `Keep the tenants' secrets under a prefix of their own and name it in secretIdTemplate (e.g. koodrive/${TENANT_PLACEHOLDER}).`,
    );
  }
  const wildcard =
    templatedCount > 0 ? secretResources(checkedTemplate.replace(TENANT_PLACEHOLDER, '*')) : [];
  return [...exact.flatMap(secretResources), ...wildcard];
}

/**
 * The EventBridge bus resource for a bus name (`default` included) or ARN. Empty (publishEventBus: nothing
 * is published) gives `AWS::NoValue`, for a statement that the PublishesEvents condition leaves out anyway.
 */
export function eventBusResource(bus: string): IamResource | { Ref: 'AWS::NoValue' } {
  const name = bus.trim();
  if (name === '') return { Ref: 'AWS::NoValue' };
  return name.startsWith('arn:')
    ? name
    : { 'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/${name}` };
}

const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * The KMS keys of secrets encrypted with a customer managed key: comma-separated key ARNs (not aliases:
 * kms:Decrypt is authorized on the key). Empty: none (secrets under the AWS managed key need no grant).
 */
export function secretKeyArns(keys: string): string[] {
  const arns = keys
    .split(',')
    .map((arn) => arn.trim())
    .filter((arn) => arn !== '');
  // Not blank but naming no key would still make the stack create the policy, with no resource.
  if (arns.length === 0 && keys !== '') {
    throw new Error(`secretKmsKeyArns is '${keys}': give KMS key ARNs, comma-separated, or leave it empty.`);
  }
  for (const arn of arns) {
    if (!KMS_KEY_ARN.test(arn)) {
      throw new Error(
        `secretKmsKeyArns has '${arn}': give the ARNs of the KMS keys that encrypt the tenants' secrets, comma-separated, e.g. arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (a key ARN, not an alias).`,
      );
    }
  }
  return [...new Set(arns)];
}

async function readParam(source: string, context: VariableSourceContext): Promise<string> {
  const name = stageParamName(source, context, 'tenants');
  const value = await context.resolveVariable(`param:${name}`);
  if (typeof value !== 'string')
    throw new Error(`Stage parameter '${name}' must be a string for \${${source}:…}.`);
  return value;
}

/**
 * ARNs in a compiled template (or any JSON) whose region is not the stack's: a secret, a bus or an alarm topic
 * in another region cannot be used by the stack (Secrets Manager and EventBridge are called in the functions'
 * region, and CloudWatch notifies only topics of its own), so a deploy would fail or the stack would not work.
 * Regionless ARNs (IAM, S3 buckets) and `Fn::Sub` placeholders pass.
 */
export function foreignRegionArns(node: unknown, region: string): string[] {
  const found = new Set<string>();
  const visit = (value: unknown) => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(/arn:[a-z-]+:[a-z0-9-]+:([a-z0-9-]+):[^,\s"]*/g)) {
        // A secret's policy entry with `-??????` is the ARN the settings gave: named once.
        if (match[1] !== region) found.add(match[0].replace(/-\?{6}$/, ''));
      }
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (typeof value === 'object' && value !== null) {
      for (const item of Object.values(value)) visit(item);
    }
  };
  visit(node);
  return [...found];
}

interface ServerlessLike {
  getProvider(name: 'aws'): { getRegion(): string };
  service: { provider: { compiledCloudFormationTemplate: { Resources: Record<string, unknown> } } };
}

/** The plugin osls loads from `plugins:`: variable sources, and a check of the ARNs they and the settings gave. */
export default class ResourceArnsPlugin {
  readonly hooks: Record<string, () => void>;

  constructor(serverless: ServerlessLike) {
    // Once serverless.yml's own `resources` are merged in (the roles, whose KMS keys appear nowhere else,
    // and the conditions), just before the template is written: in before:package:finalize they are not
    // yet part of the compiled template, so a key in another region would pass unseen.
    this.hooks = {
      'before:aws:package:finalize:saveServiceState': () => {
        const region = serverless.getProvider('aws').getRegion();
        const foreign = foreignRegionArns(serverless.service.provider.compiledCloudFormationTemplate, region);
        if (foreign.length === 0) return;
        throw asUserError(
          new Error(
            `The stack deploys to ${region}, but these ARNs are in another region: ${foreign.join(', ')}. ` +
              "Secrets, the event bus and the alarm topic must be in the stack's region: deploy with --region <theirs> (or AWS_REGION), or use ones in this region.",
          ),
        );
      },
    };
  }

  readonly configurationVariablesSources = {
    tenantSecretArns: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => {
        const template = await context.resolveVariable('param:secretIdTemplate');
        return {
          value: tenantSecretResources(
            await readParam('tenantSecretArns', context),
            typeof template === 'string' ? template : '',
          ),
        };
      }),
    },
    eventBusArn: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => ({
        value: eventBusResource(await readParam('eventBusArn', context)),
      })),
    },
    secretKeyArns: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => ({
        value: secretKeyArns(await readParam('secretKeyArns', context)),
      })),
    },
  };
}
