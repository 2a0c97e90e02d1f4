/**
 * An in-memory AWS responder for the operations discovery makes: STS `AssumeRole`, EC2
 * `DescribeRegions`, EKS `CreateCluster` (for seeding), `ListClusters` (paginated) and
 * `DescribeCluster`. It answers the wire shapes moto 5.2.1 answers — same XML and JSON
 * members, same defaults, same page order and tokens, same errors — so the real SDK
 * clients run unchanged against it, usually behind {@link startAwsProxy} (latency, faults,
 * the request log). `test/contract/aws-memory.contract.test.ts` holds it to moto.
 *
 * Why it exists: moto answers one request at a time at a few milliseconds each, so a
 * benchmark over hundreds of calls measures moto. This answers from prepared strings in
 * well under a millisecond. Every other operation answers HTTP 501 `NotImplemented`, so a
 * test that needs more must use moto (correctness tests do).
 *
 * Accounts as moto keys them: an `AssumeRole` answer's access key belongs to the role's
 * account (moto's default account `123456789012` for an ARN without one); any other key
 * (the base `testing` credentials) to the default account. Region: the SigV4 scope.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { awsError, classifyAwsRequest, type ProxyResponse } from './aws-proxy.ts';

/** moto's account for credentials it did not issue. */
export const DEFAULT_ACCOUNT = '123456789012';

/** moto 5.2.1's `DescribeRegions` answer: every region with its opt-in status, in its order. */
const REGIONS: readonly [name: string, optedIn: boolean][] = [
  ['af-south-1', true],
  ['ap-east-1', false],
  ['ap-east-2', false],
  ['ap-northeast-1', true],
  ['ap-northeast-2', true],
  ['ap-northeast-3', true],
  ['ap-south-1', true],
  ['ap-south-2', false],
  ['ap-southeast-1', true],
  ['ap-southeast-2', true],
  ['ap-southeast-3', true],
  ['ap-southeast-4', false],
  ['ap-southeast-5', false],
  ['ap-southeast-6', false],
  ['ap-southeast-7', false],
  ['ca-central-1', true],
  ['ca-west-1', false],
  ['eu-central-1', true],
  ['eu-central-2', false],
  ['eu-north-1', true],
  ['eu-south-1', true],
  ['eu-south-2', false],
  ['eu-west-1', true],
  ['eu-west-2', true],
  ['eu-west-3', true],
  ['il-central-1', false],
  ['me-central-1', false],
  ['me-south-1', false],
  ['mx-central-1', false],
  ['sa-east-1', true],
  ['us-east-1', true],
  ['us-east-2', true],
  ['us-west-1', true],
  ['us-west-2', true],
  ['us-gov-east-1', true],
  ['us-gov-west-1', true],
  ['cn-north-1', true],
  ['cn-northwest-1', true],
];

