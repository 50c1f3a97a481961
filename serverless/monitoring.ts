/**
 * A local osls plugin: the operator's alarms and CloudWatch dashboard, generated at package time from the stage
 * parameters (`custom.monitoring`), so that every function, dead-letter queue and configured threshold gets its
 * alarm without a hand-kept copy per item. Offline: it only adds resources to the compiled template.
 */

import { createHash } from 'node:crypto';
import { thresholdRatios } from '../lib/config.ts';
import { parseTenants } from '../lib/tenants.ts';
import { asUserError, stageParamName, userErrorsOf, type VariableSourceContext } from './plugin-support.ts';
import { ratioWindowSeconds, schedulePeriodSeconds, staleSnapshotSeconds } from './schedule.ts';

/** What `custom.monitoring` in serverless.yml gives the plugin (already resolved by osls). */
export interface MonitoringSettings {
  /** Logical names of the functions in serverless.yml (`allocation`, …). */
  functions: string[];
  /** Logical ids of the dead-letter and failure queues. */
  deadLetterQueues: string[];
  /** POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME of the functions. */
  namespace: string;
  service: string;
  /** Comma-separated allocated ratios (ALLOCATION_THRESHOLDS). */
  thresholds: string;
  /**
   * Alarm when no snapshot was stored during this many seconds (by default two schedule periods); `undefined`
   * when the schedule is turned off, since nothing is then expected to store snapshots.
   */
  staleSnapshotSeconds: number | undefined;
  /** Period of the allocated-ratio alarms, in seconds: long enough to hold one run's metrics. */
  ratioWindowSeconds: number;
  /**
   * How long a queued snapshot request that failed waits before SQS hands it out again (SnapshotQueue's
   * visibility timeout), in seconds: the snapshot-failures alarm stays on across that gap.
   */
  queueRetrySeconds: number;
  /** SNS topic ARN for alarm and OK notifications; empty: none. */
  alarmTopicArn: string;
  /** What the threshold alarms judge: the totals' ratio (default), or every space type's and the totals'. */
  thresholdAlarmScope?: ThresholdAlarmScope;
  /** ALLOCATION_METRICS: the gauges the snapshots emit, every space type's (default) or the totals' only. */
  allocationMetrics?: 'every-space' | 'totals';
  /**
   * thresholdAlarmsPerTenant: the tenants that get threshold alarms of their own (KOODRIVE_TENANTS' ids);
   * undefined: one alarm per threshold over every tenant.
   */
  alarmTenants?: string[];
  /** Prefix of alarm and dashboard names. */
  namePrefix: string;
}

const THRESHOLD_ALARM_SCOPES = ['totals', 'every-space'] as const;
export type ThresholdAlarmScope = (typeof THRESHOLD_ALARM_SCOPES)[number];

/** `thresholdAlarmScope`, checked. */
export function thresholdAlarmScope(value: string): ThresholdAlarmScope {
  const scope = THRESHOLD_ALARM_SCOPES.find((known) => known === value.trim());
  if (scope === undefined) {
    throw new Error(
      `thresholdAlarmScope is '${value}': use totals (each tenant's whole allocation) or every-space (each space type and the totals).`,
    );
  }
  return scope;
}

type Resource = { Type: string; Properties: Record<string, unknown> };

/** Period of the snapshot-failures alarm, in seconds: a failed tenant pages within about this long. */
const FAILURE_PERIOD = 300;

/** `koodrive-allocation` → `KoodriveAllocation`, as osls names a function's resources. */
function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part !== '')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

function lambdaLogicalId(functionName: string): string {
  return `${pascal(functionName)}LambdaFunction`;
}

/** What the messages of each failure queue are, and what to do with them (the alarm's description). */
const QUEUE_ADVICE: Record<string, string> = {
  SnapshotDeadLetterQueue:
    'SQS snapshot requests that failed for good. Read them, fix the cause, then redrive them to SnapshotQueue (each stores a snapshot of now).',
  ScheduleFailureQueue:
    "Lambda's records of snapshot runs that failed after their retries (requestPayload: the event; responsePayload: the error), or of events that waited over an hour to run (requestContext.condition EventAgeExceeded: the function was throttled). Read them and fix the cause; nothing to replay (the next run takes a fresh snapshot and publishes threshold events still owed), so delete them once read.",
  EventDeadLetterQueue:
    'Snapshot Requested events EventBridge could not deliver to the function. Read them, send again what is still wanted (aws events put-events), then delete them.',
};

