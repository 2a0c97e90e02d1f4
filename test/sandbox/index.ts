/**
 * The local clouds, started together: moto (or, for benchmarks, the in-memory AWS
 * responder) behind the AWS fault/latency proxy, the GKE
 * gRPC fake, the HTTPS ARM fake, one fake Kubernetes API per kubeconfig context, a Slack
 * webhook sink (when asked), and a generated fleet.yaml that points Fleetward at all of them. Used by `npm run sandbox`,
 * `npm run demo`, the benchmarks and the integration tests.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { stringify } from 'yaml';
import { createLimiter } from '../../shared/runtime/concurrency.ts';
import { type ArmFake, type ArmManagedCluster, aksCluster, startArmFake } from './arm-fake.ts';
import { type AuditFleet, startAuditFleet } from './audit-fleet.ts';
import { installBudgetsOverrides } from './aws-budgets.ts';
import { type AwsMemoryThread, startAwsMemoryThread } from './aws-memory-thread.ts';
import { startAwsProxy } from './aws-proxy.ts';
import { DEFAULT_BILLING_ACCOUNT, startBillingBudgetsFake } from './billing-budgets-fake.ts';
import type { BucketSeed } from './bucket-writers.ts';
import { FaultInjector, RequestLog } from './faults.ts';
import {
  AWS_ACCOUNTS,
  AZURE_SUBSCRIPTIONS,
  defaultMix,
  type FleetMix,
  GCP_PROJECTS,
  generateFleet,
  KUBECONFIG_ALIAS,
  type SeedCluster,
} from './fleet.ts';
import { type GkeClusterInput, gkeCluster, startGkeFake } from './gke-fake.ts';
import { type KubeFake, type KubeFleetFake, startKubeFake } from './kube-fake.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { type MotoServer, startMoto } from './moto.ts';
import { type SlackSink, startSlackSink } from './slack-sink.ts';
import { startVeleroFleet, type VeleroFleet } from './velero-fleet.ts';

export interface SandboxOptions {
  /** Total clusters (split by `defaultMix`) unless `mix` is given. */
  clusters?: number;
  mix?: FleetMix;
  seed?: number;
  /** Injected latency per API call, on every cloud. */
  latencyMs?: number;
  /** Working directory for the generated config, kubeconfig, certificates and state. */
  dir?: string;
  /** Concurrency written into the generated config per cloud. */
  concurrency?: Partial<Record<'aws' | 'gcp' | 'azure', number>>;
  /**
   * Fake Kubernetes APIs with Velero for the cloud clusters, object storage (moto S3, the
   * GCS fake, Azurite) for their backups, and kube access in the config (default true).
   */
  velero?: boolean;
  /** Velero simulator timings (ms). */
  veleroDelays?: { backupMs?: number; restoreMs?: number; readyMs?: number };
  /** Every cloud cluster gets a healthy Velero (no deliberate gaps): for benchmarks. */
  veleroEverywhere?: boolean;
  /**
   * What answers AWS behind the proxy: `moto` (default; every service) or `memory`, the
   * in-memory responder of `aws-memory.ts` (STS, EC2 regions and EKS only, far below
   * moto's service time: for benchmarks of discovery; needs `velero: false`). With
   * `memory`, responder and proxy run on their own thread (`aws-memory-thread.ts`) with
   * their own latency and request log.
   */
  aws?: 'moto' | 'memory';
  /**
   * Start the Slack webhook sink and write `slack.webhooks` and `slack.routes` into the config
   * (default false: the config then has no Slack, and no job run against it sends anything).
   * The webhook URLs are read from the environment variables of `slack.env`.
   */
  slack?: boolean;
}

/** The sandbox's Slack: the sink, and the environment a Fleetward run needs to reach it. */
export interface SandboxSlack {
  sink: SlackSink;
  /** The config's webhook names, each with the environment variable its URL is read from. */
  webhooks: Record<string, string>;
  /**
   * Webhook URL per environment variable the config names (`FLEETWARD_SANDBOX_SLACK_*`):
   * the config says `from: env`, so a run reaches the sink only with these set.
   */
  env: Record<string, string>;
}

/** The sandbox's Slack webhooks (name -> the variable holding its URL) and routes, as a team might route. */
const SANDBOX_SLACK = {
  webhooks: {
    platform: 'FLEETWARD_SANDBOX_SLACK_PLATFORM',
    'eu-dpo': 'FLEETWARD_SANDBOX_SLACK_EU_DPO',
  },
  routes: [
    { webhook: 'platform', minSeverity: 'medium' },
    { webhook: 'eu-dpo', jurisdiction: 'eu', minSeverity: 'high' },
  ],
} as const;

