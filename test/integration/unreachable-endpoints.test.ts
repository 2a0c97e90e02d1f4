/**
 * Cloud endpoints that cannot be talked to: a closed loopback port, a TLS server whose
 * certificate is not trusted, and a server that answers HTML where the API answers JSON (a
 * proxy's "Not Found" page behind a mistyped endpoint). Discovery reports each as
 * `cannot reach <service> at <endpoint>: <reason>`, once per scope, never as the JSON parse
 * error of the page (`SyntaxError: Unexpected token '<'`). Loopback only.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createH2cServer, createSecureServer, type Http2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArchiveStore } from '../../shared/audit/local-store.ts';
import { createAuditSource as createCloudWatchSource } from '../../shared/clouds/aws/audit.ts';
import { createBucketLocator as createS3Locator } from '../../shared/clouds/aws/buckets.ts';
import { createBudgetProvider as createAwsBudgets } from '../../shared/clouds/aws/budgets.ts';
import { createDiscovery } from '../../shared/clouds/aws/discovery.ts';
import { createKubeSource as createEksSource } from '../../shared/clouds/aws/kube.ts';
import { createTagger as createEksTagger } from '../../shared/clouds/aws/tags.ts';
import { createAuditSource as createLogAnalyticsSource } from '../../shared/clouds/azure/audit.ts';
import { createBucketLocator as createAzureLocator } from '../../shared/clouds/azure/buckets.ts';
import { createBudgetProvider as createAzureBudgets } from '../../shared/clouds/azure/budgets.ts';
import { createDiscovery as createAzureDiscovery } from '../../shared/clouds/azure/discovery.ts';
import { createKubeSource as createAksSource } from '../../shared/clouds/azure/kube.ts';
import { createTagger as createAksTagger } from '../../shared/clouds/azure/tags.ts';
import { createAuditSource as createLoggingSource } from '../../shared/clouds/gcp/audit.ts';
import { createBucketLocator as createGcsLocator } from '../../shared/clouds/gcp/buckets.ts';
import { createBudgetProvider as createGcpBudgets } from '../../shared/clouds/gcp/budgets.ts';
import { createDiscovery as createGcpDiscovery } from '../../shared/clouds/gcp/discovery.ts';
import { createKubeSource as createGkeSource } from '../../shared/clouds/gcp/kube.ts';
import { createTagger as createGkeTagger } from '../../shared/clouds/gcp/tags.ts';
import { AwsConfig, AzureConfig, FleetConfig, GcpConfig, Jurisdiction } from '../../shared/config/schema.ts';
import { collect } from '../../shared/jobs/audit.ts';
import { createKubeApi } from '../../shared/kube/api.ts';
import type { Cluster } from '../../shared/model.ts';
import type { AuditLogSource, Log } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { freePort } from '../sandbox/net.ts';
import { localCert } from '../sandbox/tls.ts';

const ACCOUNT = '111122223333';
const GCP_PROJECTS = ['fleet-eu-prod', 'fleet-in-prod'];
const SUBSCRIPTIONS = ['aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002'];
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };
const byRegion = <T extends { region?: string }>(items: T[]) =>
  [...items].sort((a, b) => (a.region ?? '').localeCompare(b.region ?? ''));
const NOT_FOUND_PAGE =
  '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n';

/** An STS AssumeRole answer in the shape of the STS API reference example, with placeholder values. */
const ASSUME_ROLE_XML = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>EXAMPLEKEYID</AccessKeyId>
      <SecretAccessKey>example-secret</SecretAccessKey>
      <SessionToken>example-session-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::${ACCOUNT}:assumed-role/fleetward/fleetward-discovery</Arn>
      <AssumedRoleId>AROAEXAMPLEID:fleetward-discovery</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</AssumeRoleResponse>`;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/**
 * STS answers AssumeRole; EKS gets the HTML page: for every call (`mode: 'all'`), or only for
 * DescribeCluster after ListClusters named three clusters (`mode: 'describe'`).
 */
function proxyLike(mode: 'all' | 'describe', pageStatus = 404) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const text = await body(req);
    if (text.includes('Action=AssumeRole')) {
      res.writeHead(200, { 'content-type': 'text/xml' });
      return res.end(ASSUME_ROLE_XML);
    }
    if (mode === 'describe' && req.method === 'GET' && /\/clusters(\?|$)/.test(req.url ?? '')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ clusters: ['a', 'b', 'c'] }));
    }
    res.writeHead(pageStatus, { 'content-type': 'text/html' });
    res.end(NOT_FOUND_PAGE);
  };
}

const servers: (Server | Http2Server)[] = [];
let dir: string;
let tlsUrl: string;
let htmlUrl: string;
let describeHtmlUrl: string;
let trustedHtmlUrl: string;
let portalUrl: string;
let htmlOkUrl: string;
let trustedHtmlOkUrl: string;
let h2cHtmlUrl: string;
let caFile: string;
let ca: string;
let gcpKeyFile: string;
let armTokenFile: string;

async function listen(server: Server | Http2Server, scheme: 'http' | 'https'): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `${scheme}://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** A port that was just bound and released: nothing listens on it. */
async function closedPort(scheme: 'http' | 'https' = 'http'): Promise<string> {
  return `${scheme}://127.0.0.1:${await freePort()}`;
}