export function parseThresholds(text: string): number[] {
  // The functions' own rule (ALLOCATION_THRESHOLDS, lib/config.ts): what they would refuse at every run
  // (percents given for ratios, say) is refused here, before a deploy.
  const values = thresholdRatios(text);
  if (values === undefined) {
    throw new Error(
      `allocationThresholds '${text}' must be comma-separated ratios above 0 and at most 10 (0.8 is 80 %), e.g. 0.8,0.9,1.0.`,
    );
  }
  return values;
}

const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$/;

/** Refuses at package time an alarm topic that CloudWatch would refuse at deploy time. */
export function alarmTopic(arn: string): string {
  const topic = arn.trim();
  if (topic !== '' && !SNS_TOPIC_ARN.test(topic)) {
    throw new Error(
      `alarmTopicArn is '${arn}': give the ARN of an SNS topic in the stack's region (e.g. arn:aws:sns:eu-west-1:123456789012:ops-alarms), or leave it empty for alarms without notifications.`,
    );
  }
  // A FIFO topic takes only messages with a MessageGroupId, which CloudWatch's alarm actions never send:
  // every notification would fail, visible only in each alarm's history.
  if (topic.endsWith('.fifo')) {
    throw new Error(
      `alarmTopicArn is '${arn}', a FIFO topic: CloudWatch alarms publish without the message group id a FIFO topic requires, so no alarm would reach it. Give a standard SNS topic (its name without .fifo).`,
    );
  }
  return topic;
}

function actions(settings: MonitoringSettings) {
  const topic = alarmTopic(settings.alarmTopicArn);
  return topic === '' ? {} : { AlarmActions: [topic], OKActions: [topic] };
}

/**
 * A threshold as a percent for names and labels: `0.8` → `80`, `0.805` → `80.5` (two decimals at most).
 * Throws when two thresholds would read the same, since their alarms would share one name.
 */
export function thresholdPercents(thresholds: number[]): string[] {
  const percents = thresholds.map((value) => String(Number((value * 100).toFixed(2))));
  const seen = new Map<string, number>();
  thresholds.forEach((value, index) => {
    const percent = percents[index] ?? '';
    const earlier = seen.get(percent);
    if (earlier !== undefined) {
      throw new Error(
        `allocationThresholds ${earlier} and ${value} are the same to a hundredth of a percent (${percent} %): their alarms would be one; give thresholds that differ more.`,
      );
    }
    seen.set(percent, value);
  });
  return percents;
}

function alarm(
  settings: MonitoringSettings,
  name: string,
  description: string,
  properties: Record<string, unknown>,
): Resource {
  return {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: `${settings.namePrefix}-${name}`,
      AlarmDescription: description,
      ...actions(settings),
      ...properties,
    },
  };
}

/** A tenant's part of a logical id: its letters and digits, and a hash of the whole id (`a-b` is not `ab`). */
function tenantLogicalPart(tenantId: string): string {
  const hash = createHash('sha256').update(tenantId).digest('hex').slice(0, 8);
  return `${tenantId.replace(/[^A-Za-z0-9]/g, '')}${hash}`;
}

/**
 * The most threshold alarms per tenant a stack may make: every one is a Metrics Insights alarm, and
 * CloudWatch allows an account 200 of those per region by default (a quota every stage and stack there
 * shares; a raised quota can be asked of AWS, and then `metricsInsightsAlarmQuota` says so).
 */
export const DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA = 200;

/**
 * The tenants that get threshold alarms of their own (`thresholdAlarmsPerTenant`), or undefined for one
 * alarm per threshold over every tenant; refuses more alarms than a stack holds.
 */
export function alarmTenants(
  perTenant: string,
  tenantsSetting: string,
  thresholdCount: number,
  quota: number = DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA,
): string[] | undefined {
  if (perTenant !== 'true' && perTenant !== 'false') {
    throw new Error(
      `thresholdAlarmsPerTenant '${perTenant}' is not a choice: use false (one alarm per threshold over every tenant) or true (one per tenant and threshold).`,
    );
  }
  if (perTenant === 'false') return undefined;
  // The ids only: the secrets' names do not matter here.
  const ids = parseTenants(tenantsSetting, 'tenants', 'unused/{tenantId}').all.map((t) => t.tenantId);
  const count = ids.length * thresholdCount;
  if (count > quota) {
    throw new Error(
      `thresholdAlarmsPerTenant would make ${count} Metrics Insights alarms (${ids.length} tenants × ${thresholdCount} thresholds), more than the account's quota of ${quota} per region (CloudWatch's default is ${DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA}, shared by every stage and stack there; CloudFormation would fail part-way through the deploy): set it to false (one alarm per threshold over every tenant, and the Allocation Threshold Crossed events for each tenant), or fewer allocationThresholds, or ask AWS for a higher quota and set metricsInsightsAlarmQuota to it.`,
    );
  }
  return ids;
}

