/**
 * A local osls plugin: `${eventSources:<param>}` gives an EventBridge `source` pattern list from that stage
 * parameter. In `serverless.yml`'s `params:` block it may be a YAML list (with `anything-but` and other
 * matchers); `--param` can only pass a string, which is read as comma-separated source names
 * (`ops.scripts,ops.capacity`, brackets allowed). A bare string would otherwise reach the rule as one
 * value that EventBridge refuses (a pattern's values must be arrays), failing the deploy.
 */
import { stageParamName, type VariableSourceContext } from './plugin-support.ts';

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

/** The plugin osls loads from `plugins:`; it only contributes the variable source. */
export default class EventSourcesPlugin {
  readonly configurationVariablesSources = {
    eventSources: {
      resolve: async (context: VariableSourceContext) => {
        const name = stageParamName('eventSources', context, 'snapshotRequestSources');
        return { value: eventSourcePattern(await context.resolveVariable(`param:${name}`), name) };
      },
    },
  };
}
