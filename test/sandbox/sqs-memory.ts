/**
 * An in-memory SQS responder on loopback: the SQS JSON protocol (`X-Amz-Target:
 * AmazonSQS.<Operation>`, `application/x-amz-json-1.0`) for the operations the fan-out uses —
 * CreateQueue, GetQueueUrl, GetQueueAttributes, SendMessage(Batch), ReceiveMessage,
 * DeleteMessage(Batch), ChangeMessageVisibility, PurgeQueue — with visibility timeouts,
 * `ApproximateReceiveCount` and a `RedrivePolicy` that moves a message to its dead-letter
 * queue when a receive finds it already received `maxReceiveCount` times (as SQS and moto do).
 *
 * Why not moto: moto serves ~100-130 requests/s on two cores (one Python thread), so a
 * 10,000-item drain with 16 workers measures moto, not the workers. This responder answers
 * in microseconds; `sqs-memory.contract.test.ts` holds it to moto's answers for the calls used.
 *
 * The clock is injectable (`now`), so a test can expire visibility timeouts without sleeping.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

interface Message {
  id: string;
  body: string;
  md5: string;
  sent: number;
  receiveCount: number;
  firstReceive?: number;
  /** The receipt handle of the latest receive; older handles no longer delete or change it. */
  handle?: string;
  visibleAt: number;
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  visibilityTimeoutS: number;
  redrive?: { deadLetterTargetArn: string; maxReceiveCount: number };
  /** Visible messages in arrival order (Map keeps insertion order). */
  visible: Map<string, Message>;
  /** Received and not yet deleted, until `visibleAt`. */
  inFlight: Map<string, Message>;
  /** Messages ever moved to this queue's DLQ, and how many receives each had then. */
  redriven: number;
}

class SqsError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

export interface SqsMemory {
  /** `http://127.0.0.1:<port>`: the `endpoint` of an `SQSClient`. */
  url: string;
  /** Requests answered, by operation. */
  calls: Map<string, number>;
  /** Visible + in flight of a queue (by name). */
  depth(name: string): { visible: number; inFlight: number };
  stop(): Promise<void>;
}