/** moto's defaults for a cluster created without them. */
const DEFAULT_VERSION = '1.19';
const DEFAULT_NETWORK = { serviceIpv4Cidr: '172.20.0.0/16' };
const DEFAULT_LOGGING = {
  clusterLogging: [
    { types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'], enabled: false },
  ],
};
const DEFAULT_PLATFORM_VERSION = 'eks.4';
const DEFAULT_PAGE = 100;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(.+)$/;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function randomString(length: number, alphabet = ALNUM): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

const partition = (region: string) =>
  region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';

const xmlEscape = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

export interface AwsMemory {
  /** Base URL (`http://127.0.0.1:<port>`), an upstream for {@link startAwsProxy}. */
  url: string;
  /** Clusters stored, over every account and region. */
  readonly clusterCount: number;
  /** Forgets every cluster and issued key (moto's `/moto-api/reset`). */
  reset(): void;
  stop(): Promise<void>;
}

interface Region {
  /** Cluster name -> its `DescribeCluster` answer, serialised once. */
  clusters: Map<string, string>;
  /** Names in moto's page order (sorted), rebuilt after a create. */
  sorted?: string[];
}

/** JSON as moto writes it (Python's `json.dumps`: `", "` and `": "` separators), so bodies match byte for byte. */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${members.map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

const json = (status: number, body: unknown, extra: Record<string, string> = {}): ProxyResponse => ({
  status,
  headers: { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID(), ...extra },
  body: typeof body === 'string' ? body : pythonJson(body),
});

const xml = (body: string): ProxyResponse => ({
  status: 200,
  headers: { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() },
  body,
});

/** An EKS error as moto sends it: status, `x-amzn-ErrorType`, a JSON body with `message`. */
const eksError = (status: number, type: string, body: Record<string, unknown>) =>
  json(status, body, { 'x-amzn-errortype': type });

export async function startAwsMemory(options: { port?: number } = {}): Promise<AwsMemory> {
  /** `account/region` -> clusters. */
  const regions = new Map<string, Region>();
  /** Access key id issued by AssumeRole -> account. */
  const keys = new Map<string, string>();
  let clusterCount = 0;
  // Like moto, one endpoint host and one OIDC id per process (per responder here).
  const endpointHost = `${randomString(20)}.${randomString(3)}`;
  const issuerId = randomString(10);

  const regionOf = (account: string, region: string): Region => {
    const k = `${account}/${region}`;
    let r = regions.get(k);
    if (!r) {
      r = { clusters: new Map() };
      regions.set(k, r);
    }
    return r;
  };

  function assumeRole(form: URLSearchParams): ProxyResponse {
    const roleArn = form.get('RoleArn') ?? '';
    const session = form.get('RoleSessionName') ?? '';
    const duration = Number(form.get('DurationSeconds') ?? 3600);
    const match = roleArn.match(ROLE_ARN);
    const account = match?.[2] ?? DEFAULT_ACCOUNT;
    const roleName = roleArn.split('/').at(-1) ?? roleArn;
    const accessKeyId = `ASIA${randomString(16, UPPER_ALNUM)}`;
    keys.set(accessKeyId, account);
    const expiration = new Date(Date.now() + duration * 1000).toISOString();
    const token = `FQoGZXIvYXdzEBYaD${randomBytes(266).toString('base64').slice(17)}`;
    return xml(
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
        `<AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${randomString(40)}</SecretAccessKey>` +
        `<SessionToken>${token}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>AROA${randomString(17, UPPER_ALNUM)}:${xmlEscape(session)}</AssumedRoleId>` +
        `<Arn>arn:aws:sts::${account}:assumed-role/${xmlEscape(roleName)}/${xmlEscape(session)}</Arn></AssumedRoleUser>` +
        `<PackedPolicySize>6</PackedPolicySize></AssumeRoleResult>` +
        `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    );
  }

  function describeRegions(): ProxyResponse {
    const items = REGIONS.map(
      ([name, optedIn]) =>
        `<item><optInStatus>${optedIn ? 'opt-in-not-required' : 'not-opted-in'}</optInStatus><regionName>${name}</regionName><regionEndpoint>ec2.${name}.amazonaws.com${name.startsWith('cn-') ? '.cn' : ''}</regionEndpoint></item>`,
    ).join('');
    return xml(
      `<?xml version="1.0" encoding="utf-8"?>\n<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><regionInfo>${items}</regionInfo><requestId>request-id</requestId></DescribeRegionsResponse>`,
    );
  }

  function createCluster(account: string, region: string, body: Buffer): ProxyResponse {
    const input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    const name = String(input.name ?? '');
    const r = regionOf(account, region);
    if (r.clusters.has(name)) {
      return eksError(409, 'ResourceInUseException', {
        clusterName: name,
        nodegroupName: null,
        addonName: null,
        message: `Cluster already exists with name: ${name}`,
      });
    }
    const roleArn = String(input.roleArn ?? '');
    if (!ROLE_ARN.test(roleArn)) {
      return eksError(400, 'InvalidParameterException', { message: `Invalid Role Arn: '${roleArn}'` });
    }
    // Member order and defaults as moto serialises its Cluster model.
    const cluster = {
      name,
      arn: `arn:${partition(region)}:eks:${region}:${account}:cluster/${name}`,
      createdAt: Math.round(Date.now()) / 1000,
      version: input.version ?? DEFAULT_VERSION,
      endpoint: `https://${endpointHost}.${region}.eks.amazonaws.com/`,
      roleArn,
      resourcesVpcConfig: input.resourcesVpcConfig,
      kubernetesNetworkConfig: input.kubernetesNetworkConfig ?? DEFAULT_NETWORK,
      logging: input.logging ?? DEFAULT_LOGGING,
      identity: { oidc: { issuer: `https://oidc.eks.${region}.amazonaws.com/id/${issuerId}` } },
      status: 'ACTIVE',
      certificateAuthority: { data: randomString(1400) },
      ...(input.clientRequestToken !== undefined && { clientRequestToken: input.clientRequestToken }),
      platformVersion: DEFAULT_PLATFORM_VERSION,
      tags: input.tags ?? {},
      encryptionConfig: input.encryptionConfig ?? [],
      ...(input.remoteNetworkConfig !== undefined && { remoteNetworkConfig: input.remoteNetworkConfig }),
    };
    const answer = pythonJson({ cluster });
    r.clusters.set(name, answer);
    r.sorted = undefined;
    clusterCount++;
    return json(200, answer);
  }

  function listClusters(account: string, region: string, query: URLSearchParams): ProxyResponse {
    const r = regions.get(`${account}/${region}`);
    if (r && !r.sorted) r.sorted = [...r.clusters.keys()].sort();
    const names = r?.sorted ?? [];
    const max = Number(query.get('maxResults') ?? DEFAULT_PAGE);
    const token = query.get('nextToken');
    // moto's token is the name that starts the next page; an unknown one is an error there too.
    const start = token ? names.indexOf(token) : 0;
    if (start < 0) return eksError(400, 'InvalidParameterException', { message: 'invalid nextToken' });
    const end = Math.min(start + max, names.length);
    return json(200, {
      clusters: names.slice(start, end),
      ...(end < names.length && { nextToken: names[end] }),
    });
  }

  function describeCluster(account: string, region: string, name: string): ProxyResponse {
    const answer = regions.get(`${account}/${region}`)?.clusters.get(name);
    if (answer !== undefined) return json(200, answer);
    return eksError(404, 'ResourceNotFoundException', {
      clusterName: null,
      nodegroupName: null,
      fargateProfileName: null,
      addonName: null,
      message: `No cluster found for name: ${name}.`,
    });
  }

  function answer(method: string, url: string, req: IncomingMessage, body: Buffer): ProxyResponse {
    const cls = classifyAwsRequest(method, url, req.headers, body);
    const account = (cls.accessKeyId && keys.get(cls.accessKeyId)) || DEFAULT_ACCOUNT;
    const region = cls.region ?? 'us-east-1';
    const form = new URLSearchParams(
      cls.protocol === 'query' || cls.protocol === 'ec2' ? body.toString() : '',
    );
    switch (cls.operation) {
      case 'AssumeRole':
        return assumeRole(form);
      case 'DescribeRegions':
        return describeRegions();
      case 'CreateCluster':
        return createCluster(account, region, body);
      case 'ListClusters':
        return listClusters(account, region, new URL(url, 'http://memory.invalid').searchParams);
      case 'DescribeCluster':
        return describeCluster(account, region, cls.resource ?? '');
      default:
        return awsError(
          cls.protocol,
          501,
          'NotImplemented',
          `the in-memory AWS responder does not answer ${cls.operation}: use moto`,
        );
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let out: ProxyResponse;
      try {
        out = answer(req.method ?? 'GET', req.url ?? '/', req, Buffer.concat(chunks));
      } catch (error) {
        out = awsError(
          'rest-json',
          500,
          'InternalFailure',
          `in-memory responder: ${(error as Error).message}`,
        );
      }
      const payload = Buffer.from(out.body ?? '');
      res.writeHead(out.status, { ...out.headers, 'content-length': String(payload.length) });
      res.end(payload);
    });
  }

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get clusterCount() {
      return clusterCount;
    },
    reset() {
      regions.clear();
      keys.clear();
      clusterCount = 0;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