/** CloudFormation's most resources in one stack's template: a fixed limit, not a quota AWS raises. */
export const MAX_STACK_RESOURCES = 500;

/**
 * What is wrong when the finished template declares more resources than CloudFormation takes (undefined
 * when it fits): the per-tenant threshold alarms are what can grow a stack past it, once a raised
 * metricsInsightsAlarmQuota lets more of them through.
 */
export function stackResourceCountProblem(count: number, perTenantAlarms: number): string | undefined {
  if (count <= MAX_STACK_RESOURCES) return undefined;
  const problem = `The stack would declare ${count} resources, over the ${MAX_STACK_RESOURCES} CloudFormation allows in one stack: the deploy would fail when CloudFormation validates the template ("Number of resources, ${count}, is greater than maximum allowed, ${MAX_STACK_RESOURCES}").`;
  if (perTenantAlarms === 0) return problem;
  const fitting = perTenantAlarms - (count - MAX_STACK_RESOURCES);
  return `${problem} ${perTenantAlarms} of them are thresholdAlarmsPerTenant's alarms (tenants × allocationThresholds), of which at most ${Math.max(fitting, 0)} fit: set thresholdAlarmsPerTenant to false (one alarm per threshold over every tenant, and the Allocation Threshold Crossed events for each tenant), or give fewer allocationThresholds.`;
}

