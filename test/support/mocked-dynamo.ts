/**
 * The snapshot store on the real DynamoDB client with aws-sdk-client-mock in front of it: for the faults
 * dynalite cannot produce (throttling, 5xx, permissions). `dynamo` scripts the answers.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { createDynamoSnapshotStore } from '../../lib/snapshots/store.ts';

export function mockedDynamoStore(tableName: string) {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  const dynamo = mockClient(client);
  const store = createDynamoSnapshotStore({ client, tableName, retentionDays: 400, cursorKey: 'k' });
  return { client, dynamo, store };
}