/** An HTML page for every request, with `status`. */
const htmlPage = (status: number) => (_req: unknown, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'text/html' });
  res.end(NOT_FOUND_PAGE);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  // HTTP/2 as well as HTTP/1.1, so a gRPC client gets as far as the certificate.
  const tls = createSecureServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')), allowHTTP1: true },
    (_req, res) => res.end('{}'),
  );
  tlsUrl = await listen(tls, 'https');
  htmlUrl = await listen(createServer(proxyLike('all')), 'http');
  describeHtmlUrl = await listen(createServer(proxyLike('describe')), 'http');
  // A captive portal: 200 and an HTML page for every request, AssumeRole included.
  portalUrl = await listen(createServer(htmlPage(200)), 'http');
  htmlOkUrl = await listen(createServer(proxyLike('all', 200)), 'http');
  // A trusted certificate (its CA given as caFile) in front of a web server's pages.
  const cert = localCert(join(dir, 'ca'));
  caFile = cert.caFile;
  ca = cert.ca;
  trustedHtmlUrl = await listen(
    createHttpsServer({ key: cert.key, cert: cert.cert }, htmlPage(404)),
    'https',
  );
  trustedHtmlOkUrl = await listen(
    createHttpsServer({ key: cert.key, cert: cert.cert }, htmlPage(200)),
    'https',
  );
  // HTTP/2 without TLS, as a plain-text gRPC client speaks it, answering a web server's page.
  h2cHtmlUrl = await listen(
    createH2cServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end(NOT_FOUND_PAGE);
    }),
    'http',
  );
  // A service account key whose token endpoint is a closed loopback port: no call may need a token.
  gcpKeyFile = join(dir, 'gcp-key.json');
  writeFileSync(
    gcpKeyFile,
    JSON.stringify({
      type: 'service_account',
      project_id: GCP_PROJECTS[0],
      private_key_id: 'example',
      private_key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      client_email: `fleetward@${GCP_PROJECTS[0]}.iam.gserviceaccount.com`,
      client_id: '000000000000000000000',
      token_uri: `${await closedPort()}/token`,
    }),
  );
  armTokenFile = join(dir, 'arm-token');
  writeFileSync(armTokenFile, 'sandbox-token\n');
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function aws(endpoint: string) {
  const config = AwsConfig.parse({
    endpoint,
    homeRegion: 'us-east-1',
    concurrency: 2,
    timeoutMs: 3_000,
    maxAttempts: 1,
    accounts: [
      {
        id: ACCOUNT,
        roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`,
        regions: ['eu-west-1', 'eu-central-1'],
      },
    ],
  });
  return createDiscovery(config, { logger: silent });
}

describe('unreachable aws endpoints', () => {
  it('a closed port: one failure for the account, "connection refused"', async () => {
    const endpoint = await closedPort();
    const outcome = await aws(endpoint).discover();
    expect(outcome.failures).toEqual([
      {
        cloud: 'aws',
        scope: ACCOUNT,
        kind: 'scope',
        error: {
          name: 'EndpointUnreachableError',
          message: `cannot reach sts at ${endpoint}: connection refused`,
        },
      },
    ]);
  });

  it('an untrusted TLS certificate: "tls certificate rejected"', async () => {
    const outcome = await aws(tlsUrl).discover();
    expect(outcome.failures.map((f) => f.error)).toEqual([
      {
        name: 'EndpointUnreachableError',
        message: `cannot reach sts at ${tlsUrl}: tls certificate rejected`,
      },
    ]);
  });

  it('an HTML page with 200 where STS answers XML: "cannot reach sts", not "answered without credentials"', async () => {
    const outcome = await aws(portalUrl).discover();
    expect(outcome.failures).toEqual([
      {
        cloud: 'aws',
        scope: ACCOUNT,
        kind: 'scope',
        error: {
          name: 'EndpointUnreachableError',
          message: `cannot reach sts at ${portalUrl}: answered an html page, not the api`,
          status: 200,
        },
      },
    ]);
  });

  it('an HTML page where EKS answers JSON: one failure per region, not a JSON parse error', async () => {
    const outcome = await aws(htmlUrl).discover();
    expect(byRegion(outcome.failures)).toEqual(
      ['eu-central-1', 'eu-west-1'].map((region) => ({
        cloud: 'aws',
        scope: ACCOUNT,
        region,
        kind: 'scope',
        error: {
          name: 'EndpointUnreachableError',
          message: `cannot reach eks at ${htmlUrl}: answered an html page, not the api`,
          status: 404,
        },
      })),
    );
    expect(JSON.stringify(outcome)).not.toContain('Unexpected token');
  });

  it('every DescribeCluster of a region answered by the page: once for the region, never once per cluster', async () => {
    const outcome = await aws(describeHtmlUrl).discover();
    expect(outcome.clusters).toEqual([]);
    expect(outcome.completedScopes).toEqual([]);
    expect(byRegion(outcome.failures)).toEqual(
      ['eu-central-1', 'eu-west-1'].map((region) => ({
        cloud: 'aws',
        scope: ACCOUNT,
        region,
        kind: 'scope',
        error: {
          name: 'EndpointUnreachableError',
          message: `cannot reach eks at ${describeHtmlUrl}: answered an html page, not the api`,
          status: 404,
        },
      })),
    );
  });
});

/** `host:port` of a URL, as GcpConfig.endpoint takes it. */
const hostPort = (url: string) => new URL(url).host;

function gcp(endpoint: string, overrides: Record<string, unknown> = {}) {
  const config = GcpConfig.parse({
    endpoint,
    insecure: true,
    concurrency: 2,
    timeoutMs: 3_000,
    maxAttempts: 1,
    projects: GCP_PROJECTS.map((id) => ({ id })),
    ...overrides,
  });
  return createGcpDiscovery(config, { logger: silent });
}

/** One failure per project, each `message` (and `status`, when given). */
const perProject = (message: string, status?: number) =>
  GCP_PROJECTS.map((scope) => ({
    cloud: 'gcp',
    scope,
    kind: 'scope',
    error: { name: 'EndpointUnreachableError', message, ...(status === undefined ? {} : { status }) },
  }));

describe('unreachable gcp endpoints', () => {
  it('a closed port: one failure per project, "connection refused"', async () => {
    const endpoint = hostPort(await closedPort());
    const outcome = await gcp(endpoint).discover();
    expect(outcome.failures).toEqual(perProject(`cannot reach gke at ${endpoint}: connection refused`));
  });

  it('an untrusted TLS certificate: "tls certificate rejected", and no token is asked for', async () => {
    const endpoint = hostPort(tlsUrl);
    const outcome = await gcp(endpoint, { insecure: false, credentialsFile: gcpKeyFile }).discover();
    expect(outcome.failures).toEqual(perProject(`cannot reach gke at ${endpoint}: tls certificate rejected`));
  });

  it('a web server answering an HTML page over HTTP/2: not the api', async () => {
    const endpoint = hostPort(h2cHtmlUrl);
    const outcome = await gcp(endpoint).discover();
    expect(outcome.failures).toEqual(
      perProject(`cannot reach gke at ${endpoint}: answered an html page, not the api`, 404),
    );
  });
});

function azure(endpoint: string, overrides: Record<string, unknown> = {}) {
  const config = AzureConfig.parse({
    endpoint,
    credential: { type: 'access-token', file: armTokenFile },
    concurrency: 2,
    timeoutMs: 3_000,
    maxAttempts: 1,
    subscriptions: SUBSCRIPTIONS.map((id) => ({ id })),
    ...overrides,
  });
  return createAzureDiscovery(config, { logger: silent });
}

/** One failure per subscription, each `message` (and `status`, when given). */
const perSubscription = (message: string, status?: number) =>
  SUBSCRIPTIONS.map((scope) => ({
    cloud: 'azure',
    scope,
    kind: 'scope',
    error: { name: 'EndpointUnreachableError', message, ...(status === undefined ? {} : { status }) },
  }));

describe('unreachable azure endpoints', () => {
  it('a closed port: one failure per subscription, "connection refused"', async () => {
    const endpoint = await closedPort('https');
    const outcome = await azure(endpoint).discover();
    expect(outcome.failures).toEqual(perSubscription(`cannot reach arm at ${endpoint}: connection refused`));
  });

  it('an untrusted TLS certificate: "tls certificate rejected"', async () => {
    const outcome = await azure(tlsUrl).discover();
    expect(outcome.failures).toEqual(
      perSubscription(`cannot reach arm at ${tlsUrl}: tls certificate rejected`),
    );
  });

  it.each([
    ['404', () => trustedHtmlUrl, 404],
    ['200', () => trustedHtmlOkUrl, 200],
  ])(
    'an HTML page with status %s where ARM answers JSON: not a JSON parse error',
    async (_status, url, status) => {
      const endpoint = url();
      const outcome = await azure(endpoint, { caFile }).discover();
      expect(outcome.failures).toEqual(
        perSubscription(`cannot reach arm at ${endpoint}: answered an html page, not the api`, status),
      );
      expect(JSON.stringify(outcome)).not.toMatch(/Unexpected token|not valid JSON/);
    },
  );
});

function kube(server: string, overrides: { ca?: string } = {}) {
  return createKubeApi({
    server,
    token: async () => 'sandbox-token',
    refresh: async () => 'sandbox-token',
    timeoutMs: 3_000,
    maxAttempts: 1,
    cluster: 'aws/111122223333/eu-west-1/payments',
    ...overrides,
  });
}

describe('unreachable kubernetes api', () => {
  it('a closed port: "cannot reach kubernetes api at <server>: connection refused"', async () => {
    const server = await closedPort('https');
    await expect(kube(server).list('v1', 'Namespace')).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach kubernetes api at ${server}: connection refused`,
    });
  });

  it('an untrusted TLS certificate: "tls certificate rejected"', async () => {
    await expect(kube(tlsUrl).list('v1', 'Namespace')).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach kubernetes api at ${tlsUrl}: tls certificate rejected`,
    });
  });

  it.each([
    ['200 to a list', () => trustedHtmlOkUrl, 200],
    ['404 to a read (not taken for an absent object)', () => trustedHtmlUrl, 404],
  ])('an HTML page with status %s: not the api', async (what, url, status) => {
    const server = url();
    const api = kube(server, { ca });
    const call = what.includes('list')
      ? api.list('v1', 'Namespace')
      : api.read({ apiVersion: 'v1', kind: 'Namespace', name: 'velero' });
    await expect(call).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach kubernetes api at ${server}: answered an html page, not the api`,
      status,
    });
  });
});

