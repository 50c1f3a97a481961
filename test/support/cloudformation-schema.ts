/**
 * Checks a CloudFormation template against the AWS resource schemas (the CloudFormation registry, as the AWS CDK
 * ships it in `@aws-cdk/aws-service-spec`), offline: every resource type exists, every property and nested property
 * is one the schema names, required ones are present, literal values have the schema's type, and every
 * `Fn::GetAtt` names an attribute its resource has. It is what CloudFormation would refuse at deploy time,
 * found at test time instead. Intrinsic functions stand for a value of any type; their targets are checked by
 * the template tests themselves.
 */
import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';

type Json = Record<string, unknown>;

/** The parts of the schema database this check reads. */
interface PropertyType {
  type: string;
  element?: PropertyType;
  types?: PropertyType[];
  reference?: { $ref: string };
}
interface Property {
  type: PropertyType;
  required?: boolean;
  previousTypes?: PropertyType[];
}
interface Definition {
  properties: Record<string, Property>;
}
interface ResourceSchema extends Definition {
  attributes: Record<string, unknown>;
}
interface SchemaDatabase {
  lookup(
    entity: 'resource',
    index: 'cloudFormationType',
    operator: 'equals',
    value: string,
  ): { only(): ResourceSchema } & ArrayLike<ResourceSchema>;
  get(entity: 'typeDefinition', id: string): Definition;
}

const INTRINSICS = new Set([
  'Ref',
  'Condition',
  'Fn::GetAtt',
  'Fn::Sub',
  'Fn::Join',
  'Fn::If',
  'Fn::Select',
  'Fn::Split',
  'Fn::ImportValue',
  'Fn::FindInMap',
  'Fn::Base64',
  'Fn::GetAZs',
  'Fn::Cidr',
  'Fn::ToJsonString',
  'Fn::Length',
]);