/** The alarms and the dashboard, as CloudFormation resources keyed by logical id. */
export function monitoringResources(settings: MonitoringSettings): Record<string, Resource> {
  const resources: Record<string, Resource> = {};
  const ns = settings.namespace;

  for (const fn of settings.functions) {
    const functionName = { Ref: lambdaLogicalId(fn) };
    for (const metric of ['Errors', 'Throttles'] as const) {
      // A failing scheduled run errs in bursts (Lambda retries it 1 and 3 minutes later) once per schedule
      // period: over 5 minutes the alarm would flap through an outage, notifying at every change; over
      // the ratio window (two schedule periods) it stays in alarm until the runs succeed again.
      const period = fn === 'snapshot' && metric === 'Errors' ? settings.ratioWindowSeconds : 300;
      const minutes = Math.round(period / 60);
      resources[`${pascal(fn)}${metric}Alarm`] = alarm(
        settings,
        `${fn}-${metric.toLowerCase()}`,
        `The ${fn} function reported ${metric.toLowerCase()} in the last ${minutes} minutes; see its logs.`,
        {
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: functionName }],
          Statistic: 'Sum',
          Period: period,
          EvaluationPeriods: 1,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
        },
      );
    }
  }

  // The HTTP functions answer every failure as problem+json, so their Lambda Errors count only crashes and
  // timeouts: what callers suffer (KooDrive or Secrets Manager down, a bug) shows as the API's 5xx.
  resources.ApiServerErrorsAlarm = alarm(
    settings,
    'api-5xx',
    'Callers got 5 or more 5xx answers from the HTTP API in 5 minutes (KooDrive, Secrets Manager or DynamoDB failing, or a bug): the problem codes are in the functions’ warn and error lines, the calls in the API’s access log.',
    {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 5,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    },
  );

  for (const queue of settings.deadLetterQueues) {
    resources[`${queue}MessagesAlarm`] = alarm(
      settings,
      `${queue}-messages`,
      `Messages are waiting in ${queue}: ${QUEUE_ADVICE[queue] ?? 'requests that failed for good. Read them, fix the cause, then redrive or delete them.'} The alarm stays on while any message waits (14 days), so a later failure raises nothing new: clear the queue once handled.`,
      {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
        Statistic: 'Maximum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      },
    );
  }

  // A queued request that fails is no Lambda error (the function reports it in batchItemFailures), so
  // the snapshot-errors alarm never sees it, and SQS reaches the dead-letter queue only after 5 receives
  // a visibility timeout apart (2.5 hours). SnapshotFailures counts every failed tenant, whatever ran
  // it: judged per 5 minutes, so the first failure pages within minutes; alarmed while any of the
  // periods that span the gap to its next try (the queue's retry, or the schedule's next two runs)
  // saw one, so that a failure that persists keeps the alarm on rather than flapping at every try.
  const failureWindow = Math.max(settings.ratioWindowSeconds, settings.queueRetrySeconds + FAILURE_PERIOD);
  const failurePeriods = Math.ceil(failureWindow / FAILURE_PERIOD);
  resources.SnapshotFailuresAlarm = alarm(
    settings,
    'snapshot-failures',
    `A snapshot failed for at least one tenant in the last 5 minutes (a scheduled run, a Snapshot Requested event, or a queued request, which SQS tries 5 times ${Math.round(settings.queueRetrySeconds / 60)} minutes apart before its dead-letter queue and which raises no snapshot-errors). The snapshot function's 'snapshot failed' log lines name the tenant and the problem code (errorCode); the SnapshotFailures metric with dimension Tenant (dashboard: Snapshot failures per tenant) shows which tenants fail. README, At 3 a.m., says what each code means. Stays in alarm until ${Math.round((failurePeriods * FAILURE_PERIOD) / 60)} minutes pass without a failure.`,
    {
      Namespace: ns,
      MetricName: 'SnapshotFailures',
      Dimensions: [{ Name: 'service', Value: settings.service }],
      Statistic: 'Sum',
      Period: FAILURE_PERIOD,
      EvaluationPeriods: failurePeriods,
      DatapointsToAlarm: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    },
  );

  const stale = settings.staleSnapshotSeconds;
  if (stale !== undefined) {
    resources.NoSnapshotStoredAlarm = alarm(
      settings,
      'no-snapshot-stored',
      `No snapshot was stored for ${stale / 60} minutes: the schedule, KooDrive or the credentials need a look.`,
      {
        Metrics: [
          {
            Id: 'written',
            MetricStat: {
              Metric: {
                Namespace: ns,
                MetricName: 'SnapshotsWritten',
                Dimensions: [{ Name: 'service', Value: settings.service }],
              },
              Period: stale,
              Stat: 'Sum',
            },
            ReturnData: false,
          },
          { Id: 'stored', Expression: 'FILL(written, 0)', Label: 'Snapshots stored', ReturnData: true },
        ],
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      },
    );
  }

  const thresholds = parseThresholds(settings.thresholds);
  const percents = thresholdPercents(thresholds);
  const everySpace = (settings.thresholdAlarmScope ?? 'totals') === 'every-space';
  const judged = everySpace
    ? "One of a tenant's space types (or its whole allocation)"
    : "A tenant's whole allocation (all space types)";
  // Per tenant (thresholdAlarmsPerTenant): one alarm per tenant and threshold, so each tenant's crossing
  // pages by itself; otherwise one alarm per threshold over every tenant (the highest ratio).
  const alarmed: { tenantId?: string }[] =
    settings.alarmTenants === undefined ? [{}] : settings.alarmTenants.map((tenantId) => ({ tenantId }));
  thresholds.forEach((threshold, index) => {
    const percent = percents[index] ?? '';
    for (const { tenantId } of alarmed) {
      // Logical ids are alphanumeric: 80.5 % is AllocatedRatio80p5Alarm; a tenant's adds a hash of its id,
      // since two ids may differ only in '-' or '_'.
      const logicalId =
        tenantId === undefined
          ? `AllocatedRatio${percent.replace('.', 'p')}Alarm`
          : `AllocatedRatio${percent.replace('.', 'p')}Tenant${tenantLogicalPart(tenantId)}Alarm`;
      resources[logicalId] = alarm(
        settings,
        tenantId === undefined ? `allocated-ratio-${percent}` : `allocated-ratio-${percent}-${tenantId}`,
        tenantId === undefined
          ? `${judged} reached ${percent} % of its total (the Allocation Threshold Crossed event names the tenant and space type). One alarm for every tenant (the highest ratio): while one tenant stays above, another crossing raises nothing new here; route the events for an alert per tenant, or set thresholdAlarmsPerTenant.`
          : `Tenant ${tenantId}: ${judged.charAt(0).toLowerCase()}${judged.slice(1)} reached ${percent} % of its total (the Allocation Threshold Crossed event names the space type).`,
        {
          Metrics: [
            {
              Id: 'ratio',
              // Metrics Insights: the highest ratio of any tenant (of its totals, or of any of its series), so
              // one alarm covers every tenant, or one tenant's. Label keys quoted: an unquoted key that is one
              // of Metrics Insights' reserved words fails the query. Tenant ids hold no quote.
              Expression: `SELECT MAX(AllocatedRatio) FROM SCHEMA("${ns}", "service", "SpaceType", "Tenant") WHERE "service" = '${settings.service}'${tenantId === undefined ? '' : ` AND "Tenant" = '${tenantId}'`}${everySpace ? '' : ` AND "SpaceType" = 'totals'`}`,
              Period: settings.ratioWindowSeconds,
              ReturnData: true,
            },
          ],
          EvaluationPeriods: 1,
          Threshold: threshold,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          // Between two runs there is no ratio to judge: the alarm keeps its state instead of lapsing into
          // INSUFFICIENT_DATA and paging again at the next run while a tenant stays above the threshold.
          TreatMissingData: 'ignore',
        },
      );
    }
  });

  resources.AllocationDashboard = {
    Type: 'AWS::CloudWatch::Dashboard',
    Properties: {
      // Dashboards are global to the account: the region keeps one stage deployed to two regions apart.
      DashboardName: { 'Fn::Sub': `${settings.namePrefix}-\${AWS::Region}-allocation` },
      DashboardBody: { 'Fn::Sub': JSON.stringify(dashboardBody(settings)) },
    },
  };
  return resources;
}

