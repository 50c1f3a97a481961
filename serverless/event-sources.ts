/**
 * A local osls plugin: `${snapshotRequestedRule:<param>}` names the Snapshot Requested rule, tagged with
 * the bus in that stage parameter (see {@link eventBusTag}) and checked against EventBridge's 64
 * characters (see {@link snapshotRequestedRuleName}); `${eventSources:<param>}` gives an EventBridge `source` pattern list from that stage
 * parameter. In `serverless.yml`'s `params:` block it may be a YAML list (with `anything-but` and other
 * matchers); `--param` can only pass a string, which is read as comma-separated source names
 * (`ops.scripts,ops.capacity`, brackets allowed). A bare string would otherwise reach the rule as one
 * value that EventBridge refuses (a pattern's values must be arrays), failing the deploy.
 */
import { createHash } from 'node:crypto';
import { stageParamName, userErrorsOf, type VariableSourceContext } from './plugin-support.ts';

/** The source list for a parameter's value; throws, naming the parameter, what EventBridge would refuse. */
export function eventSourcePattern(value: unknown, param: string): unknown[] {
  if (Array.isArray(value)) {
    if (
      value.length === 0 ||
      value.some((item) => item === null || !['string', 'object'].includes(typeof item))
    ) {
      throw new Error(
        `${param} must list source names or EventBridge matchers, e.g. [ops.scripts] or [{anything-but: [koodrive.allocation]}].`,
      );
    }
    return value;
  }
  if (typeof value !== 'string') {
    throw new Error(
      `${param} must be a list of sources or a comma-separated string of source names, e.g. ops.scripts,ops.capacity.`,
    );
  }
  const names = value
    .replace(/^\s*\[|\]\s*$/g, '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (names.length === 0) {
    throw new Error(
      `${param} is empty: name the sources whose Snapshot Requested events start a snapshot (e.g. ops.scripts), or leave it out for the default.`,
    );
  }
  return names;
}

/**
 * A short tag of an event bus for the name of the rule on it: `default` for the default bus, else six hex
 * digits of the bus's name or ARN. CloudFormation replaces a rule whose bus changes, and refuses to when
 * the rule's name stays the same; with the tag in the name, moving to another bus is an ordinary update.
 */
export function eventBusTag(bus: unknown, param: string): string {
  const name = typeof bus === 'string' ? bus.trim() : '';
  if (name === '') {
    throw new Error(`${param} is empty: give a bus name, default, or a bus ARN.`);
  }
  return name === 'default' ? 'default' : createHash('sha256').update(name).digest('hex').slice(0, 6);
}

/** EventBridge's longest rule name. */
export const MAX_RULE_NAME = 64;

/**
 * The Snapshot Requested rule's name, `<service>-<stage>-requested-<bus tag>`; throws, naming the stage,
 * its length and the longest that fits, when EventBridge would refuse it. Without this, a stage of more
 * than 26 characters fails osls's own schema check with "functions.snapshot.events.2.eventBridge.name
 * must NOT have more than 64 characters", which names neither the stage nor what to do. The name is kept
 * as it was (renaming replaces the rule on deploy), so the stage is what must be short.
 */
export function snapshotRequestedRuleName(service: string, stage: string, tag: string): string {
  const name = `${service}-${stage}-requested-${tag}`;
  if (name.length > MAX_RULE_NAME) {
    const longest = MAX_RULE_NAME - (name.length - stage.length);
    throw new Error(
      `The stage name '${stage}' is ${stage.length} characters, over the ${longest} that fit: it is part of the Snapshot Requested rule's name (${service}-<stage>-requested-${tag}), and EventBridge allows ${MAX_RULE_NAME} characters for a rule's name. Deploy with a stage name of at most ${longest} characters.`,
    );
  }
  return name;
}

/** The plugin osls loads from `plugins:`; it only contributes variable sources. */
export default class EventSourcesPlugin {
  readonly configurationVariablesSources = {
    eventSources: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => {
        const name = stageParamName('eventSources', context, 'snapshotRequestSources');
        return { value: eventSourcePattern(await context.resolveVariable(`param:${name}`), name) };
      }),
    },
    snapshotRequestedRule: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => {
        const name = stageParamName('snapshotRequestedRule', context, 'eventBusName');
        const tag = eventBusTag(await context.resolveVariable(`param:${name}`), name);
        const service = String(await context.resolveVariable('self:service'));
        const stage = String(await context.resolveVariable('sls:stage'));
        return { value: snapshotRequestedRuleName(service, stage, tag) };
      }),
    },
  };
}
