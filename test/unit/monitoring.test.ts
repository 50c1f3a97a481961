import { describe, expect, it } from 'vitest';
import MonitoringPlugin, {
  alarmTenants,
  alarmTopic,
  DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA,
  MAX_STACK_RESOURCES,
  type MonitoringSettings,
  monitoringResources,
  parseThresholds,
  stackResourceCountProblem,
  thresholdPercents,
} from '../../serverless/monitoring.ts';
import { templateProblems } from '../support/cloudformation-schema.ts';

const SETTINGS: MonitoringSettings = {
  functions: ['allocation', 'history', 'chart', 'snapshot'],
  deadLetterQueues: ['SnapshotDeadLetterQueue', 'ScheduleFailureQueue', 'EventDeadLetterQueue'],
  namespace: 'KooDriveAllocation',
  service: 'koodrive-allocation',
  thresholds: '1.0,0.8, 0.9',
  staleSnapshotSeconds: 1800,
  ratioWindowSeconds: 1800,
  queueRetrySeconds: 1800,
  alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
  namePrefix: 'koodrive-allocation-prod',
};

/** `custom.monitoring` as osls resolves it from serverless.yml's parameters. */
const CUSTOM = { ...SETTINGS, snapshotSchedule: 'rate(15 minutes)', staleSnapshotSeconds: 'auto' };

type Props = Record<string, unknown>;
const propsOf = (resources: ReturnType<typeof monitoringResources>, id: string): Props => {
  const resource = resources[id];
  if (resource === undefined) throw new Error(`no resource ${id}`);
  return resource.Properties;
};

