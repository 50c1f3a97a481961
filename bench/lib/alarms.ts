/**
 * The CloudWatch alarms and dashboards the stack deploys with serverless.yml's default parameters, as the
 * monitoring plugin builds them: the cost note prices each alarm per metric it evaluates.
 */
import { readFile } from 'node:fs/promises';
import { parseServerlessYml, SERVERLESS_YML } from '../../local/dynamodb.ts';
import { monitoringResources, thresholdAlarmScope } from '../../serverless/monitoring.ts';
import {
  ratioWindowSeconds,
  schedulePeriodSeconds,
  staleSnapshotSeconds,
} from '../../serverless/schedule.ts';
import { isRecord } from '../probe/common.ts';

export interface AlarmCensus {
  /** Alarms on metrics of the deployment (functions, queues, API, the service's counters): one metric each. */
  deploymentAlarms: number;
  /** Metrics Insights alarms (the allocated-ratio thresholds): each evaluates every tenant's matching series. */
  tenantQueryAlarms: number;
  /** Which series of a tenant those alarms evaluate: the totals' ratio, or every space type's too. */
  scope: 'totals' | 'every-space';
  dashboards: number;
  /** The functions (each prints its own ColdStart series). */
  functions: number;
}

/** {@link AlarmCensus} of a serverless.yml text, from `custom.monitoring` and `params.default`. */
function alarmCensus(serverlessYml: string): AlarmCensus {
  const doc = parseServerlessYml(serverlessYml);
  const custom =
    isRecord(doc) && isRecord(doc.custom) && isRecord(doc.custom.monitoring) ? doc.custom.monitoring : {};
  const defaults =
    isRecord(doc) && isRecord(doc.params) && isRecord(doc.params.default) ? doc.params.default : {};
  const text = (name: string) => {
    const value = defaults[name];
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new Error(`serverless.yml: params.default.${name} is not set`);
    return String(value);
  };
  const names = (name: string) => {
    const value = custom[name];
    if (!Array.isArray(value)) throw new Error(`serverless.yml: custom.monitoring.${name} is not a list`);
    return value.map(String);
  };
  // custom.monitoring.queueRetrySeconds names the queue's VisibilityTimeout (a ${self:…} variable).
  const resources =
    isRecord(doc) && isRecord(doc.resources) && isRecord(doc.resources.Resources)
      ? doc.resources.Resources
      : {};
  const queue =
    isRecord(resources.SnapshotQueue) && isRecord(resources.SnapshotQueue.Properties)
      ? resources.SnapshotQueue.Properties
      : {};
  const queueRetrySeconds = Number(queue.VisibilityTimeout);
  if (!Number.isInteger(queueRetrySeconds))
    throw new Error(
      'serverless.yml: resources.Resources.SnapshotQueue.Properties.VisibilityTimeout is not a number',
    );
  const schedule = text('snapshotSchedule');
  const stale = staleSnapshotSeconds(text('staleSnapshotSeconds'), schedule);
  const scope = thresholdAlarmScope(text('thresholdAlarmScope'));
  const built = monitoringResources({
    functions: names('functions'),
    deadLetterQueues: names('deadLetterQueues'),
    namespace: text('metricsNamespace'),
    service: 'bench',
    thresholds: text('allocationThresholds'),
    staleSnapshotSeconds: stale,
    ratioWindowSeconds: ratioWindowSeconds(stale, schedulePeriodSeconds(schedule)),
    queueRetrySeconds,
    alarmTopicArn: '',
    thresholdAlarmScope: scope,
    namePrefix: 'bench',
  });
  let deploymentAlarms = 0;
  let tenantQueryAlarms = 0;
  let dashboards = 0;
  for (const resource of Object.values(built)) {
    if (resource.Type === 'AWS::CloudWatch::Dashboard') dashboards += 1;
    if (resource.Type !== 'AWS::CloudWatch::Alarm') continue;
    const query = JSON.stringify(resource.Properties ?? {}).includes('SELECT ');
    if (query) tenantQueryAlarms += 1;
    else deploymentAlarms += 1;
  }
  return { deploymentAlarms, tenantQueryAlarms, scope, dashboards, functions: names('functions').length };
}

export async function readAlarmCensus(file: string = SERVERLESS_YML): Promise<AlarmCensus> {
  return alarmCensus(await readFile(file, 'utf8'));
}
