import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';

import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { EMULATOR_REGION, startEmulator, type Emulator } from '../support/fauxqs.js';

let database: TestDatabase;
let emulator: Emulator;
let directory: string;

before(async () => {
  database = await createTestDatabase();
  emulator = await startEmulator();
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-sqs-init-'));
});

after(async () => {
  await emulator?.close();
  await database?.drop();
  if (directory) await fs.rm(directory, { recursive: true, force: true });
});

test('taskq init --broker=sqs puts a queue on SQS with a profile and creates it, repeatably', async () => {
  const configFile = path.join(directory, 'taskq.json');
  const standard = { name: 'standard', broker: { type: 'postgres' }, weight: 30 };
  await fs.writeFile(configFile, JSON.stringify({ queues: [standard] }));
  // The profile is read by the SDK's own credential chain, from a file of this test's.
  const credentials = path.join(directory, 'credentials');
  await fs.writeFile(
    credentials,
    '[default]\naws_access_key_id = test\naws_secret_access_key = test\n',
  );
  const env = {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_HOME: path.join(directory, 'state'),
    AWS_SHARED_CREDENTIALS_FILE: credentials,
    AWS_CONFIG_FILE: path.join(directory, 'no-config'),
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
  };
  const args = [
    `--config=${configFile}`,
    'init',
    '--broker=sqs',
    '--queue=priority',
    `--aws-region=${EMULATOR_REGION}`,
    '--aws-profile=default',
    `--aws-endpoint=${emulator.endpoint}`,
    '--receive=10',
  ];

  const first = await runCli(args, { env });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /queue priority ready \(sqs, weight 30\)/);
  const written = await fs.readFile(configFile, 'utf8');
  assert.deepEqual(JSON.parse(written).queues, [
    standard,
    {
      name: 'priority',
      broker: {
        type: 'sqs',
        receive: 10,
        region: EMULATOR_REGION,
        profile: 'default',
        endpoint: emulator.endpoint,
      },
      weight: 30,
    },
  ]);

  const second = await runCli(args, { env });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(await fs.readFile(configFile, 'utf8'), written, 'a second init changes nothing');

  const sqs = new SQSClient({ region: EMULATOR_REGION, endpoint: emulator.endpoint });
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'TQ_priority' }));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['VisibilityTimeout'] }),
    );
    assert.equal(Attributes?.VisibilityTimeout, '300');
  } finally {
    sqs.destroy();
  }
});