describe('monitoring resources', () => {
  const resources = monitoringResources(SETTINGS);

  it('alarms on errors and throttles of every function, sent to the alarm topic', () => {
    for (const fn of ['Allocation', 'History', 'Chart', 'Snapshot']) {
      for (const metric of ['Errors', 'Throttles']) {
        const props = propsOf(resources, `${fn}${metric}Alarm`);
        expect(props).toMatchObject({
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: `${fn}LambdaFunction` } }],
          AlarmActions: [SETTINGS.alarmTopicArn],
        });
      }
    }
    // The snapshot function's failed runs err in bursts once per schedule period (Lambda's retries):
    // judged over two periods, so the alarm does not flap through an outage.
    expect(propsOf(resources, 'SnapshotErrorsAlarm').Period).toBe(SETTINGS.ratioWindowSeconds);
    expect(propsOf(resources, 'AllocationErrorsAlarm').Period).toBe(300);
    expect(propsOf(resources, 'SnapshotThrottlesAlarm').Period).toBe(300);
  });

  it('alarms on the 5xx answers callers got, which the HTTP functions return rather than throw', () => {
    expect(propsOf(resources, 'ApiServerErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }],
      Statistic: 'Sum',
      Threshold: 5,
      TreatMissingData: 'notBreaching',
      AlarmActions: [SETTINGS.alarmTopicArn],
      OKActions: [SETTINGS.alarmTopicArn],
    });
  });

  it('alarms on messages in every dead-letter queue, saying what each holds and what to do', () => {
    for (const queue of SETTINGS.deadLetterQueues) {
      expect(propsOf(resources, `${queue}MessagesAlarm`)).toMatchObject({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
        AlarmDescription: expect.stringContaining('clear the queue once handled'),
      });
    }
    const advice = (queue: string) => String(propsOf(resources, `${queue}MessagesAlarm`).AlarmDescription);
    expect(advice('SnapshotDeadLetterQueue')).toContain('redrive them to SnapshotQueue');
    expect(advice('ScheduleFailureQueue')).toContain('nothing to replay');
    // Events older than the function's maximumEventAge land there too, never run.
    expect(advice('ScheduleFailureQueue')).toContain('EventAgeExceeded');
    // CloudWatch's limit for a description.
    for (const queue of SETTINGS.deadLetterQueues) expect(advice(queue).length).toBeLessThanOrEqual(1024);
    expect(advice('EventDeadLetterQueue')).toContain('aws events put-events');
  });

  it('alarms on any failed snapshot within 5 minutes, queued ones included, which Lambda counts as no error', () => {
    const props = propsOf(resources, 'SnapshotFailuresAlarm');
    expect(props).toMatchObject({
      AlarmName: 'koodrive-allocation-prod-snapshot-failures',
      Namespace: 'KooDriveAllocation',
      MetricName: 'SnapshotFailures',
      Statistic: 'Sum',
      Period: 300,
      DatapointsToAlarm: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [SETTINGS.alarmTopicArn],
      OKActions: [SETTINGS.alarmTopicArn],
    });
    // Exactly the service-wide count's dimensions: the per-tenant documents carry Tenant as well, and an
    // alarm selects one dimension set only.
    expect(props.Dimensions).toEqual([{ Name: 'service', Value: 'koodrive-allocation' }]);
    // On while any 5 minutes of the gap to the next try (the queue's 30 minutes, and one more period) saw
    // a failure: a tenant that keeps failing holds it on instead of paging at every try.
    expect(props.EvaluationPeriods).toBe(7);
    const description = String(props.AlarmDescription);
    expect(description).toContain("'snapshot failed' log lines name the tenant and the problem code");
    expect(description).toContain('SnapshotFailures metric with dimension Tenant');
    expect(description).toContain('Stays in alarm until 35 minutes pass without a failure');
    expect(description.length).toBeLessThanOrEqual(1024);
    // A rarer schedule widens the window to its two periods (the ratio window), at most 3 hours.
    const hourly = propsOf(
      monitoringResources({ ...SETTINGS, ratioWindowSeconds: 7500 }),
      'SnapshotFailuresAlarm',
    );
    expect(hourly.EvaluationPeriods).toBe(25);
  });

  it('alarms when no snapshot was stored for two schedule periods, missing data counting as none', () => {
    const props = propsOf(resources, 'NoSnapshotStoredAlarm');
    expect(props).toMatchObject({
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    expect(JSON.stringify(props.Metrics)).toContain('"Period":1800');
    expect(JSON.stringify(props.Metrics)).toContain('SnapshotsWritten');
  });

  it('has one alarm per configured threshold on the allocated ratio', () => {
    expect(parseThresholds(SETTINGS.thresholds)).toEqual([0.8, 0.9, 1]);
    for (const [percent, threshold] of [
      [80, 0.8],
      [90, 0.9],
      [100, 1],
    ] as const) {
      const props = propsOf(resources, `AllocatedRatio${percent}Alarm`);
      expect(props.Threshold).toBe(threshold);
      // Between runs there is no datapoint: the alarm keeps its state rather than re-paging at each run.
      expect(props.TreatMissingData).toBe('ignore');
      expect(JSON.stringify(props.Metrics)).toContain('"Period":1800');
      expect(JSON.stringify(props.Metrics)).toContain(
        `MAX(AllocatedRatio) FROM SCHEMA(\\"KooDriveAllocation\\"`,
      );
    }
  });

  it('names a threshold alarm by its exact percent, and refuses two that would share a name', () => {
    const fine = monitoringResources({ ...SETTINGS, thresholds: '0.805,0.81,0.001' });
    expect(propsOf(fine, 'AllocatedRatio80p5Alarm')).toMatchObject({
      AlarmName: 'koodrive-allocation-prod-allocated-ratio-80.5',
      Threshold: 0.805,
    });
    expect(propsOf(fine, 'AllocatedRatio81Alarm').Threshold).toBe(0.81);
    expect(propsOf(fine, 'AllocatedRatio0p1Alarm').Threshold).toBe(0.001);
    expect(() => monitoringResources({ ...SETTINGS, thresholds: '0.80001,0.8' })).toThrow(
      /allocationThresholds 0\.8 and 0\.80001 are the same to a hundredth of a percent \(80 %\)/,
    );
  });

  it('keeps two decimals of a percent, so thresholds a tenth of a percent apart stay two alarms', () => {
    expect(thresholdPercents([0.8125])).toEqual(['81.25']);
    expect(thresholdPercents([0.8125, 0.813])).toEqual(['81.25', '81.3']);
    const close = monitoringResources({ ...SETTINGS, thresholds: '0.8125,0.813' });
    expect(propsOf(close, 'AllocatedRatio81p25Alarm').Threshold).toBe(0.8125);
    expect(propsOf(close, 'AllocatedRatio81p3Alarm').Threshold).toBe(0.813);
  });

  it('refuses an alarm topic that is not an SNS topic ARN', () => {
    for (const topic of ['ops', 'arn:aws:sqs:eu-west-1:123456789012:ops', 'arn:aws:sns:eu-west-1:1234:ops']) {
      expect(() => monitoringResources({ ...SETTINGS, alarmTopicArn: topic }), topic).toThrow(
        /alarmTopicArn is '.*': give the ARN of an SNS topic/,
      );
    }
    const china = monitoringResources({
      ...SETTINGS,
      alarmTopicArn: 'arn:aws-cn:sns:cn-north-1:123456789012:ops-alarms',
    });
    expect(propsOf(china, 'SnapshotErrorsAlarm').AlarmActions).toEqual([
      'arn:aws-cn:sns:cn-north-1:123456789012:ops-alarms',
    ]);
  });

  it('refuses a FIFO topic, which CloudWatch cannot publish to, and any other dot in a topic name', () => {
    expect(() => alarmTopic('arn:aws:sns:eu-west-1:123456789012:ops.fifo')).toThrow(
      /alarmTopicArn is 'arn:aws:sns:eu-west-1:123456789012:ops\.fifo', a FIFO topic: CloudWatch alarms publish without the message group id .* Give a standard SNS topic/,
    );
    expect(() => alarmTopic('arn:aws:sns:eu-west-1:123456789012:ops.alarms')).toThrow(
      /alarmTopicArn is 'arn:aws:sns:eu-west-1:123456789012:ops\.alarms': give the ARN of an SNS topic/,
    );
  });

  it('names the dashboard by stage and region, since dashboards are global to the account', () => {
    expect(propsOf(resources, 'AllocationDashboard').DashboardName).toEqual({
      'Fn::Sub': 'koodrive-allocation-prod-$' + '{AWS::Region}-allocation',
    });
  });

  it('leaves out alarm actions when no topic is set', () => {
    const quiet = monitoringResources({ ...SETTINGS, alarmTopicArn: '' });
    expect(propsOf(quiet, 'SnapshotErrorsAlarm').AlarmActions).toBeUndefined();
  });

  it('builds a dashboard whose body is valid JSON once the region is filled in', () => {
    const body = propsOf(resources, 'AllocationDashboard').DashboardBody as { 'Fn::Sub': string };
    // The CloudFormation placeholders the body carries.
    const [region, api] = ['$' + '{AWS::Region}', '$' + '{HttpApi}'];
    const parsed = JSON.parse(body['Fn::Sub'].replaceAll(region, 'eu-west-1').replaceAll(api, 'a1b2c3')) as {
      widgets: { properties: { title: string; metrics: unknown[][] } }[];
    };
    expect(parsed.widgets.length).toBeGreaterThanOrEqual(5);
    expect(body['Fn::Sub']).toContain('MetricName=\\"AllocatedRatio\\" SpaceType=\\"totals\\"');
    // Fn::Sub fills in only the region and the HTTP API's id.
    const placeholders = body['Fn::Sub'].match(/\$\{[^}]*\}/g) ?? [];
    expect(new Set(placeholders)).toEqual(new Set([region, api]));
    // CloudWatch's metric widget structure: `metrics` is an array of rows, each row either one math
    // expression object, or namespace, metric name and dimension name/value pairs, then at most one
    // options object. Anything else makes CloudFormation reject the dashboard and roll the stack back.
    for (const { properties } of parsed.widgets) {
      expect(Array.isArray(properties.metrics), properties.title).toBe(true);
      for (const row of properties.metrics) {
        expect(Array.isArray(row), `${properties.title}: ${JSON.stringify(row)}`).toBe(true);
        const [first] = row;
        if (typeof first === 'object' && first !== null) {
          expect(row).toHaveLength(1);
          expect(first).toEqual(
            expect.objectContaining({
              expression: expect.any(String),
              id: expect.stringMatching(/^[a-z]\w*$/),
            }),
          );
          continue;
        }
        const last = row.at(-1);
        const names = typeof last === 'object' && last !== null ? row.slice(0, -1) : row;
        expect(
          names.every((part) => typeof part === 'string'),
          JSON.stringify(row),
        ).toBe(true);
        expect(names.length % 2, `namespace, name and name/value pairs: ${JSON.stringify(row)}`).toBe(0);
      }
    }
    const failures = parsed.widgets.find((w) => w.properties.title === 'Snapshot failures per tenant');
    expect(failures?.properties.metrics).toEqual([
      [
        {
          expression: `SEARCH('{"KooDriveAllocation",service,Tenant} service="koodrive-allocation" MetricName="SnapshotFailures"', 'Sum', 900)`,
          label: 'failures',
          id: 'failures',
        },
      ],
    ]);
    // Every function's cold starts: the snapshot function's from Powertools, the others' of the same shape.
    const coldStarts = parsed.widgets.find((w) => w.properties.title === 'Cold starts per function');
    expect(coldStarts?.properties.metrics).toEqual([
      [
        {
          expression: `SEARCH('{"KooDriveAllocation",service,function_name} service="koodrive-allocation" MetricName="ColdStart"', 'Sum', 900)`,
          label: 'cold starts',
          id: 'coldstarts',
        },
      ],
    ]);
    const calls = parsed.widgets.find((w) => w.properties.title === 'HTTP API calls, 4xx and 5xx');
    expect(calls?.properties.metrics).toEqual([
      ['AWS/ApiGateway', 'Count', 'ApiId', 'a1b2c3'],
      ['AWS/ApiGateway', '4xx', 'ApiId', 'a1b2c3'],
      ['AWS/ApiGateway', '5xx', 'ApiId', 'a1b2c3'],
    ]);
  });

  it('refuses bad thresholds and settings with the name of what is wrong', () => {
    expect(() => parseThresholds('0.8,high')).toThrow(/allocationThresholds/);
    // Percents where ratios belong pass no ratio check the functions make (ALLOCATION_THRESHOLDS is at most
    // 10): refused when packaging, saying so, rather than deployed to fail every function at run time.
    expect(() => parseThresholds('80,90,100')).toThrow(
      /allocationThresholds '80,90,100' must be comma-separated ratios above 0 and at most 10 \(0\.8 is 80 %\)/,
    );
    expect(parseThresholds('0.5,10')).toEqual([0.5, 10]);
    const serverless = {
      service: {
        custom: { monitoring: { ...CUSTOM, staleSnapshotSeconds: 10 } as Record<string, unknown> },
        provider: { compiledCloudFormationTemplate: { Resources: {} } },
      },
    };
    const plugin = new MonitoringPlugin(serverless);
    expect(() => plugin.hooks['before:package:finalize']?.()).toThrow(/staleSnapshotSeconds/);
    // Named as osls's own user errors, so that it prints the message without a stack trace.
    expect(() => plugin.hooks['before:package:finalize']?.()).toThrow(
      expect.objectContaining({ name: 'ServerlessError' }),
    );
    serverless.service.custom.monitoring = { ...CUSTOM, queueRetrySeconds: undefined };
    expect(() => plugin.hooks['before:package:finalize']?.()).toThrow(
      /custom\.monitoring\.queueRetrySeconds is 'undefined': give SnapshotQueue's VisibilityTimeout/,
    );
    serverless.service.custom.monitoring = { ...CUSTOM, snapshotSchedule: 'rate(1 hours)' };
    expect(() => plugin.hooks['before:package:finalize']?.()).toThrow(
      /snapshotSchedule 'rate\(1 hours\)'.*write rate\(1 hour\)/,
    );
  });

  it('refuses a metrics namespace or service the alarms and the dashboard could not quote', () => {
    const packageWith = (monitoring: Record<string, unknown>) => {
      const plugin = new MonitoringPlugin({
        service: {
          custom: { monitoring: { ...CUSTOM, ...monitoring } },
          provider: { compiledCloudFormationTemplate: { Resources: {} } },
        },
      });
      return () => plugin.hooks['before:package:finalize']?.();
    };
    expect(packageWith({ service: "ops' team" })).toThrow(/metricsService 'ops' team'.*without quotes/);
    expect(packageWith({ service: 'a\\b' })).toThrow(expect.objectContaining({ name: 'ServerlessError' }));
    expect(packageWith({ namespace: 'AWS/Lambda' })).toThrow(
      /metricsNamespace 'AWS\/Lambda'.*not starting with AWS\//,
    );
    expect(packageWith({ namespace: 'Koo Drive' })).toThrow(/metricsNamespace/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text a user might give, not a template.
    expect(packageWith({ service: 'ops-${AWS::Region}' })).toThrow(/metricsService .*or \$\{/);
    expect(
      packageWith({ namespace: 'Ops#Storage:KooDrive', service: 'koodrive allocation (prod)' }),
    ).not.toThrow();
  });

  it("quotes the label keys of the threshold alarms' Metrics Insights query", () => {
    const [expression] = JSON.stringify(
      propsOf(monitoringResources(SETTINGS), 'AllocatedRatio80Alarm').Metrics,
    ).match(/SELECT[^"]*FROM SCHEMA[^}]*?'totals'/) ?? [''];
    expect(expression).toBe(
      `SELECT MAX(AllocatedRatio) FROM SCHEMA(\\"KooDriveAllocation\\", \\"service\\", \\"SpaceType\\", \\"Tenant\\") WHERE \\"service\\" = 'koodrive-allocation' AND \\"SpaceType\\" = 'totals'`,
    );
  });

  it('judges every space type with thresholdAlarmScope every-space, and refuses another scope', () => {
    const props = propsOf(
      monitoringResources({ ...SETTINGS, thresholdAlarmScope: 'every-space' }),
      'AllocatedRatio100Alarm',
    );
    const metrics = JSON.stringify(props.Metrics);
    expect(metrics).toContain(`WHERE \\"service\\" = 'koodrive-allocation'"`);
    expect(metrics).not.toContain('totals');
    expect(props.AlarmDescription).toMatch(
      /^One of a tenant's space types \(or its whole allocation\) reached 100 %/,
    );
    const totals = propsOf(monitoringResources(SETTINGS), 'AllocatedRatio100Alarm');
    expect(totals.AlarmDescription).toMatch(/^A tenant's whole allocation \(all space types\) reached 100 %/);
    const plugin = new MonitoringPlugin({
      service: {
        custom: { monitoring: { ...CUSTOM, thresholdAlarmScope: 'spaces' } },
        provider: { compiledCloudFormationTemplate: { Resources: {} } },
      },
    });
    expect(() => plugin.hooks['before:package:finalize']?.()).toThrow(
      /thresholdAlarmScope is 'spaces': use totals .* or every-space/,
    );
  });

  it("refuses alarms on every space type's ratio when the snapshots emit the totals' only", () => {
    const finalize = (monitoring: Record<string, unknown>) =>
      new MonitoringPlugin({
        service: {
          custom: { monitoring: { ...CUSTOM, ...monitoring } },
          provider: { compiledCloudFormationTemplate: { Resources: {} } },
        },
      }).hooks['before:package:finalize']?.();
    expect(() => finalize({ allocationMetrics: 'totals', thresholdAlarmScope: 'every-space' })).toThrow(
      /allocationMetrics 'totals' emits no space type's ratio, but thresholdAlarmScope 'every-space' alarms on them/,
    );
    expect(() => finalize({ allocationMetrics: 'some' })).toThrow(
      /allocationMetrics 'some' is not a choice: use every-space .* or totals/,
    );
    expect(() => finalize({ allocationMetrics: 'totals' })).not.toThrow();
  });

  it('gives each tenant its own threshold alarms with thresholdAlarmsPerTenant, ids apart even for a-b and ab', () => {
    const perTenant = monitoringResources({ ...SETTINGS, alarmTenants: ['acme', 'a-b', 'ab'] });
    const ratioAlarms = Object.entries(perTenant).filter(([id]) => id.startsWith('AllocatedRatio'));
    // Three tenants × three thresholds, and no alarm over every tenant beside them.
    expect(ratioAlarms).toHaveLength(9);
    expect(perTenant.AllocatedRatio80Alarm).toBeUndefined();
    for (const [id] of ratioAlarms) expect(id).toMatch(/^AllocatedRatio(80|90|100)Tenant[A-Za-z0-9]+Alarm$/);
    const names = ratioAlarms.map(([, alarm]) => alarm.Properties.AlarmName);
    expect(new Set(names).size).toBe(9);
    expect(names).toContain('koodrive-allocation-prod-allocated-ratio-90-a-b');
    const ab = ratioAlarms.find(
      ([, alarm]) => alarm.Properties.AlarmName === 'koodrive-allocation-prod-allocated-ratio-90-ab',
    );
    expect(JSON.stringify(ab?.[1].Properties.Metrics)).toContain(
      `WHERE \\"service\\" = 'koodrive-allocation' AND \\"Tenant\\" = 'ab' AND \\"SpaceType\\" = 'totals'`,
    );
    expect(ab?.[1].Properties).toMatchObject({ Threshold: 0.9, AlarmActions: [SETTINGS.alarmTopicArn] });
    expect(templateProblems({ Resources: perTenant })).toEqual([]);
  });

  it('refuses thresholdAlarmsPerTenant values it does not know, and more alarms than a stack takes', () => {
    expect(alarmTenants('false', 'acme=koodrive/acme', 3)).toBeUndefined();
    expect(alarmTenants('true', 'acme=koodrive/acme,beta', 3)).toEqual(['acme', 'beta']);
    expect(() => alarmTenants('yes', 'acme', 3)).toThrow(/thresholdAlarmsPerTenant 'yes' is not a choice/);
    // Every one is a Metrics Insights alarm: CloudWatch's default quota is 200 per account and region.
    const many = Array.from({ length: 67 }, (_, i) => `t${i}`).join(',');
    expect(() => alarmTenants('true', many, 3)).toThrow(
      `thresholdAlarmsPerTenant would make 201 Metrics Insights alarms (67 tenants × 3 thresholds), more than the account's quota of ${DEFAULT_METRICS_INSIGHTS_ALARM_QUOTA} per region`,
    );
    expect(alarmTenants('true', many, 2)).toHaveLength(67);
    // A raised quota, given as metricsInsightsAlarmQuota, lets more through.
    expect(alarmTenants('true', many, 3, 500)).toHaveLength(67);
    const finalize = (monitoring: Record<string, unknown>) =>
      new MonitoringPlugin({
        service: {
          custom: { monitoring: { ...CUSTOM, tenants: many, thresholdAlarmsPerTenant: true, ...monitoring } },
          provider: { compiledCloudFormationTemplate: { Resources: {} } },
        },
      }).hooks['before:package:finalize']?.();
    expect(() => finalize({})).toThrow(/201 Metrics Insights alarms/);
    expect(() => finalize({ metricsInsightsAlarmQuota: 300 })).not.toThrow();
    expect(() => finalize({ metricsInsightsAlarmQuota: 'lots' })).toThrow(
      /metricsInsightsAlarmQuota is 'lots'/,
    );
  });

  it('refuses a stack of more resources than CloudFormation takes, naming the per-tenant alarms that make it', () => {
    // CloudFormation refuses a template of over 500 resources; a raised metricsInsightsAlarmQuota lets
    // thresholdAlarmsPerTenant make that many alarms (100 tenants × 5 thresholds).
    expect(MAX_STACK_RESOURCES).toBe(500);
    expect(stackResourceCountProblem(500, 450)).toBeUndefined();
    expect(stackResourceCountProblem(556, 500)).toBe(
      'The stack would declare 556 resources, over the 500 CloudFormation allows in one stack: the deploy would fail when CloudFormation validates the template ("Number of resources, 556, is greater than maximum allowed, 500"). 500 of them are thresholdAlarmsPerTenant\'s alarms (tenants × allocationThresholds), of which at most 444 fit: set thresholdAlarmsPerTenant to false (one alarm per threshold over every tenant, and the Allocation Threshold Crossed events for each tenant), or give fewer allocationThresholds.',
    );
    expect(stackResourceCountProblem(501, 0)).toMatch(
      /^The stack would declare 501 resources.*maximum allowed, 500"\)\.$/,
    );

    const tenants = Array.from({ length: 100 }, (_, i) => `t${i}`).join(',');
    const template = { Resources: {} as Record<string, unknown> };
    const plugin = new MonitoringPlugin({
      service: {
        custom: {
          monitoring: {
            ...CUSTOM,
            thresholds: '0.5,0.8,0.9,0.95,1.0',
            tenants,
            thresholdAlarmsPerTenant: true,
            metricsInsightsAlarmQuota: 1000,
          },
        },
        provider: { compiledCloudFormationTemplate: template },
      },
    });
    plugin.hooks['before:package:finalize']?.();
    // Counted once serverless.yml's own resources are in, just before osls writes the template.
    const save = () => plugin.hooks['before:aws:package:finalize:saveServiceState']?.();
    expect(() => save()).toThrow(
      /The stack would declare 5\d\d resources.*500 of them are thresholdAlarmsPerTenant's/,
    );
    expect(() => save()).toThrow(expect.objectContaining({ name: 'ServerlessError' }));
    for (const id of Object.keys(template.Resources).filter((id) => /Tenantt9\d/.test(id))) {
      delete template.Resources[id];
    }
    expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(MAX_STACK_RESOURCES);
    expect(() => save()).not.toThrow();
  });

  it('checks the schedule while resolving it, before osls refuses it without naming the parameter', async () => {
    const source = new MonitoringPlugin({
      service: { provider: { compiledCloudFormationTemplate: { Resources: {} } } },
    }).configurationVariablesSources.checkedSchedule;
    const from = (value: string) => ({
      address: 'snapshotSchedule',
      resolveVariable: async (variable: string) =>
        variable === 'param:snapshotSchedule' ? value : undefined,
    });
    expect(await source.resolve(from(' rate(30 minutes) '))).toEqual({ value: 'rate(30 minutes)' });
    const refused = await source.resolve(from('rate(2 minute)')).catch((error: unknown) => error);
    expect((refused as Error).message).toMatch(
      /^snapshotSchedule 'rate\(2 minute\)'.*write rate\(2 minutes\)/,
    );
    expect((refused as Error).constructor.name).toBe('ServerlessError');
  });

  it('leaves out the no-snapshot alarm while the schedule is paused, and still checks the schedule', () => {
    for (const paused of [false, 'false']) {
      const template = { Resources: {} as Record<string, unknown> };
      const custom = { ...CUSTOM, snapshotScheduleEnabled: paused, snapshotSchedule: 'cron(0 * * * ? *)' };
      new MonitoringPlugin({
        service: { custom: { monitoring: custom }, provider: { compiledCloudFormationTemplate: template } },
      }).hooks['before:package:finalize']?.();
      expect(Object.keys(template.Resources)).not.toContain('NoSnapshotStoredAlarm');
      expect(Object.keys(template.Resources)).toContain('SnapshotErrorsAlarm');
    }
    const broken = new MonitoringPlugin({
      service: {
        custom: {
          monitoring: { ...CUSTOM, snapshotScheduleEnabled: false, snapshotSchedule: 'cron(0 * * * *)' },
        },
        provider: { compiledCloudFormationTemplate: { Resources: {} } },
      },
    });
    expect(() => broken.hooks['before:package:finalize']?.()).toThrow(/has 5 fields/);
  });

  it('adds its resources to the compiled template at package time', () => {
    const template = { Resources: {} as Record<string, unknown> };
    const plugin = new MonitoringPlugin({
      service: {
        custom: { monitoring: { ...CUSTOM, snapshotSchedule: 'rate(1 hour)' } },
        provider: { compiledCloudFormationTemplate: template },
      },
    });
    plugin.hooks['before:package:finalize']?.();
    expect(Object.keys(template.Resources)).toContain('AllocationDashboard');
    expect(Object.keys(template.Resources)).toContain('AllocatedRatio90Alarm');
    // The stale-snapshot window follows the schedule: two hourly periods and a run's length.
    expect(JSON.stringify(template.Resources.NoSnapshotStoredAlarm)).toContain('"Period":7500');
    expect(JSON.stringify(template.Resources.AllocatedRatio90Alarm)).toContain('"Period":7500');
  });
});