/** The dashboard: allocation per tenant (SEARCH, so new tenants appear by themselves), snapshot health, Lambda. */
function dashboardBody(settings: MonitoringSettings) {
  const ns = settings.namespace;
  // The namespace quoted: a SEARCH schema takes # or : in a name only between quotes.
  const schema = `{"${ns}",service,SpaceType,Tenant} service="${settings.service}"`;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder, not a template.
  const region = '${AWS::Region}';
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the HTTP API's id, filled in by Fn::Sub.
  const httpApi = '${HttpApi}';
  const thresholds = parseThresholds(settings.thresholds);
  const percents = thresholdPercents(thresholds);
  // A widget's `metrics` is an array of arrays (CloudWatch's metric widget structure): a math
  // expression is a row of its own holding one object. A flat list of objects fails the whole deploy.
  const search = (expression: string, stat: string, label: string) => [
    [
      {
        expression: `SEARCH('${expression}', '${stat}', 900)`,
        label,
        id: label.replace(/\W+/g, '').toLowerCase(),
      },
    ],
  ];
  const widget = (x: number, y: number, title: string, properties: Record<string, unknown>) => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region, view: 'timeSeries', stacked: false, period: 900, ...properties },
  });
  return {
    widgets: [
      widget(0, 0, 'Allocated ratio of each tenant (totals)', {
        metrics: search(`${schema} MetricName="AllocatedRatio" SpaceType="totals"`, 'Maximum', 'ratio'),
        yAxis: { left: { min: 0 } },
        annotations: {
          horizontal: thresholds.map((value, index) => ({ value, label: `${percents[index]} %` })),
        },
      }),
      widget(12, 0, 'Allocated GB per tenant and space type', {
        metrics: search(`${schema} MetricName="AllocatedGB"`, 'Maximum', 'allocated'),
      }),
      widget(0, 6, 'Total GB per tenant and space type', {
        metrics: search(`${schema} MetricName="TotalGB"`, 'Maximum', 'total'),
      }),
      widget(12, 6, 'Snapshots', {
        view: 'timeSeries',
        stat: 'Sum',
        metrics: [
          'SnapshotsWritten',
          'SnapshotDuplicatesSkipped',
          'SnapshotFailures',
          'UpstreamRetries',
          'ThresholdEventsPublished',
        ].map((name) => [ns, name, 'service', settings.service]),
      }),
      widget(0, 12, 'KooDrive latency (ms)', {
        metrics: [
          [ns, 'UpstreamLatency', 'service', settings.service, { stat: 'p50' }],
          [ns, 'UpstreamLatency', 'service', settings.service, { stat: 'p99' }],
        ],
      }),
      widget(12, 12, 'Function errors and throttles', {
        stat: 'Sum',
        metrics: settings.functions.flatMap((fn) => [
          ['AWS/Lambda', 'Errors', 'FunctionName', `${settings.namePrefix}-${fn}`],
          ['AWS/Lambda', 'Throttles', 'FunctionName', `${settings.namePrefix}-${fn}`],
        ]),
      }),
      // What callers got, API Gateway's own answers included (403 from IAM, 429 from the throttle).
      widget(0, 18, 'HTTP API calls, 4xx and 5xx', {
        stat: 'Sum',
        metrics: ['Count', '4xx', '5xx'].map((name) => ['AWS/ApiGateway', name, 'ApiId', httpApi]),
      }),
      widget(12, 18, 'HTTP API latency (ms)', {
        metrics: [
          ['AWS/ApiGateway', 'Latency', 'ApiId', httpApi, { stat: 'p50' }],
          ['AWS/ApiGateway', 'Latency', 'ApiId', httpApi, { stat: 'p99' }],
        ],
      }),
      // Which tenant fails: the snapshot-failures and snapshot-errors alarms say only that one does.
      widget(0, 24, 'Snapshot failures per tenant', {
        stat: 'Sum',
        metrics: search(
          `{"${ns}",service,Tenant} service="${settings.service}" MetricName="SnapshotFailures"`,
          'Sum',
          'failures',
        ),
      }),
      // Every function's (the HTTP functions print the same document as Powertools, lib/cold-start-metric.ts).
      widget(12, 24, 'Cold starts per function', {
        stat: 'Sum',
        metrics: search(
          `{"${ns}",service,function_name} service="${settings.service}" MetricName="ColdStart"`,
          'Sum',
          'cold starts',
        ),
      }),
    ],
  };
}