export interface SqsMemoryOptions {
  /** Milliseconds since the epoch; default `Date.now`. Tests move it to expire visibility timeouts. */
  now?: () => number;
  /** Long-poll granularity (ms) of `WaitTimeSeconds`; default 20. */
  pollMs?: number;
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

export async function startSqsMemory(options: SqsMemoryOptions = {}): Promise<SqsMemory> {
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 20;
  const queues = new Map<string, Queue>();
  const byArn = new Map<string, Queue>();
  const calls = new Map<string, number>();
  let base = '';

  const queueOf = (url: unknown): Queue => {
    const name = typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : '';
    const q = queues.get(name);
    if (!q) throw new SqsError('com.amazonaws.sqs#QueueDoesNotExist', 'The specified queue does not exist.');
    return q;
  };

  /** Returns messages whose visibility timeout has passed to the visible set. */
  const expire = (q: Queue) => {
    const t = now();
    for (const [id, m] of q.inFlight) {
      if (m.visibleAt <= t) {
        q.inFlight.delete(id);
        q.visible.set(id, m);
      }
    }
  };

  const setAttributes = (q: Queue, attributes: Record<string, string>) => {
    for (const [k, v] of Object.entries(attributes)) q.attributes[k] = v;
    if (attributes.VisibilityTimeout !== undefined)
      q.visibilityTimeoutS = Number(attributes.VisibilityTimeout);
    if (attributes.RedrivePolicy !== undefined) {
      const p = JSON.parse(attributes.RedrivePolicy) as {
        deadLetterTargetArn: string;
        maxReceiveCount: unknown;
      };
      q.redrive = { deadLetterTargetArn: p.deadLetterTargetArn, maxReceiveCount: Number(p.maxReceiveCount) };
    }
  };

  const receive = (q: Queue, max: number, visibilityS: number): Message[] => {
    expire(q);
    const out: Message[] = [];
    const dlq = q.redrive ? byArn.get(q.redrive.deadLetterTargetArn) : undefined;
    for (const [id, m] of q.visible) {
      if (out.length >= max) break;
      q.visible.delete(id);
      // A message already received maxReceiveCount times goes to the DLQ instead of to a consumer.
      if (dlq && q.redrive && m.receiveCount >= q.redrive.maxReceiveCount) {
        m.handle = undefined;
        m.visibleAt = 0;
        dlq.visible.set(id, m);
        q.redriven++;
        continue;
      }
      const t = now();
      m.receiveCount++;
      m.firstReceive ??= t;
      m.handle = `${id}#${randomUUID()}`;
      m.visibleAt = t + visibilityS * 1000;
      q.inFlight.set(id, m);
      out.push(m);
    }
    return out;
  };

  const messageOfHandle = (q: Queue, handle: unknown): Message | undefined => {
    if (typeof handle !== 'string' || !handle.includes('#'))
      throw new SqsError(
        'com.amazonaws.sqs#ReceiptHandleIsInvalid',
        `The input receipt handle "${handle}" is not a valid receipt handle.`,
      );
    const id = handle.slice(0, handle.indexOf('#'));
    const m = q.inFlight.get(id) ?? q.visible.get(id);
    // An outdated handle (the message was received again since) succeeds and changes nothing, as in SQS.
    return m && m.handle === handle ? m : undefined;
  };

  const enqueue = (q: Queue, body: unknown): Message => {
    if (typeof body !== 'string' || body.length === 0)
      throw new SqsError(
        'com.amazonaws.sqs#InvalidParameterValue',
        'The request must contain the parameter MessageBody.',
      );
    const m: Message = { id: randomUUID(), body, md5: md5(body), sent: now(), receiveCount: 0, visibleAt: 0 };
    q.visible.set(m.id, m);
    return m;
  };

  const ops: Record<string, (input: Record<string, unknown>) => unknown | Promise<unknown>> = {
    CreateQueue(input) {
      const name = String(input.QueueName ?? '');
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(name))
        throw new SqsError(
          'com.amazonaws.sqs#InvalidParameterValue',
          'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
        );
      let q = queues.get(name);
      if (!q) {
        q = {
          name,
          url: `${base}/${ACCOUNT}/${name}`,
          arn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`,
          attributes: {},
          visibilityTimeoutS: 30,
          visible: new Map(),
          inFlight: new Map(),
          redriven: 0,
        };
        queues.set(name, q);
        byArn.set(q.arn, q);
      }
      setAttributes(q, (input.Attributes as Record<string, string>) ?? {});
      return { QueueUrl: q.url };
    },
    GetQueueUrl(input) {
      const q = queues.get(String(input.QueueName));
      if (!q)
        throw new SqsError('com.amazonaws.sqs#QueueDoesNotExist', 'The specified queue does not exist.');
      return { QueueUrl: q.url };
    },
    GetQueueAttributes(input) {
      const q = queueOf(input.QueueUrl);
      expire(q);
      const all: Record<string, string> = {
        QueueArn: q.arn,
        ApproximateNumberOfMessages: String(q.visible.size),
        ApproximateNumberOfMessagesNotVisible: String(q.inFlight.size),
        ApproximateNumberOfMessagesDelayed: '0',
        VisibilityTimeout: String(q.visibilityTimeoutS),
        ...q.attributes,
      };
      if (q.redrive) all.RedrivePolicy = JSON.stringify(q.redrive);
      const names = (input.AttributeNames as string[] | undefined) ?? [];
      const picked = names.includes('All')
        ? all
        : Object.fromEntries(names.filter((n) => n in all).map((n) => [n, all[n]!]));
      return Object.keys(picked).length > 0 ? { Attributes: picked } : {};
    },
    SendMessage(input) {
      const m = enqueue(queueOf(input.QueueUrl), input.MessageBody);
      return { MessageId: m.id, MD5OfMessageBody: m.md5 };
    },
    SendMessageBatch(input) {
      const q = queueOf(input.QueueUrl);
      const entries = (input.Entries as { Id: string; MessageBody: string }[]) ?? [];
      if (entries.length === 0)
        throw new SqsError(
          'com.amazonaws.sqs#EmptyBatchRequest',
          'There should be at least one SendMessageBatchRequestEntry in the request.',
        );
      if (entries.length > 10)
        throw new SqsError(
          'com.amazonaws.sqs#TooManyEntriesInBatchRequest',
          `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
        );
      const Successful = entries.map((e) => {
        const m = enqueue(q, e.MessageBody);
        return { Id: e.Id, MessageId: m.id, MD5OfMessageBody: m.md5 };
      });
      return { Successful, Failed: [] };
    },
    async ReceiveMessage(input) {
      const q = queueOf(input.QueueUrl);
      const max = Number(input.MaxNumberOfMessages ?? 1);
      if (!(max >= 1 && max <= 10))
        throw new SqsError(
          'com.amazonaws.sqs#InvalidParameterValue',
          `Value ${max} for parameter MaxNumberOfMessages is invalid. Reason: must be between 1 and 10, if provided.`,
        );
      const visibility =
        input.VisibilityTimeout !== undefined ? Number(input.VisibilityTimeout) : q.visibilityTimeoutS;
      const deadline = Date.now() + Number(input.WaitTimeSeconds ?? 0) * 1000;
      let got = receive(q, max, visibility);
      while (got.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, pollMs));
        got = receive(q, max, visibility);
      }
      if (got.length === 0) return {};
      return {
        Messages: got.map((m) => ({
          MessageId: m.id,
          ReceiptHandle: m.handle,
          MD5OfBody: m.md5,
          Body: m.body,
          Attributes: {
            ApproximateReceiveCount: String(m.receiveCount),
            SentTimestamp: String(m.sent),
            ApproximateFirstReceiveTimestamp: String(m.firstReceive),
            SenderId: ACCOUNT,
          },
        })),
      };
    },
    DeleteMessage(input) {
      const q = queueOf(input.QueueUrl);
      const m = messageOfHandle(q, input.ReceiptHandle);
      if (m) {
        q.inFlight.delete(m.id);
        q.visible.delete(m.id);
      }
      return {};
    },
    DeleteMessageBatch(input) {
      const q = queueOf(input.QueueUrl);
      const entries = (input.Entries as { Id: string; ReceiptHandle: string }[]) ?? [];
      const Successful: { Id: string }[] = [];
      const Failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
      for (const e of entries) {
        try {
          const m = messageOfHandle(q, e.ReceiptHandle);
          if (m) {
            q.inFlight.delete(m.id);
            q.visible.delete(m.id);
          }
          Successful.push({ Id: e.Id });
        } catch (error) {
          Failed.push({
            Id: e.Id,
            SenderFault: true,
            Code: 'ReceiptHandleIsInvalid',
            Message: (error as Error).message,
          });
        }
      }
      return { Successful, Failed };
    },
    ChangeMessageVisibility(input) {
      const q = queueOf(input.QueueUrl);
      const m = messageOfHandle(q, input.ReceiptHandle);
      if (m && q.inFlight.has(m.id)) {
        m.visibleAt = now() + Number(input.VisibilityTimeout) * 1000;
        if (Number(input.VisibilityTimeout) === 0) {
          q.inFlight.delete(m.id);
          q.visible.set(m.id, m);
        }
      }
      return {};
    },
    PurgeQueue(input) {
      const q = queueOf(input.QueueUrl);
      q.visible.clear();
      q.inFlight.clear();
      return {};
    },
  };

  const answer = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': randomUUID(),
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
      const handler = ops[op];
      calls.set(op || '(unknown)', (calls.get(op || '(unknown)') ?? 0) + 1);
      if (!handler) {
        answer(res, 400, {
          __type: 'com.amazonaws.sqs#InvalidAction',
          message: `unsupported operation ${target}`,
        });
        return;
      }
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        answer(res, 200, await handler(text ? (JSON.parse(text) as Record<string, unknown>) : {}));
      } catch (error) {
        if (error instanceof SqsError)
          answer(res, error.status, { __type: error.type, message: error.message });
        else answer(res, 500, { __type: 'com.amazonaws.sqs#InternalError', message: String(error) });
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    calls,
    depth(name) {
      const q = queues.get(name);
      if (!q) throw new Error(`no queue ${name}`);
      expire(q);
      return { visible: q.visible.size, inFlight: q.inFlight.size };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