function clusterOn(cloud: Cluster['cloud'], scope: string, region: string): Cluster {
  return {
    id: `${cloud}/${scope}/${region}/payments`,
    cloud,
    scope,
    region,
    name: 'payments',
    kubernetesVersion: '1.31',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'RUNNING',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
    ...(cloud === 'azure' ? { resourceGroup: 'rg-fleet' } : {}),
  };
}

describe('unreachable storage apis of the bucket locators', () => {
  it('s3: an HTML page where GetBucketLocation answers XML is "cannot reach s3"', async () => {
    const config = AwsConfig.parse({
      endpoint: htmlUrl,
      homeRegion: 'us-east-1',
      maxAttempts: 1,
      timeoutMs: 3_000,
      accounts: [
        { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
      ],
    });
    const locate = createS3Locator(config, { logger: silent }).locate(
      { provider: 'aws', bucket: 'fw-backups-eu-central-1', config: { region: 'eu-central-1' } },
      clusterOn('aws', ACCOUNT, 'eu-central-1'),
    );
    await expect(locate).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach s3 at ${htmlUrl}: answered an html page, not the api`,
    });
  });

  it('s3: an HTML page with 200 is not a bucket in us-east-1 (no LocationConstraint)', async () => {
    const config = AwsConfig.parse({
      endpoint: htmlOkUrl,
      homeRegion: 'us-east-1',
      maxAttempts: 1,
      timeoutMs: 3_000,
      accounts: [
        { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
      ],
    });
    const locate = createS3Locator(config, { logger: silent }).locate(
      { provider: 'aws', bucket: 'fw-backups-eu-central-1', config: { region: 'eu-central-1' } },
      clusterOn('aws', ACCOUNT, 'eu-central-1'),
    );
    await expect(locate).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach s3 at ${htmlOkUrl}: answered an html page, not the api`,
      status: 200,
    });
  });

  it('cloud storage: a closed port is "cannot reach cloud storage … connection refused"', async () => {
    const endpoint = await closedPort();
    const config = GcpConfig.parse({
      storageEndpoint: endpoint,
      insecure: true,
      maxAttempts: 1,
      timeoutMs: 3_000,
      projects: GCP_PROJECTS.map((id) => ({ id })),
    });
    const locate = createGcsLocator(config, { logger: silent }).locate(
      { provider: 'gcp', bucket: 'fw-gke-backups-eu', config: {} },
      clusterOn('gcp', GCP_PROJECTS[0]!, 'europe-west1'),
    );
    await expect(locate).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach cloud storage at ${endpoint}: connection refused`,
    });
  });

  it('azure storage accounts: a closed ARM port is "cannot reach arm … connection refused"', async () => {
    const endpoint = await closedPort('https');
    const config = AzureConfig.parse({
      endpoint,
      credential: { type: 'access-token', file: armTokenFile },
      maxAttempts: 1,
      timeoutMs: 3_000,
      subscriptions: SUBSCRIPTIONS.map((id) => ({ id })),
    });
    const locate = createAzureLocator(config, { logger: silent }).locate(
      {
        provider: 'azure',
        bucket: 'velero',
        config: { storageAccount: 'fwbackupsweu', resourceGroup: 'rg-backups' },
      },
      clusterOn('azure', SUBSCRIPTIONS[0]!, 'westeurope'),
    );
    await expect(locate).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${endpoint}: connection refused`,
    });
  });
});

