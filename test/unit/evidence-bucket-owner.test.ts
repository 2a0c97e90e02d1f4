/**
 * No evidence-bucket call leaves out `ExpectedBucketOwner`: the S3 client of the evidence store
 * adds it to every command (`expectBucketOwner`), the store sends only the S3 commands the
 * integration test (test/integration/bucket-owner.test.ts) watches on the wire, and every S3
 * client the store file builds carries the middleware.
 */
import { readFileSync } from 'node:fs';
import {
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { HttpResponse } from '@smithy/protocol-http';
import { describe, expect, it } from 'vitest';
import { expectBucketOwner } from '../../shared/clouds/aws/bucket-owner.ts';

/** The S3 commands of the evidence store, as the integration test exercises them. */
const EVIDENCE_COMMANDS = [
  'GetBucketLocationCommand',
  'GetBucketVersioningCommand',
  'GetObjectCommand',
  'GetObjectLockConfigurationCommand',
  'ListObjectVersionsCommand',
  'PutObjectCommand',
];

const STORE_FILE = 'shared/clouds/aws/evidence.ts';

/** An S3 client that records each request's owner header and answers nothing useful (no network). */
function recordingClient() {
  const owners: (string | undefined)[] = [];
  const client = new S3Client({
    region: 'eu-central-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: { headers: Record<string, string> }) => {
        owners.push(request.headers['x-amz-expected-bucket-owner']);
        return { response: new HttpResponse({ statusCode: 500, headers: {}, body: undefined }) };
      },
    },
  });
  return { client, owners };
}

const commands = () => [
  new GetBucketLocationCommand({ Bucket: 'b' }),
  new GetObjectLockConfigurationCommand({ Bucket: 'b' }),
  new GetBucketVersioningCommand({ Bucket: 'b' }),
  new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x', IfNoneMatch: '*' }),
  new GetObjectCommand({ Bucket: 'b', Key: 'k' }),
  new ListObjectVersionsCommand({ Bucket: 'b', Prefix: 'p' }),
];

describe('evidence bucket owner', () => {
  it('adds the owner to every evidence command a client sends', async () => {
    // Prepare
    const { client, owners } = recordingClient();
    expectBucketOwner(client, async () => '123456789012');

    // Act
    for (const command of commands()) await client.send(command as never).catch(() => undefined);

    // Assess
    expect(owners).toEqual(commands().map(() => '123456789012'));
  });

  it('sends no owner without the middleware (the header comes from it, not from the SDK)', async () => {
    const { client, owners } = recordingClient();

    await client.send(new GetBucketLocationCommand({ Bucket: 'b' })).catch(() => undefined);

    expect(owners).toEqual([undefined]);
  });

  it('keeps an owner a command names itself, and fails the call when the owner cannot be learnt', async () => {
    const { client, owners } = recordingClient();
    expectBucketOwner(client, async () => {
      throw new Error('no account');
    });

    await client
      .send(new GetObjectCommand({ Bucket: 'b', Key: 'k', ExpectedBucketOwner: '222233334444' }))
      .catch(() => undefined);
    const error = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e);

    expect(owners).toEqual(['222233334444']);
    expect(error).toMatchObject({ message: 'no account' });
  });

  it('lets the store send only the S3 commands whose owner header the integration test checks', () => {
    const text = readFileSync(STORE_FILE, 'utf8');
    const s3Import = text.match(/import \{([^}]*)\} from '@aws-sdk\/client-s3'/)?.[1] ?? '';
    const used = s3Import
      .split(',')
      .map((s) => s.trim().replace(/^type\s+/, ''))
      .filter((s) => s.endsWith('Command'))
      .sort();

    expect(used).toEqual(EVIDENCE_COMMANDS);
  });

  it('builds every S3 client of the store file with the owner middleware', () => {
    const text = readFileSync(STORE_FILE, 'utf8');
    const clients = text.match(/new S3Client\(/g) ?? [];
    const guarded = text.match(/expectBucketOwner\(\s*new S3Client\(/g) ?? [];

    expect(clients.length).toBeGreaterThan(0);
    expect(guarded.length).toBe(clients.length);
  });
});
