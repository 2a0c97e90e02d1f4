/**
 * The seeded fleet generator: N clusters spread over EU, India, South Africa and US
 * regions on AWS, GCP and Azure (and kubeconfig contexts), with the cases every later
 * control needs — an encryption-off cluster, an audit-logging-off cluster, and a
 * cluster in a region no jurisdiction covers. Deterministic for a given seed.
 */

export type SeedCloud = 'aws' | 'gcp' | 'azure' | 'kubeconfig';

export interface SeedCluster {
  cloud: SeedCloud;
  /** Account id, project id, subscription id or kubeconfig alias. */
  scope: string;
  region: string;
  name: string;
  version: string;
  encrypted: boolean;
  auditLogging: boolean;
  privateEndpoint: boolean;
  tags: Record<string, string>;
  /** Azure resource group. */
  resourceGroup?: string;
}

export interface FleetMix {
  aws: number;
  gcp: number;
  azure: number;
  kubeconfig: number;
}

export const AWS_ACCOUNTS = ['111111111111', '222222222222', '333333333333'] as const;
export const GCP_PROJECTS = [
  'fw-prod-core',
  'fw-prod-data',
  'fw-staging',
  'fw-dev',
  'fw-shared-svc',
] as const;
export const AZURE_SUBSCRIPTIONS = [
  '00000000-0000-4000-8000-00000000a001',
  '00000000-0000-4000-8000-00000000a002',
  '00000000-0000-4000-8000-00000000a003',
] as const;
export const KUBECONFIG_ALIAS = 'sandbox';

/** Regions per cloud, in jurisdiction order EU, EU, ..., IN, IN, ZA, US, US (the last is never covered). */
export const SEED_REGIONS: Record<SeedCloud, readonly string[]> = {
  aws: [
    'eu-central-1',
    'eu-west-1',
    'ap-south-1',
    'af-south-1',
    'eu-west-3',
    'eu-north-1',
    'ap-south-2',
    'eu-south-1',
    'us-west-2',
    'us-east-1',
  ],
  gcp: [
    'europe-west1',
    'asia-south1',
    'africa-south1',
    'europe-west3',
    'europe-west4',
    'europe-north1',
    'asia-south2',
    'europe-west1-b',
    'us-central1',
  ],
  azure: [
    'westeurope',
    'centralindia',
    'southafricanorth',
    'germanywestcentral',
    'northeurope',
    'swedencentral',
    'southindia',
    'eastus',
  ],
  kubeconfig: ['eu-central-1', 'ap-south-1', 'af-south-1'],
};

const VERSIONS: Record<SeedCloud, readonly string[]> = {
  aws: ['1.31', '1.32', '1.33'],
  gcp: ['1.31.6-gke.1020000', '1.32.4-gke.1106006', '1.33.1-gke.1107000'],
  azure: ['1.31.7', '1.32.4', '1.33.1'],
  kubeconfig: ['1.32.3', '1.33.2'],
};

const TEAMS = ['payments', 'checkout', 'search', 'ledger', 'identity', 'analytics', 'ml', 'edge'];
const ENVS = ['prod', 'staging', 'dev'];

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The default split of N clusters: 60% AWS, 25% GCP, the rest Azure, plus two kubeconfig contexts when N >= 20. */
export function defaultMix(total: number): FleetMix {
  if (!Number.isInteger(total) || total < 4) throw new RangeError('--clusters must be an integer >= 4');
  const kubeconfig = total >= 20 ? 2 : 0;
  const rest = total - kubeconfig;
  const aws = Math.round(rest * 0.6);
  const gcp = Math.round(rest * 0.25);
  return { aws, gcp, azure: rest - aws - gcp, kubeconfig };
}

function scopesOf(cloud: SeedCloud): readonly string[] {
  switch (cloud) {
    case 'aws':
      return AWS_ACCOUNTS;
    case 'gcp':
      return GCP_PROJECTS;
    case 'azure':
      return AZURE_SUBSCRIPTIONS;
    default:
      return [KUBECONFIG_ALIAS];
  }
}

/**
 * Generates the fleet. Cluster i of a cloud goes to region i mod |regions| and scope
 * (i / |regions|) mod |scopes|, so every region of every scope fills evenly and the first
 * clusters of each cloud cover EU, India and South Africa before anything else.
 */
export function generateFleet(options: { mix: FleetMix; seed?: number }): SeedCluster[] {
  const random = rng(options.seed ?? 42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const out: SeedCluster[] = [];
  for (const cloud of ['aws', 'gcp', 'azure', 'kubeconfig'] as const) {
    const regions = SEED_REGIONS[cloud];
    const scopes = scopesOf(cloud);
    const count = options.mix[cloud];
    for (let i = 0; i < count; i++) {
      const region = regions[i % regions.length]!;
      const scope = scopes[Math.floor(i / regions.length) % scopes.length]!;
      const team = pick(TEAMS);
      const environment = pick(ENVS);
      const name =
        cloud === 'kubeconfig'
          ? `ctx-${region}-${i}`
          : `${team}-${environment}-${String(i).padStart(4, '0')}`;
      const tags: Record<string, string> = { team, environment };
      // Every third cluster misses `owner`: the tag policy (a later job) must report it, never invent it.
      if (i % 3 !== 0) tags.owner = `${team}@example.com`;
      out.push({
        cloud,
        scope,
        region,
        name,
        version: pick(VERSIONS[cloud]),
        encrypted: true,
        auditLogging: true,
        privateEndpoint: random() < 0.4,
        tags,
        ...(cloud === 'azure' ? { resourceGroup: `rg-${team}-${environment}` } : {}),
      });
    }
  }
  // The fixed cases: one cluster of each cloud present gets encryption off / audit logging off.
  const firstOf = (cloud: SeedCloud, skip = 0) => out.filter((c) => c.cloud === cloud)[skip];
  const encOff = firstOf('aws', 1) ?? firstOf('gcp', 1) ?? firstOf('azure', 1);
  if (encOff) encOff.encrypted = false;
  // Only EKS can have its control-plane audit log off: GKE always writes Admin Activity audit
  // logs (loggingService none does not stop them) and AKS's setting is not in the inventory.
  const auditOff = firstOf('aws', 2);
  if (auditOff) auditOff.auditLogging = false;
  ensureUncovered(out);
  return out;
}

/** Guarantees at least one cluster in a US region (no configured jurisdiction covers it). */
function ensureUncovered(fleet: SeedCluster[]): void {
  const us = (c: SeedCluster) => c.region.startsWith('us-') || c.region === 'eastus';
  if (fleet.some(us)) return;
  const last = [...fleet].reverse().find((c) => c.cloud !== 'kubeconfig');
  if (!last) return;
  last.region = last.cloud === 'aws' ? 'us-east-1' : last.cloud === 'gcp' ? 'us-central1' : 'eastus';
}