/** A fleet config with one cloud, as the kube credential sources read it. */
function fleetWith(clouds: Record<string, unknown>) {
  return FleetConfig.parse({
    version: 1,
    clouds,
    jurisdictions: {},
    kubeAccess: {
      gcp: { auth: 'token-file', file: armTokenFile },
      azure: { auth: 'cluster-user-credentials' },
    },
  });
}

describe('unreachable cloud apis of the kube credential sources', () => {
  const eksSource = (endpoint: string) =>
    createEksSource(
      fleetWith({
        aws: {
          endpoint,
          homeRegion: 'us-east-1',
          maxAttempts: 1,
          timeoutMs: 3_000,
          accounts: [
            { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
          ],
        },
      }),
      { logger: silent },
    );

  it('eks: an HTML page where DescribeCluster answers JSON names the configured endpoint', async () => {
    const endpoint = eksSource(htmlUrl).endpoint(clusterOn('aws', ACCOUNT, 'eu-central-1'), {});
    await expect(endpoint).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach eks at ${htmlUrl}: answered an html page, not the api`,
      status: 404,
    });
  });

  it('eks: an HTML page with 200 is not a cluster without an endpoint', async () => {
    const endpoint = eksSource(htmlOkUrl).endpoint(clusterOn('aws', ACCOUNT, 'eu-central-1'), {});
    await expect(endpoint).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach eks at ${htmlOkUrl}: answered an html page, not the api`,
      status: 200,
    });
  });

  const gkeSource = (endpoint: string, overrides: Record<string, unknown> = {}) =>
    createGkeSource(
      fleetWith({
        gcp: {
          endpoint,
          insecure: true,
          maxAttempts: 1,
          timeoutMs: 3_000,
          projects: GCP_PROJECTS.map((id) => ({ id })),
          ...overrides,
        },
      }),
      { logger: silent },
    );
  const gkeCluster = () => clusterOn('gcp', GCP_PROJECTS[0]!, 'europe-west1');

  it('gke: a closed port is "cannot reach gke … connection refused"', async () => {
    const endpoint = hostPort(await closedPort());
    await expect(gkeSource(endpoint).endpoint(gkeCluster(), {})).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach gke at ${endpoint}: connection refused`,
    });
  });

  it('gke: an untrusted TLS certificate is "tls certificate rejected"', async () => {
    const endpoint = hostPort(tlsUrl);
    const source = gkeSource(endpoint, { insecure: false, credentialsFile: gcpKeyFile });
    await expect(source.endpoint(gkeCluster(), {})).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach gke at ${endpoint}: tls certificate rejected`,
    });
  });

  it('gke: a web server answering an HTML page over HTTP/2 is not the api', async () => {
    const endpoint = hostPort(h2cHtmlUrl);
    await expect(gkeSource(endpoint).endpoint(gkeCluster(), {})).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach gke at ${endpoint}: answered an html page, not the api`,
      status: 404,
    });
  });

  const aksSource = (endpoint: string, overrides: Record<string, unknown> = {}) =>
    createAksSource(
      fleetWith({
        azure: {
          endpoint,
          credential: { type: 'access-token', file: armTokenFile },
          maxAttempts: 1,
          timeoutMs: 3_000,
          subscriptions: SUBSCRIPTIONS.map((id) => ({ id })),
          ...overrides,
        },
      }),
      { logger: silent },
    );
  const aksCluster = () => clusterOn('azure', SUBSCRIPTIONS[0]!, 'westeurope');

  it('aks: a closed ARM port is "cannot reach arm … connection refused"', async () => {
    const endpoint = await closedPort('https');
    await expect(aksSource(endpoint).endpoint(aksCluster(), {})).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${endpoint}: connection refused`,
    });
  });

  it('aks: an untrusted TLS certificate is "tls certificate rejected"', async () => {
    await expect(aksSource(tlsUrl).endpoint(aksCluster(), {})).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${tlsUrl}: tls certificate rejected`,
    });
  });

  it('aks: an HTML page where ARM answers JSON is not the api', async () => {
    const source = aksSource(trustedHtmlUrl, { caFile });
    await expect(source.endpoint(aksCluster(), {})).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${trustedHtmlUrl}: answered an html page, not the api`,
      status: 404,
    });
  });
});