/** What every sandbox has, whichever emulator answers AWS. */
export interface SandboxBase {
  /** Path of the generated fleet.yaml. */
  configPath: string;
  dir: string;
  fleet: SeedCluster[];
  /** Every request every fake answered. */
  log: RequestLog;
  /** Shared fault plan: add rules to make any cloud misbehave. */
  faults: FaultInjector;
  /** The fake Kubernetes APIs of the cloud clusters (when `velero` is on). */
  kube?: KubeFleetFake;
  /** Cluster id -> fleet-fake key, for clusters with a fake Kubernetes API. */
  kubeKeys: Map<string, string>;
  /** The bucket every cluster's Velero writes to (cluster id -> bucket seed). */
  veleroBuckets: Map<string, BucketSeed>;
  /** The Slack sink and its webhooks' environment (when `slack` is on). */
  slack?: SandboxSlack;
  /** The audit log services and evidence stores (with `velero` and moto). */
  audit?: AuditFleet;
  /** The Azure Resource Manager fake (AKS, storage accounts and containers, diagnostic settings, budgets). */
  arm: ArmFake;
  stop(): Promise<void>;
}

export interface Sandbox extends SandboxBase {
  moto: MotoServer;
}

/**
 * A sandbox whose AWS is the in-memory responder (`aws: 'memory'`). `log` and `faults` cover
 * GCP and Azure only: AWS latency and requests go through `awsMemory`.
 */
export interface MemorySandbox extends SandboxBase {
  awsMemory: AwsMemoryThread;
}

/** Fake, obviously-not-real credentials for the emulators. */
const SANDBOX_TOKEN = 'sandbox-token';
const SANDBOX_PROFILE = 'fleetward-sandbox';

const EKS_ROLE = (account: string) => `arn:aws:iam::${account}:role/fleetward-eks-cluster`;

async function seedAws(motoUrl: string, fleet: SeedCluster[]): Promise<void> {
  const aws = fleet.filter((c) => c.cloud === 'aws');
  if (aws.length === 0) return;
  const base = {
    endpoint: motoUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  const sts = new STSClient(base);
  const creds = new Map<string, { accessKeyId: string; secretAccessKey: string; sessionToken: string }>();
  for (const account of new Set(aws.map((c) => c.scope))) {
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${account}:role/fleetward-reader`,
        RoleSessionName: 'sandbox-seed',
      }),
    );
    const c = out.Credentials!;
    creds.set(account, {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    });
  }
  const clients = new Map<string, EKSClient>();
  const client = (account: string, region: string) => {
    const key = `${account}/${region}`;
    let eks = clients.get(key);
    if (!eks) {
      eks = new EKSClient({ endpoint: motoUrl, region, credentials: creds.get(account)! });
      clients.set(key, eks);
    }
    return eks;
  };
  const limit = createLimiter(8);
  await Promise.all(
    aws.map((c) =>
      limit(() =>
        client(c.scope, c.region).send(
          new CreateClusterCommand({
            name: c.name,
            version: c.version,
            roleArn: EKS_ROLE(c.scope),
            resourcesVpcConfig: {
              subnetIds: ['subnet-0a1b2c3d', 'subnet-4e5f6a7b'],
              endpointPublicAccess: !c.privateEndpoint,
              endpointPrivateAccess: c.privateEndpoint,
            },
            logging: {
              clusterLogging: [
                { types: c.auditLogging ? ['api', 'audit', 'authenticator'] : ['api'], enabled: true },
                ...(c.auditLogging ? [] : [{ types: ['audit' as const], enabled: false }]),
              ],
            },
            ...(c.encrypted
              ? {
                  encryptionConfig: [
                    {
                      resources: ['secrets'],
                      provider: {
                        keyArn: `arn:aws:kms:${c.region}:${c.scope}:key/0000aaaa-bb11-cc22-dd33-${c.scope}`,
                      },
                    },
                  ],
                }
              : {}),
            tags: c.tags,
          }),
        ),
      ),
    ),
  );
  for (const eks of clients.values()) eks.destroy();
  sts.destroy();
}

function gcpInputs(fleet: SeedCluster[]) {
  const byProject = new Map<string, GkeClusterInput[]>();
  for (const c of fleet.filter((x) => x.cloud === 'gcp')) {
    const region = c.region.replace(/-[a-z]$/, '');
    const list = byProject.get(c.scope) ?? [];
    list.push(
      gkeCluster({
        name: c.name,
        location: c.region,
        currentMasterVersion: c.version,
        resourceLabels: c.tags,
        ...(c.encrypted && {
          databaseEncryption: {
            state: 'ENCRYPTED',
            currentState: 'CURRENT_STATE_ENCRYPTED',
            keyName: `projects/${c.scope}/locations/${region}/keyRings/fleetward/cryptoKeys/etcd`,
          },
        }),
        ...(c.privateEndpoint && {
          privateClusterConfig: {
            enablePrivateNodes: true,
            enablePrivateEndpoint: true,
            privateEndpoint: '10.0.0.2',
          },
          controlPlaneEndpointsConfig: {
            ipEndpointsConfig: { enabled: true, enablePublicEndpoint: false, privateEndpoint: '10.0.0.2' },
          },
        }),
      }),
    );
    byProject.set(c.scope, list);
  }
  return byProject;
}

function azureInputs(fleet: SeedCluster[]) {
  const bySub = new Map<string, ArmManagedCluster[]>();
  for (const c of fleet.filter((x) => x.cloud === 'azure')) {
    const list = bySub.get(c.scope) ?? [];
    list.push(
      aksCluster({
        subscriptionId: c.scope,
        resourceGroup: c.resourceGroup ?? 'rg-sandbox',
        name: c.name,
        location: c.region,
        kubernetesVersion: c.version,
        tags: c.tags,
        privateCluster: c.privateEndpoint,
        ...(c.encrypted && {
          kmsKeyId: `https://fw-kv-${c.region}.vault.azure.net/keys/etcd/0123456789abcdef`,
        }),
      }),
    );
    bySub.set(c.scope, list);
  }
  return bySub;
}