interface ServerlessLike {
  service: {
    custom?: Record<string, unknown>;
    provider: { compiledCloudFormationTemplate: { Resources: Record<string, unknown> } };
  };
}

/** CloudWatch's namespace characters: the alarms' queries and the dashboard's searches name it in quotes. */
function metricsNamespace(value: string): string {
  if (!/^[A-Za-z0-9._/#:-]{1,255}$/.test(value) || value.startsWith('AWS/')) {
    throw new Error(
      `metricsNamespace '${value}' is not a CloudWatch namespace for the functions' own metrics: use 1 to 255 letters, digits and . - _ / # : (not starting with AWS/), e.g. KooDriveAllocation.`,
    );
  }
  return value;
}

/**
 * The `service` dimension's value: the alarms' Metrics Insights query and the dashboard's SEARCH
 * expressions hold it between quotes, so it may not hold a quote, a backslash or a control character.
 */
function metricsService(value: string): string {
  // `${` too: the dashboard's body is a CloudFormation Fn::Sub string, which would read it as a variable.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  if (value === '' || value.length > 1024 || /['"\\\u0000-\u001f\u007f]|\$\{/.test(value)) {
    throw new Error(
      `metricsService '${value}' cannot name the metrics' service dimension: use 1 to 1,024 characters without quotes, backslashes, control characters or \${, e.g. koodrive-allocation-prod.`,
    );
  }
  return value;
}

/** `custom.monitoring.queueRetrySeconds`, SnapshotQueue's visibility timeout: whole seconds, 0 to 12 hours. */
function queueRetrySeconds(value: unknown): number {
  const seconds = Number(value);
  if (value === undefined || value === '' || !Number.isInteger(seconds) || seconds < 0 || seconds > 43_200) {
    throw new Error(
      `custom.monitoring.queueRetrySeconds is '${String(value)}': give SnapshotQueue's VisibilityTimeout (whole seconds, at most 43200).`,
    );
  }
  return seconds;
}

/**
 * The `allocationMetrics` parameter, checked against the threshold alarms' scope: alarms on every space
 * type's ratio need those ratios emitted.
 */
function allocationMetrics(value: string, scope: ThresholdAlarmScope): 'every-space' | 'totals' {
  if (value !== 'every-space' && value !== 'totals') {
    throw new Error(
      `allocationMetrics '${value}' is not a choice: use every-space (the gauges of each space type and of the totals) or totals (of the totals only).`,
    );
  }
  if (value === 'totals' && scope === 'every-space') {
    throw new Error(
      "allocationMetrics 'totals' emits no space type's ratio, but thresholdAlarmScope 'every-space' alarms on them: set allocationMetrics to every-space, or thresholdAlarmScope to totals.",
    );
  }
  return value;
}