/** Keys a resource may have beside Type and Properties. */
const RESOURCE_KEYS = new Set([
  'Type',
  'Properties',
  'DependsOn',
  'Condition',
  'DeletionPolicy',
  'UpdateReplacePolicy',
  'UpdatePolicy',
  'CreationPolicy',
  'Metadata',
]);

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIntrinsic(value: unknown): boolean {
  if (!isRecord(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && INTRINSICS.has(keys[0] ?? '');
}

let database: SchemaDatabase | undefined;

function schemas(): SchemaDatabase {
  database ??= loadAwsServiceSpecSync() as unknown as SchemaDatabase;
  return database;
}

function resourceSchema(type: string): ResourceSchema | undefined {
  const found = schemas().lookup('resource', 'cloudFormationType', 'equals', type);
  return found.length === 1 ? found.only() : undefined;
}

function describeType(type: PropertyType): string {
  switch (type.type) {
    case 'array':
    case 'map':
      return `${type.type} of ${type.element ? describeType(type.element) : 'anything'}`;
    case 'union':
      return (type.types ?? []).map(describeType).join(' or ');
    case 'ref':
      return 'object';
    default:
      return type.type;
  }
}

/**
 * Problems of one value against one type; `[]` when it fits. CloudFormation converts scalars the way its
 * resource providers do: a number where a string is asked, a numeric string where a number is, "true"/"false"
 * where a boolean is.
 */
function check(value: unknown, type: PropertyType, where: string): string[] {
  if (isIntrinsic(value)) return [];
  switch (type.type) {
    case 'json':
      return [];
    case 'string':
    case 'date-time':
      return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
        ? []
        : [`${where}: expected a string, got ${JSON.stringify(value)}`];
    case 'integer':
    case 'number': {
      const number = typeof value === 'string' ? Number(value) : value;
      if (
        typeof number !== 'number' ||
        !Number.isFinite(number) ||
        (typeof value === 'string' && value.trim() === '')
      ) {
        return [`${where}: expected a ${type.type}, got ${JSON.stringify(value)}`];
      }
      return type.type === 'integer' && !Number.isInteger(number)
        ? [`${where}: expected an integer, got ${JSON.stringify(value)}`]
        : [];
    }
    case 'boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false'
        ? []
        : [`${where}: expected a boolean, got ${JSON.stringify(value)}`];
    case 'array':
      if (!Array.isArray(value)) return [`${where}: expected a list, got ${JSON.stringify(value)}`];
      return type.element
        ? value.flatMap((item, i) => check(item, type.element as PropertyType, `${where}[${i}]`))
        : [];
    case 'map':
      if (!isRecord(value)) return [`${where}: expected a map, got ${JSON.stringify(value)}`];
      return type.element
        ? Object.entries(value).flatMap(([key, item]) =>
            check(item, type.element as PropertyType, `${where}.${key}`),
          )
        : [];
    case 'tag':
      return checkObject(
        value,
        {
          properties: {
            Key: { type: { type: 'string' }, required: true },
            Value: { type: { type: 'string' }, required: true },
          },
        },
        where,
      );
    case 'ref':
      return checkObject(value, schemas().get('typeDefinition', type.reference?.$ref ?? ''), where);
    case 'union': {
      const options = type.types ?? [];
      if (options.some((option) => check(value, option, where).length === 0)) return [];
      return [`${where}: expected ${describeType(type)}, got ${JSON.stringify(value)}`];
    }
    default:
      return [`${where}: the schema has a type this check does not know (${type.type})`];
  }
}

function checkObject(value: unknown, definition: Definition, where: string): string[] {
  if (!isRecord(value)) return [`${where}: expected an object, got ${JSON.stringify(value)}`];
  const problems: string[] = [];
  for (const [name, property] of Object.entries(definition.properties)) {
    if (property.required && !(name in value)) problems.push(`${where}: lacks the required property ${name}`);
  }
  for (const [name, item] of Object.entries(value)) {
    const property = definition.properties[name];
    if (!property) {
      const known = Object.keys(definition.properties).sort().join(', ');
      problems.push(`${where}: has no property ${name} (it has ${known})`);
      continue;
    }
    const found = check(item, property.type, `${where}.${name}`);
    // A value of a type the property had before still deploys.
    const accepted = (property.previousTypes ?? []).some(
      (old) => check(item, old, `${where}.${name}`).length === 0,
    );
    if (!accepted) problems.push(...found);
  }
  return problems;
}

/**
 * Every attribute a node refers to, as [logical id, attribute]: by `Fn::GetAtt`, and by the
 * `${LogicalId.Attribute}` placeholders of `Fn::Sub` strings (its own variables aside).
 */
function attributeReferences(node: unknown, found: [string, string][] = []): [string, string][] {
  if (Array.isArray(node)) {
    for (const item of node) attributeReferences(item, found);
  } else if (isRecord(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Fn::GetAtt') {
        const [id, ...attribute] = Array.isArray(value) ? value.map(String) : String(value).split('.');
        found.push([id ?? '', attribute.join('.')]);
      } else if (key === 'Fn::Sub') {
        const [text, variables] = Array.isArray(value) ? value : [value, {}];
        for (const match of String(text).matchAll(/\$\{([^}!][^}]*)\}/g)) {
          const [id, ...attribute] = (match[1] ?? '').split('.');
          if (attribute.length > 0 && !(isRecord(variables) && (id ?? '') in variables)) {
            found.push([id ?? '', attribute.join('.')]);
          }
        }
        attributeReferences(variables, found);
      } else attributeReferences(value, found);
    }
  }
  return found;
}

/** What CloudFormation would refuse in a template, one line per problem; `[]` when the schemas accept it all. */
export function templateProblems(template: Json): string[] {
  const resources = isRecord(template.Resources) ? template.Resources : {};
  const problems: string[] = [];
  for (const [id, resource] of Object.entries(resources)) {
    if (!isRecord(resource) || typeof resource.Type !== 'string') {
      problems.push(`${id}: a resource needs a Type`);
      continue;
    }
    for (const key of Object.keys(resource)) {
      if (!RESOURCE_KEYS.has(key)) problems.push(`${id}: a resource has no key ${key}`);
    }
    if (resource.Type.startsWith('Custom::') || resource.Type === 'AWS::CloudFormation::CustomResource')
      continue;
    const schema = resourceSchema(resource.Type);
    if (!schema) {
      problems.push(`${id}: no resource type ${resource.Type}`);
      continue;
    }
    problems.push(...checkObject(resource.Properties ?? {}, schema, `${id} (${resource.Type})`));
  }
  for (const [id, attribute] of attributeReferences(template)) {
    const resource = resources[id];
    if (!isRecord(resource) || typeof resource.Type !== 'string') continue; // dangling ids: the template tests
    if (resource.Type.startsWith('Custom::')) continue;
    const schema = resourceSchema(resource.Type);
    if (schema && !(attribute in schema.attributes)) {
      const known = Object.keys(schema.attributes).sort().join(', ');
      problems.push(
        `Fn::GetAtt ${id}.${attribute}: ${resource.Type} has no such attribute (it has ${known})`,
      );
    }
  }
  return [...new Set(problems)];
}