/**
 * One budget per AWS account and Azure subscription in use and one for the GCP billing
 * account; the last AWS account in use is left uncovered on purpose (a coverage finding).
 */
function sandboxBudgets(fleet: SeedCluster[]) {
  const thresholds = [
    { percent: 80, spend: 'actual' },
    { percent: 100, spend: 'forecast' },
  ];
  const used = (cloud: SeedCluster['cloud']) =>
    [...new Set(fleet.filter((c) => c.cloud === cloud).map((c) => c.scope))].sort();
  const accounts = used('aws');
  return [
    ...accounts.slice(0, Math.max(1, accounts.length - 1)).map((account) => ({
      name: `aws-${account}`,
      cloud: 'aws',
      scope: { account, tagFilter: { key: 'environment', values: ['prod'] } },
      amount: 5000,
      currency: 'USD',
      thresholds,
      notify: { emails: ['finops@example.com'] },
    })),
    ...(used('gcp').length > 0
      ? [
          {
            name: 'gcp-all-projects',
            cloud: 'gcp',
            scope: { billingAccount: DEFAULT_BILLING_ACCOUNT, projects: used('gcp') },
            amount: 4000,
            currency: 'EUR',
            thresholds,
            notify: { pubsubTopic: `projects/${used('gcp')[0]}/topics/budgets` },
          },
        ]
      : []),
    ...used('azure').map((subscription, i) => ({
      name: `azure-${i + 1}`,
      cloud: 'azure',
      scope: { subscription },
      amount: 2500,
      currency: 'EUR',
      thresholds,
      notify: { emails: ['finops@example.com'] },
    })),
  ];
}