/** `metricsInsightsAlarmQuota`: the account's quota of Metrics Insights alarms per region. */
function alarmQuota(value: unknown): number {
  if (value === undefined || value === null || String(value).trim() === '')
    return DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA;
  const text = String(value).trim();
  const quota = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(quota) || quota < 1) {
    throw new Error(
      `metricsInsightsAlarmQuota is '${text}': give the account's quota of Metrics Insights alarms per region as a whole number (CloudWatch's default is ${DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA}).`,
    );
  }
  return quota;
}

function settingsFrom(custom: unknown): MonitoringSettings {
  if (typeof custom !== 'object' || custom === null) {
    throw new Error('custom.monitoring is missing in serverless.yml.');
  }
  const c = custom as Record<string, unknown>;
  const text = (name: string) => {
    const value = c[name];
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new Error(`custom.monitoring.${name} must be set.`);
    return String(value);
  };
  const list = (name: string) => {
    const value = c[name];
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
      throw new Error(`custom.monitoring.${name} must be a list of names.`);
    }
    return value as string[];
  };
  const schedule = text('snapshotSchedule');
  const scheduled = String(c.snapshotScheduleEnabled ?? true) !== 'false';
  // Checked while paused too, so that turning the schedule back on cannot fail a deploy.
  const period = schedulePeriodSeconds(schedule);
  const stale = scheduled ? staleSnapshotSeconds(text('staleSnapshotSeconds'), schedule) : undefined;
  const scope = thresholdAlarmScope(String(c.thresholdAlarmScope ?? 'totals'));
  const metrics = allocationMetrics(String(c.allocationMetrics ?? 'every-space'), scope);
  const tenantsAlarmed = alarmTenants(
    String(c.thresholdAlarmsPerTenant ?? 'false'),
    String(c.tenants ?? ''),
    parseThresholds(text('thresholds')).length,
    alarmQuota(c.metricsInsightsAlarmQuota),
  );
  return {
    functions: list('functions'),
    deadLetterQueues: list('deadLetterQueues'),
    namespace: metricsNamespace(text('namespace')),
    service: metricsService(text('service')),
    thresholds: text('thresholds'),
    staleSnapshotSeconds: stale,
    ratioWindowSeconds: ratioWindowSeconds(stale, period),
    queueRetrySeconds: queueRetrySeconds(c.queueRetrySeconds),
    alarmTopicArn: typeof c.alarmTopicArn === 'string' ? c.alarmTopicArn : '',
    thresholdAlarmScope: scope,
    allocationMetrics: metrics,
    ...(tenantsAlarmed === undefined ? {} : { alarmTenants: tenantsAlarmed }),
    namePrefix: text('namePrefix'),
  };
}

/** The plugin osls loads from `plugins:`. */
export default class MonitoringPlugin {
  readonly hooks: Record<string, () => void>;

  /**
   * `${checkedSchedule:<param>}`: the schedule expression of that stage parameter, checked before osls
   * validates the configuration, whose own refusal ("unsupported string format") names no parameter.
   */
  readonly configurationVariablesSources = {
    checkedSchedule: {
      resolve: userErrorsOf(async (context: VariableSourceContext) => {
        const name = stageParamName('checkedSchedule', context, 'snapshotSchedule');
        const value = String(await context.resolveVariable(`param:${name}`));
        schedulePeriodSeconds(value);
        return { value: value.trim() };
      }),
    },
  };

  constructor(serverless: ServerlessLike) {
    let perTenantAlarms = 0;
    this.hooks = {
      'before:package:finalize': () => {
        let resources: Record<string, Resource>;
        let settings: MonitoringSettings;
        try {
          settings = settingsFrom(serverless.service.custom?.monitoring);
          resources = monitoringResources(settings);
        } catch (error) {
          throw asUserError(error);
        }
        perTenantAlarms = (settings.alarmTenants?.length ?? 0) * parseThresholds(settings.thresholds).length;
        Object.assign(serverless.service.provider.compiledCloudFormationTemplate.Resources, resources);
      },
      // Once serverless.yml's own resources are merged in, just before the template is written: the
      // whole stack, counted against CloudFormation's limit, so that packaging refuses what no deploy takes.
      'before:aws:package:finalize:saveServiceState': () => {
        const count = Object.keys(
          serverless.service.provider.compiledCloudFormationTemplate.Resources,
        ).length;
        const problem = stackResourceCountProblem(count, perTenantAlarms);
        if (problem !== undefined) throw asUserError(new Error(problem));
      },
    };
  }
}
