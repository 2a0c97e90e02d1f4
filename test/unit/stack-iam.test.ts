/**
 * The local stack's IAM check (test/sandbox/stack-iam.ts): requests as the AWS SDK v3 sends them
 * (JSON protocol with `X-Amz-Target`, S3 REST paths), named by the AWS proxy's classifier, against
 * role statements shaped like the generated ones.
 */
import { describe, expect, it } from 'vitest';
import { classifyAwsRequest, type ProxiedRequest } from '../sandbox/aws-proxy.ts';
import {
  accessDeniedMessage,
  functionCredentials,
  iamRequests,
  refusedResource,
  type Statement,
  statementsOf,
} from '../sandbox/stack-iam.ts';

const ACCOUNT = '123456789012';
const REGION = 'ap-south-1';
const auth = (service: string) =>
  `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261207/${REGION}/${service}/aws4_request, SignedHeaders=host, Signature=0`;

function jsonRequest(service: string, target: string, body: unknown): ProxiedRequest {
  const headers = {
    authorization: auth(service),
    'x-amz-target': target,
    'content-type': 'application/x-amz-json-1.0',
  };
  const raw = Buffer.from(JSON.stringify(body));
  const cls = classifyAwsRequest('POST', '/', headers, raw);
  return {
    method: 'POST',
    url: '/',
    headers,
    body: raw,
    info: { cloud: 'aws', operation: cls.operation, service: cls.service!, region: cls.region! },
  };
}

function s3Request(method: string, url: string, extra: Record<string, string> = {}): ProxiedRequest {
  const headers = { authorization: auth('s3'), ...extra };
  const cls = classifyAwsRequest(method, url, headers, Buffer.alloc(0));
  return {
    method,
    url,
    headers,
    body: Buffer.alloc(0),
    info: { cloud: 'aws', operation: cls.operation, service: cls.service!, region: cls.region! },
  };
}