/** Reads every page of a source for one cluster (the audit job reads them the same way). */
async function readAll(source: AuditLogSource, cluster: Cluster): Promise<number> {
  let events = 0;
  const window = { since: new Date('2026-12-01T00:00:00Z'), until: new Date('2026-12-01T01:00:00Z') };
  for await (const page of source.read(cluster, window)) events += page.length;
  return events;
}

describe('unreachable log apis of the audit sources', () => {
  const cloudWatchSource = (endpoint: string) =>
    createCloudWatchSource(
      AwsConfig.parse({
        endpoint,
        homeRegion: 'us-east-1',
        maxAttempts: 1,
        timeoutMs: 3_000,
        accounts: [
          { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
        ],
      }),
      { logger: silent },
    );

  it.each([
    ['200', () => htmlOkUrl, 200],
    ['404', () => htmlUrl, 404],
  ])(
    'cloudwatch logs: an HTML page with status %s names the configured endpoint',
    async (_s, url, status) => {
      const endpoint = url();
      const read = readAll(cloudWatchSource(endpoint), clusterOn('aws', ACCOUNT, 'eu-central-1'));
      await expect(read).rejects.toMatchObject({
        name: 'EndpointUnreachableError',
        message: `cannot reach cloudwatch logs at ${endpoint}: answered an html page, not the api`,
        status,
      });
    },
  );

  const loggingSource = (loggingEndpoint: string) =>
    createLoggingSource(
      GcpConfig.parse({
        loggingEndpoint,
        insecure: true,
        maxAttempts: 1,
        timeoutMs: 3_000,
        projects: GCP_PROJECTS.map((id) => ({ id })),
      }),
      { logger: silent },
    );
  const gkeCluster = () => clusterOn('gcp', GCP_PROJECTS[0]!, 'europe-west1');

  it('cloud logging: a closed port is "cannot reach cloud logging … connection refused"', async () => {
    const endpoint = await closedPort();
    await expect(readAll(loggingSource(endpoint), gkeCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach cloud logging at ${endpoint}: connection refused`,
    });
  });

  it('cloud logging: an untrusted TLS certificate is "tls certificate rejected"', async () => {
    await expect(readAll(loggingSource(tlsUrl), gkeCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach cloud logging at ${tlsUrl}: tls certificate rejected`,
    });
  });

  it.each([
    ['200', () => portalUrl, 200],
    ['404', () => htmlUrl, 404],
  ])('cloud logging: an HTML page with status %s is not a JSON parse error', async (_s, url, status) => {
    const endpoint = url();
    await expect(readAll(loggingSource(endpoint), gkeCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach cloud logging at ${endpoint}: answered an html page, not the api`,
      status,
    });
  });
});

/** A diagnostic setting that sends the kube-audit log to a workspace (shape of the ARM reference). */
const DIAGNOSTIC_SETTINGS = {
  value: [
    {
      name: 'fleetward-audit',
      properties: {
        workspaceId: `/subscriptions/${SUBSCRIPTIONS[0]}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/fw-logs`,
        workspaceCustomerId: '00000000-0000-4000-8000-0000000000aa',
        logs: [{ category: 'kube-audit', enabled: true }],
      },
    },
  ],
};

describe('unreachable arm and log analytics apis of the aks audit source', () => {
  let diagnosticsUrl: string;
  beforeAll(async () => {
    const cert = localCert(join(dir, 'ca'));
    diagnosticsUrl = await listen(
      createHttpsServer({ key: cert.key, cert: cert.cert }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(DIAGNOSTIC_SETTINGS));
      }),
      'https',
    );
  });

  const aksAudit = (endpoint: string, overrides: Record<string, unknown> = {}) =>
    createLogAnalyticsSource(
      AzureConfig.parse({
        endpoint,
        credential: { type: 'access-token', file: armTokenFile },
        maxAttempts: 1,
        timeoutMs: 3_000,
        subscriptions: SUBSCRIPTIONS.map((id) => ({ id })),
        ...overrides,
      }),
      { logger: silent },
    );
  const aksCluster = () => clusterOn('azure', SUBSCRIPTIONS[0]!, 'westeurope');

  it('arm: a closed port is "cannot reach arm … connection refused"', async () => {
    const endpoint = await closedPort('https');
    await expect(aksAudit(endpoint).enabled(aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${endpoint}: connection refused`,
    });
  });

  it('arm: an untrusted TLS certificate is "tls certificate rejected"', async () => {
    await expect(aksAudit(tlsUrl).enabled(aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${tlsUrl}: tls certificate rejected`,
    });
  });

  it.each([
    ['200', () => trustedHtmlOkUrl, 200],
    ['404', () => trustedHtmlUrl, 404],
  ])('arm: an HTML page with status %s is not the api', async (_s, url, status) => {
    const endpoint = url();
    await expect(aksAudit(endpoint, { caFile }).enabled(aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${endpoint}: answered an html page, not the api`,
      status,
    });
  });

  it('log analytics: a closed port is "cannot reach log analytics … connection refused"', async () => {
    const endpoint = await closedPort('https');
    const source = aksAudit(diagnosticsUrl, { caFile, logAnalyticsEndpoint: endpoint });
    await expect(readAll(source, aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach log analytics at ${endpoint}: connection refused`,
    });
  });

  it.each([
    ['200', () => trustedHtmlOkUrl, 200],
    ['404', () => trustedHtmlUrl, 404],
  ])('log analytics: an HTML page with status %s is not a JSON parse error', async (_s, url, status) => {
    const endpoint = url();
    const source = aksAudit(diagnosticsUrl, { caFile, logAnalyticsEndpoint: endpoint });
    await expect(readAll(source, aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach log analytics at ${endpoint}: answered an html page, not the api`,
      status,
    });
  });
});

describe('unreachable cloud apis of the taggers', () => {
  it.each([
    ['200', () => htmlOkUrl, 200],
    ['404', () => htmlUrl, 404],
  ])('eks: an HTML page with status %s names the configured endpoint', async (_s, url, status) => {
    const endpoint = url();
    const config = AwsConfig.parse({
      endpoint,
      homeRegion: 'us-east-1',
      maxAttempts: 1,
      timeoutMs: 3_000,
      accounts: [
        { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
      ],
    });
    const tagger = createEksTagger(config, { logger: silent });
    await expect(tagger.read(clusterOn('aws', ACCOUNT, 'eu-central-1'))).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach eks at ${endpoint}: answered an html page, not the api`,
      status,
    });
    await tagger.close();
  });

  const gkeTagger = (endpoint: string, overrides: Record<string, unknown> = {}) =>
    createGkeTagger(
      GcpConfig.parse({
        endpoint,
        insecure: true,
        maxAttempts: 1,
        timeoutMs: 3_000,
        projects: GCP_PROJECTS.map((id) => ({ id })),
        ...overrides,
      }),
      { logger: silent },
    );
  const gkeCluster = () => clusterOn('gcp', GCP_PROJECTS[0]!, 'europe-west1');

  it.each([
    ['a closed port', async () => hostPort(await closedPort()), {}, 'connection refused', undefined],
    [
      'an HTML page over HTTP/2',
      async () => hostPort(h2cHtmlUrl),
      {},
      'answered an html page, not the api',
      404,
    ],
  ])('gke: %s is "cannot reach gke"', async (_what, url, overrides, reason, status) => {
    const endpoint = await url();
    const tagger = gkeTagger(endpoint, overrides);
    await expect(tagger.read(gkeCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach gke at ${endpoint}: ${reason}`,
      ...(status === undefined ? {} : { status }),
    });
    await tagger.close();
  });

  const aksTagger = (endpoint: string) =>
    createAksTagger(
      AzureConfig.parse({
        endpoint,
        credential: { type: 'access-token', file: armTokenFile },
        maxAttempts: 1,
        timeoutMs: 3_000,
        subscriptions: SUBSCRIPTIONS.map((id) => ({ id })),
      }),
      { logger: silent },
    );
  const aksCluster = () => clusterOn('azure', SUBSCRIPTIONS[0]!, 'westeurope');

  it('aks: a closed ARM port is "cannot reach arm … connection refused"', async () => {
    const endpoint = await closedPort('https');
    await expect(aksTagger(endpoint).read(aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${endpoint}: connection refused`,
    });
  });

  it('aks: an untrusted TLS certificate is "tls certificate rejected"', async () => {
    await expect(aksTagger(tlsUrl).read(aksCluster())).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${tlsUrl}: tls certificate rejected`,
    });
  });
});

