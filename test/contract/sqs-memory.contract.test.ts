/**
 * The in-memory SQS responder answers like moto for the calls the fan-out makes: the same
 * script (create a queue with a dead-letter queue, send a batch, receive, delete a batch,
 * make one visible again until it is redriven, read depths and the redrive policy, the
 * errors of a missing queue and of an oversized batch) gives the same transcript on both.
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { type SqsMemory, startSqsMemory } from '../sandbox/sqs-memory.ts';

const client = (endpoint: string) =>
  new SQSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

/** Runs the fan-out's calls and writes down what a caller can observe. */
async function script(sqs: SQSClient): Promise<unknown[]> {
  const out: unknown[] = [];
  const depth = async (url: string) => {
    const a = (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes;
    return [a?.ApproximateNumberOfMessages, a?.ApproximateNumberOfMessagesNotVisible];
  };
  const error = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return 'no error';
    } catch (e) {
      return (e as Error).name;
    }
  };
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'contract-dlq' }))).QueueUrl!;
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  out.push(['dlq arn', /^arn:aws:sqs:[a-z0-9-]+:\d{12}:contract-dlq$/.test(dlqArn)]);
  const url = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: 'contract-work',
        Attributes: {
          VisibilityTimeout: '30',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }),
        },
      }),
    )
  ).QueueUrl!;
  out.push(['url', url.endsWith('/contract-work')]);
  out.push([
    'get url',
    (await sqs.send(new GetQueueUrlCommand({ QueueName: 'contract-work' }))).QueueUrl === url,
  ]);
  const attributes = (
    await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['RedrivePolicy', 'VisibilityTimeout'],
      }),
    )
  ).Attributes!;
  const policy = JSON.parse(attributes.RedrivePolicy!) as {
    deadLetterTargetArn: string;
    maxReceiveCount: unknown;
  };
  out.push([
    'redrive',
    policy.deadLetterTargetArn === dlqArn,
    Number(policy.maxReceiveCount),
    attributes.VisibilityTimeout,
  ]);

  const sent = await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: ['{"a":1}', '{"b":2}', 'poison'].map((body, i) => ({ Id: String(i), MessageBody: body })),
    }),
  );
  out.push([
    'sent',
    (sent.Successful ?? []).map((s) => [s.Id, s.MD5OfMessageBody]).sort(),
    (sent.Failed ?? []).length,
  ]);
  out.push(['depth after send', await depth(url)]);

  const first = (
    await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
      }),
    )
  ).Messages!;
  out.push([
    'received',
    first.map((m) => [m.Body, m.MD5OfBody, m.Attributes?.ApproximateReceiveCount]).sort(),
  ]);
  out.push(['depth in flight', await depth(url)]);
  out.push([
    'empty receive',
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }))).Messages ?? [],
  ]);
  const good = first.filter((m) => m.Body !== 'poison');
  const deleted = await sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: url,
      Entries: good.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
    }),
  );
  out.push(['deleted', (deleted.Successful ?? []).map((s) => s.Id).sort(), (deleted.Failed ?? []).length]);
  let poison = first.find((m) => m.Body === 'poison')!;
  const counts: (string | undefined)[] = [poison.Attributes?.ApproximateReceiveCount];
  for (let i = 0; i < 3; i++) {
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: poison.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
    const again =
      (
        await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            MessageSystemAttributeNames: ['All'],
          }),
        )
      ).Messages ?? [];
    if (again.length === 0) {
      counts.push('redriven');
      break;
    }
    poison = again[0]!;
    counts.push(poison.Attributes?.ApproximateReceiveCount);
  }
  out.push(['poison receive counts', counts]);
  out.push(['depth after redrive', await depth(url), await depth(dlqUrl)]);
  const inDlq =
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10 }))).Messages ?? [];
  out.push(['dlq bodies', inDlq.map((m) => m.Body)]);

  out.push([
    'missing queue',
    await error(() => sqs.send(new GetQueueUrlCommand({ QueueName: 'contract-missing' }))),
  ]);
  out.push([
    'eleven entries',
    await error(() =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: Array.from({ length: 11 }, (_, i) => ({ Id: String(i), MessageBody: 'x' })),
        }),
      ),
    ),
  ]);
  return out;
}

describe('in-memory SQS responder', () => {
  let moto: MotoServer;
  let memory: SqsMemory;
  beforeAll(async () => {
    [moto, memory] = await Promise.all([startMoto(), startSqsMemory()]);
  });
  afterAll(async () => {
    await Promise.all([moto?.stop(), memory?.stop()]);
  });

  it('answers the fan-out calls as moto does (send, receive, delete, visibility, redrive to the DLQ, errors)', async () => {
    // Prepare
    const [viaMoto, viaMemory] = [client(moto.url), client(memory.url)];

    // Act
    const expected = await script(viaMoto);
    const actual = await script(viaMemory);
    viaMoto.destroy();
    viaMemory.destroy();

    // Assess: the transcript is not trivially empty, and the two agree
    expect(expected).toContainEqual(['poison receive counts', ['1', '2', '3', 'redriven']]);
    expect(expected).toContainEqual(['dlq bodies', ['poison']]);
    expect(actual).toEqual(expected);
  });
});