const QUEUE = `arn:aws:sqs:${REGION}:${ACCOUNT}:fleetward-dev-in-backup-clusters`;
const TABLE = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/fleetward-dev-in-state`;
/** Statements as the generator writes them, resolved. */
const ROLE: Statement[] = statementsOf({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [QUEUE] },
    { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: [TABLE] },
    {
      Effect: 'Allow',
      Action: ['ssm:GetParameter'],
      Resource: [`arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/fleetward/*`],
    },
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject'],
      Resource: ['arn:aws:s3:::evidence-in/audit/*'],
    },
    {
      Effect: 'Allow',
      Action: ['sts:GetWebIdentityToken'],
      Resource: ['*'],
      Condition: {
        'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': ['api://AzureADTokenExchange'] },
      },
    },
  ],
});

describe('stack iam', () => {
  it('allows what the role names: queue by its URL, table by name, parameter by path', () => {
    const send = iamRequests(
      jsonRequest('sqs', 'AmazonSQS.SendMessageBatch', {
        QueueUrl: `http://127.0.0.1:4566/${ACCOUNT}/fleetward-dev-in-backup-clusters`,
        Entries: [],
      }),
      ACCOUNT,
    );
    const put = iamRequests(
      jsonRequest('dynamodb', 'DynamoDB_20120810.PutItem', { TableName: 'fleetward-dev-in-state', Item: {} }),
      ACCOUNT,
    );
    const param = iamRequests(
      jsonRequest('ssm', 'AmazonSSM.GetParameter', { Name: '/fleetward/slack/ops', WithDecryption: true }),
      ACCOUNT,
    );
    const head = iamRequests(s3Request('HEAD', '/evidence-in/audit/2026/x.json.gz'), ACCOUNT);

    expect(send).toEqual([{ action: 'sqs:SendMessage', resources: [QUEUE] }]);
    expect(put).toEqual([{ action: 'dynamodb:PutItem', resources: [TABLE] }]);
    expect(param).toEqual([
      {
        action: 'ssm:GetParameter',
        resources: [`arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/fleetward/slack/ops`],
      },
    ]);
    expect(head).toEqual([
      { action: 's3:GetObject', resources: ['arn:aws:s3:::evidence-in/audit/2026/x.json.gz'] },
    ]);
    for (const need of [...send, ...put, ...param, ...head])
      expect(refusedResource(ROLE, need)).toBeUndefined();
  });

  it('refuses an action the role lacks, another queue, a key outside the prefix and a versioned read', () => {
    const refusals = [
      iamRequests(
        jsonRequest('dynamodb', 'DynamoDB_20120810.DeleteItem', { TableName: 'fleetward-dev-in-state' }),
        ACCOUNT,
      ),
      iamRequests(
        jsonRequest('sqs', 'AmazonSQS.SendMessage', {
          QueueUrl: `http://127.0.0.1:4566/${ACCOUNT}/fleetward-dev-in-restore-drill`,
        }),
        ACCOUNT,
      ),
      iamRequests(s3Request('PUT', '/evidence-in/snapshots/x.json'), ACCOUNT),
      iamRequests(s3Request('GET', '/evidence-in/audit/x.json?versionId=3'), ACCOUNT),
      iamRequests(
        s3Request('PUT', '/evidence-in/audit/x.json', { 'x-amz-object-lock-mode': 'COMPLIANCE' }),
        ACCOUNT,
      ),
      iamRequests(
        jsonRequest('sts', 'AWSSecurityTokenServiceV20110615.AssumeRole', {
          RoleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
        }),
        ACCOUNT,
      ),
    ];

    expect(refusals.map((needs) => needs.map((n) => refusedResource(ROLE, n)).find(Boolean))).toEqual([
      TABLE,
      `arn:aws:sqs:${REGION}:${ACCOUNT}:fleetward-dev-in-restore-drill`,
      'arn:aws:s3:::evidence-in/snapshots/x.json',
      'arn:aws:s3:::evidence-in/audit/x.json',
      'arn:aws:s3:::evidence-in/audit/x.json',
      'arn:aws:iam::111111111111:role/fleetward-reader',
    ]);
    expect(refusals[3]![0]!.action).toBe('s3:GetObjectVersion');
    expect(refusals[4]!.map((n) => n.action)).toEqual(['s3:PutObject', 's3:PutObjectRetention']);
  });

  it('lets an explicit deny win, needs "*" for actions without resources, and asks nothing for GetCallerIdentity', () => {
    const deny = statementsOf({
      Statement: [
        { Effect: 'Allow', Action: 'sqs:*', Resource: '*' },
        { Effect: 'Deny', Action: 'sqs:Send*', Resource: QUEUE },
      ],
    });
    const token = { action: 'sts:GetWebIdentityToken', resources: ['*'] };

    expect(refusedResource(deny, { action: 'sqs:SendMessage', resources: [QUEUE] })).toBe(QUEUE);
    expect(refusedResource(deny, { action: 'sqs:ReceiveMessage', resources: [QUEUE] })).toBeUndefined();
    expect(refusedResource(ROLE, token)).toBeUndefined();
    expect(
      refusedResource(
        statementsOf({
          Statement: [{ Effect: 'Allow', Action: 'sts:GetWebIdentityToken', Resource: QUEUE }],
        }),
        token,
      ),
    ).toBe('*');
    expect(
      iamRequests(jsonRequest('sts', 'AWSSecurityTokenServiceV20110615.GetCallerIdentity', {}), ACCOUNT),
    ).toEqual([]);
  });

  it('gives each function its own stable key and names role, session, action and resource when refusing', () => {
    const a = functionCredentials('fleetward-dev-in-backup-clusters');

    expect(a).toEqual(functionCredentials('fleetward-dev-in-backup-clusters'));
    expect(a.accessKeyId).toMatch(/^AKIA[0-9A-F]{16}$/);
    expect(functionCredentials('fleetward-dev-in-backup-clusters-worker').accessKeyId).not.toBe(
      a.accessKeyId,
    );
    expect(accessDeniedMessage(ACCOUNT, 'role-a', 'fn-a', 'sqs:SendMessage', QUEUE)).toBe(
      `User: arn:aws:sts::${ACCOUNT}:assumed-role/role-a/fn-a is not authorized to perform: sqs:SendMessage on resource: ${QUEUE} because no identity-based policy allows the sqs:SendMessage action`,
    );
  });
});