describe('unreachable budgets apis', () => {
  it.each([
    ['200', () => htmlOkUrl, 200],
    ['404', () => htmlUrl, 404],
  ])('aws budgets: an HTML page with status %s names the configured endpoint', async (_s, url, status) => {
    const endpoint = url();
    const config = AwsConfig.parse({
      endpoint,
      homeRegion: 'us-east-1',
      maxAttempts: 1,
      timeoutMs: 3_000,
      accounts: [
        { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
      ],
    });
    const provider = createAwsBudgets(config, { logger: silent });
    await expect(provider.list([ACCOUNT])).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach budgets at ${endpoint}: answered an html page, not the api`,
      status,
    });
    await provider.close();
  });

  const billingBudgets = (billingBudgetsEndpoint: string) =>
    createGcpBudgets(
      GcpConfig.parse({
        billingBudgetsEndpoint,
        insecure: true,
        maxAttempts: 1,
        timeoutMs: 3_000,
        projects: GCP_PROJECTS.map((id) => ({ id })),
      }),
      { logger: silent },
    );

  it.each([
    ['a closed port', async () => hostPort(await closedPort()), 'connection refused', undefined],
    ['an HTML page over HTTP/2', async () => hostPort(h2cHtmlUrl), 'answered an html page, not the api', 404],
  ])('gcp billing budgets: %s is "cannot reach billing budgets"', async (_what, url, reason, status) => {
    const endpoint = await url();
    const provider = billingBudgets(endpoint);
    await expect(provider.list(['000000-000000-000000'])).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach billing budgets at ${endpoint}: ${reason}`,
      ...(status === undefined ? {} : { status }),
    });
    await provider.close();
  });

  const consumptionBudgets = (endpoint: string) =>
    createAzureBudgets(
      AzureConfig.parse({
        endpoint,
        credential: { type: 'access-token', file: armTokenFile },
        maxAttempts: 1,
        timeoutMs: 3_000,
        subscriptions: SUBSCRIPTIONS.map((id) => ({ id })),
      }),
      { logger: silent },
    );

  it('azure budgets: a closed ARM port is "cannot reach arm … connection refused"', async () => {
    const endpoint = await closedPort('https');
    await expect(consumptionBudgets(endpoint).list([SUBSCRIPTIONS[0]!])).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${endpoint}: connection refused`,
    });
  });

  it('azure budgets: an untrusted TLS certificate is "tls certificate rejected"', async () => {
    await expect(consumptionBudgets(tlsUrl).list([SUBSCRIPTIONS[0]!])).rejects.toMatchObject({
      name: 'EndpointUnreachableError',
      message: `cannot reach arm at ${tlsUrl}: tls certificate rejected`,
    });
  });
});

describe('the audit job and an unreachable log api', () => {
  it('reports the cluster failed with the classified message, not a JSON parse error', async () => {
    const endpoint = portalUrl;
    const cluster = clusterOn('gcp', GCP_PROJECTS[0]!, 'europe-west1');
    const store = new SqliteStateStore({ path: ':memory:' });
    await store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
    const source = createLoggingSource(
      GcpConfig.parse({
        loggingEndpoint: endpoint,
        insecure: true,
        maxAttempts: 1,
        timeoutMs: 3_000,
        projects: GCP_PROJECTS.map((id) => ({ id })),
      }),
      { logger: silent },
    );
    const result = await collect({
      config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
      store,
      residency: new Residency({ eu: { preset: 'eu-gdpr' } }),
      logger: silent,
      clock: { now: () => new Date('2026-12-01T01:00:00Z') },
      sources: { for: () => source },
      archives: { for: async () => new LocalArchiveStore(join(dir, 'audit-archive')) },
      allowLocalEvidence: true,
    });
    await store.close();
    expect(result.outcomes).toEqual([
      expect.objectContaining({
        clusterId: cluster.id,
        status: 'failed',
        error: {
          name: 'EndpointUnreachableError',
          message: `cannot reach cloud logging at ${endpoint}: answered an html page, not the api`,
          status: 200,
        },
      }),
    ]);
  });
});