/** Starts every local cloud, seeds the fleet and writes the config. */
export function startSandbox(options?: SandboxOptions & { aws?: 'moto' }): Promise<Sandbox>;
export function startSandbox(options: SandboxOptions & { aws: 'memory' }): Promise<MemorySandbox>;
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox | MemorySandbox> {
  const memory = options.aws === 'memory';
  if (memory && (options.velero ?? true)) {
    throw new Error(
      'the in-memory AWS responder answers discovery only: start the sandbox with velero: false',
    );
  }
  const dir = resolve(options.dir ?? join('.fleetward', 'sandbox'));
  rmSync(join(dir, 'state.db'), { force: true });
  rmSync(join(dir, 'state.db-wal'), { force: true });
  rmSync(join(dir, 'state.db-shm'), { force: true });
  mkdirSync(dir, { recursive: true });
  const mix = options.mix ?? defaultMix(options.clusters ?? 24);
  const fleet = generateFleet({ mix, seed: options.seed ?? 42 });
  const log = new RequestLog();
  const faults = new FaultInjector({ latencyMs: 0 });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    stops.length = 0;
  };
  try {
    let aws: { moto: MotoServer } | { awsMemory: AwsMemoryThread };
    /** Where seeding writes, and where the config points Fleetward (through the latency proxy). */
    let awsUrl: string;
    let awsEndpoint: string;
    if (memory) {
      const awsMemory = await startAwsMemoryThread();
      stops.push(() => awsMemory.stop());
      aws = { awsMemory };
      awsUrl = awsMemory.upstreamUrl;
      awsEndpoint = awsMemory.url;
    } else {
      const moto = await startMoto();
      stops.push(() => moto.stop());
      aws = { moto };
      const proxy = await startAwsProxy({ upstream: moto.url, faults, log });
      stops.push(() => proxy.stop());
      // Budgets: moto answers AWS Budgets (the proxy adds what moto lacks).
      const removeBudgetOverrides = installBudgetsOverrides(proxy, moto.url);
      stops.push(async () => removeBudgetOverrides());
      awsUrl = moto.url;
      awsEndpoint = proxy.url;
    }
    let slack: SandboxSlack | undefined;
    if (options.slack) {
      const sink = await startSlackSink({ faults, log });
      stops.push(() => sink.stop());
      const env = Object.fromEntries(
        Object.entries(SANDBOX_SLACK.webhooks).map(([name, variable]) => [variable, sink.url(name)]),
      );
      slack = { sink, webhooks: { ...SANDBOX_SLACK.webhooks }, env };
    }
    const gke = await startGkeFake({ faults, log });
    stops.push(() => gke.stop());
    // Budgets: a gRPC fake answers GCP's Billing Budget API (a EUR billing account), the ARM
    // fake answers Azure's.
    const billing = await startBillingBudgetsFake({
      faults,
      log,
      billingAccounts: { [DEFAULT_BILLING_ACCOUNT]: { currencyCode: 'EUR' } },
    });
    stops.push(() => billing.stop());
    const certDir = join(dir, 'tls');
    const arm = await startArmFake({ faults, log, certDir });
    stops.push(() => arm.stop());
    for (const sub of AZURE_SUBSCRIPTIONS) arm.setBillingCurrency(sub, 'EUR');

    await seedAws(awsUrl, fleet);
    // Every configured project and subscription exists, with or without clusters.
    const gkeClusters = gcpInputs(fleet);
    for (const project of GCP_PROJECTS) gke.setClusters(project, gkeClusters.get(project) ?? []);
    const aksClusters = azureInputs(fleet);
    for (const sub of AZURE_SUBSCRIPTIONS) arm.setClusters(sub, aksClusters.get(sub) ?? []);

    let velero: VeleroFleet | undefined;
    if ('moto' in aws && (options.velero ?? true)) {
      const moto = aws.moto;
      velero = await startVeleroFleet({
        fleet,
        dir,
        certDir,
        motoUrl: moto.url,
        arm,
        faults,
        log,
        ...(options.veleroDelays ? { delays: options.veleroDelays } : {}),
        ...(options.veleroEverywhere ? { noGaps: true } : {}),
      });
      const v = velero;
      stops.push(() => v.stop());
    }
    // Audit logs and write-once evidence storage (uses the GCS fake and Azurite started above).
    let audit: AuditFleet | undefined;
    if (velero && 'moto' in aws) {
      const moto = aws.moto;
      audit = await startAuditFleet({
        fleet,
        dir,
        certDir,
        motoUrl: moto.url,
        arm,
        gcs: velero.gcs,
        azurite: velero.azurite,
        faults,
        log,
      });
      const a = audit;
      stops.push(() => a.stop());
      // Log Router sinks (GKE export mode) deliver into the same GCS fake as the evidence buckets.
      a.logging.routeSinksTo(velero.gcs);
    }

    const kubeContexts = fleet.filter((c) => c.cloud === 'kubeconfig');
    const kubeFakes: KubeFake[] = [];
    for (const c of kubeContexts) {
      const fake = await startKubeFake({
        name: c.name,
        gitVersion: `v${c.version}`,
        token: SANDBOX_TOKEN,
        faults,
        log,
        certDir,
      });
      stops.push(() => fake.stop());
      kubeFakes.push(fake);
    }
    const kubeconfigPath = join(dir, 'kubeconfig.yaml');
    if (kubeContexts.length > 0) {
      writeKubeconfig(
        kubeconfigPath,
        kubeContexts.map((c, i) => ({
          context: c.name,
          cluster: c.name,
          server: kubeFakes[i]!.url,
          caFile: kubeFakes[i]!.caFile,
          token: SANDBOX_TOKEN,
        })),
      );
    }

    const credentialsFile = join(dir, 'aws-credentials');
    writeFileSync(
      credentialsFile,
      `[${SANDBOX_PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n`,
      {
        mode: 0o600,
      },
    );
    const azureTokenFile = join(dir, 'azure-token');
    writeFileSync(azureTokenFile, SANDBOX_TOKEN, { mode: 0o600 });

    const used = (cloud: SeedCluster['cloud']) => fleet.some((c) => c.cloud === cloud);
    // Accounts, projects and subscriptions with no clusters are still configured: discovery must cope with empty scopes.
    const awsRegions = [...new Set(fleet.filter((c) => c.cloud === 'aws').map((c) => c.region))];
    const config = {
      version: 1,
      stage: 'sandbox',
      clouds: {
        ...(used('aws') && {
          aws: {
            endpoint: awsEndpoint,
            credentials: { profile: SANDBOX_PROFILE, file: credentialsFile },
            homeRegion: 'us-east-1',
            concurrency: options.concurrency?.aws ?? 16,
            accounts: AWS_ACCOUNTS.map((id) => ({
              id,
              roleArn: `arn:aws:iam::${id}:role/fleetward-reader`,
              regions: awsRegions,
            })),
          },
        }),
        ...(used('gcp') && {
          gcp: {
            endpoint: gke.endpoint,
            billingBudgetsEndpoint: billing.endpoint,
            insecure: true,
            ...(velero && { storageEndpoint: velero.gcs.endpoint }),
            ...audit?.clouds.gcp,
            concurrency: options.concurrency?.gcp ?? 8,
            projects: GCP_PROJECTS.map((id) => ({ id })),
          },
        }),
        ...(used('azure') && {
          azure: {
            endpoint: arm.endpoint,
            caFile: arm.caFile,
            credential: { type: 'access-token', file: azureTokenFile },
            ...audit?.clouds.azure,
            concurrency: options.concurrency?.azure ?? 8,
            subscriptions: AZURE_SUBSCRIPTIONS.map((id) => ({ id })),
          },
        }),
        ...(kubeContexts.length > 0 && {
          kubeconfig: [
            {
              alias: KUBECONFIG_ALIAS,
              file: kubeconfigPath,
              contexts: kubeContexts.map((c) => ({ name: c.name, cloud: 'aws', region: c.region })),
            },
          ],
        }),
      },
      jurisdictions: {
        eu: { preset: 'eu-gdpr', ...(audit && { evidence: audit.evidence.eu }) },
        in: { preset: 'in-dpdp', ...(audit && { evidence: audit.evidence.in }) },
        za: { preset: 'za-popia', ...(audit && { evidence: audit.evidence.za }) },
        ke: {
          preset: 'ke-dpa',
          ...(audit && { evidence: audit.evidence.ke }),
          exceptions: [
            {
              allowCountries: ['ZA'],
              reason: 'sandbox: no in-country region for Kenya',
              expires: '2099-12-31',
            },
          ],
        },
      },
      policies: {
        // Room for a first apply over the whole sandbox fleet (one change per cluster).
        maxChanges: 500,
        tags: {
          required: {
            owner: { pattern: '[a-z0-9._-]+@example\\.com' },
            environment: { values: ['prod', 'staging', 'dev'] },
          },
        },
      },
      budgets: sandboxBudgets(fleet),
      ...(velero && { kubeAccess: velero.kubeAccess }),
      ...(slack && {
        slack: {
          webhooks: Object.fromEntries(
            Object.entries(SANDBOX_SLACK.webhooks).map(([name, variable]) => [
              name,
              { from: 'env', name: variable },
            ]),
          ),
          routes: SANDBOX_SLACK.routes,
        },
      }),
      state: { type: 'sqlite', path: join(dir, 'state.db') },
    };
    const configPath = join(dir, 'fleet.yaml');
    writeFileSync(
      configPath,
      `# Generated by the Fleetward sandbox; points at local emulators only.\n${stringify(config)}`,
    );
    faults.latencyMs = options.latencyMs ?? 0;
    if ('awsMemory' in aws) await aws.awsMemory.setLatency(faults.latencyMs);
    return {
      configPath,
      dir,
      fleet,
      log,
      faults,
      ...aws,
      ...(velero && { kube: velero.kube }),
      kubeKeys: velero?.keys ?? new Map(),
      veleroBuckets: velero?.buckets ?? new Map(),
      ...(slack && { slack }),
      ...(audit && { audit }),
      arm,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
