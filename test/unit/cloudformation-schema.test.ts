/** The offline CloudFormation check the infrastructure tests rely on finds what a deploy would refuse. */
import { describe, expect, it } from 'vitest';
import { templateProblems } from '../support/cloudformation-schema.ts';

const queue = { Type: 'AWS::SQS::Queue', Properties: { MessageRetentionPeriod: 1_209_600 } };

describe('templateProblems', () => {
  it('accepts a template whose resources match their schemas, intrinsics standing for any value', () => {
    expect(
      templateProblems({
        Resources: {
          Queue: queue,
          Table: {
            Type: 'AWS::DynamoDB::Table',
            DeletionPolicy: 'Retain',
            Properties: {
              BillingMode: 'PAY_PER_REQUEST',
              KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
              AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
              TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: 'true' },
              DeletionProtectionEnabled: { 'Fn::If': ['Prod', true, false] },
              Tags: [{ Key: 'app', Value: { 'Fn::Sub': `\${AWS::StackName}` } }],
            },
          },
          Alarm: {
            Type: 'AWS::CloudWatch::Alarm',
            Properties: {
              ComparisonOperator: 'GreaterThanThreshold',
              EvaluationPeriods: '1',
              Threshold: 0,
              Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['Queue', 'QueueName'] } }],
              AlarmActions: [{ 'Fn::Sub': `\${Queue.Arn}` }],
            },
          },
        },
      }),
    ).toEqual([]);
  });

  it('names each misspelt, missing or mistyped property, unknown type and unknown attribute', () => {
    const problems = templateProblems({
      Resources: {
        Queue: { ...queue, DeletePolicy: 'Retain' },
        Stage: {
          Type: 'AWS::ApiGatewayV2::Stage',
          Properties: {
            ApiId: 'abc',
            DefaultRouteSettings: { ThrottlingRateLimit: 'fast', Throttle: 5 },
            AutoDeploy: 'yes',
          },
        },
        Rule: { Type: 'AWS::Events::Rules', Properties: {} },
        Alarm: {
          Type: 'AWS::CloudWatch::Alarm',
          Properties: {
            ComparisonOperator: 'GreaterThanThreshold',
            EvaluationPeriods: 1.5,
            AlarmActions: 'arn:aws:sns:eu-west-1:123456789012:ops',
            Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['Queue', 'Name'] } }],
            AlarmDescription: { 'Fn::Sub': `queue \${Queue.Url}` },
          },
        },
      },
    });
    expect(problems).toEqual([
      'Queue: a resource has no key DeletePolicy',
      'Stage (AWS::ApiGatewayV2::Stage): lacks the required property StageName',
      'Stage (AWS::ApiGatewayV2::Stage).DefaultRouteSettings.ThrottlingRateLimit: expected a number, got "fast"',
      expect.stringMatching(
        /^Stage \(AWS::ApiGatewayV2::Stage\)\.DefaultRouteSettings: has no property Throttle \(it has .*ThrottlingBurstLimit/,
      ),
      'Stage (AWS::ApiGatewayV2::Stage).AutoDeploy: expected a boolean, got "yes"',
      'Rule: no resource type AWS::Events::Rules',
      'Alarm (AWS::CloudWatch::Alarm).EvaluationPeriods: expected an integer, got 1.5',
      'Alarm (AWS::CloudWatch::Alarm).AlarmActions: expected a list, got "arn:aws:sns:eu-west-1:123456789012:ops"',
      expect.stringMatching(
        /^Fn::GetAtt Queue\.Name: AWS::SQS::Queue has no such attribute \(it has Arn, QueueName, QueueUrl\)$/,
      ),
      expect.stringMatching(/^Fn::GetAtt Queue\.Url: AWS::SQS::Queue has no such attribute/),
    ]);
  });
});
