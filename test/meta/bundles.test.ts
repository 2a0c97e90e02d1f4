/**
 * Lean bundles (issue 13). Each event endpoint, bundled with serverless.yml's own esbuild
 * options (split into chunks), carries no cloud SDK (only its state store, secrets and SQS
 * clients), not even in a chunk it never loads, and the cloud registry's adapters are reached
 * only through its lazy imports. And no function's bundle carries a cloud SDK its capabilities
 * (shared/deploy/functions.ts) never call: the capability -> SDK table is
 * shared/deploy/sdk-families.ts. Read from esbuild's metafile: an input counts when it put
 * bytes into the entry file or any chunk, i.e. into what the function's zip ships.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../shared/deploy/functions.ts';
import { SDK_FAMILIES } from '../../shared/deploy/sdk-families.ts';
import {
  allowedSdks,
  bundledInputs,
  CLOUD_SDKS,
  chainTo,
  EVENT_ENDPOINTS,
  entryOf,
  esbuildOptions,
  packageOf,
  readServerless,
  strayCloudSdks,
} from '../bench/coldstart.ts';

const ENDPOINT_LIMIT_BYTES = 3 * 1024 * 1024;
const ADAPTERS =
  /shared\/clouds\/(aws|gcp|azure|kubeconfig)\/(discovery|projects|budgets|tags|audit|storage)/;

/**
 * The inputs that put bytes into the bundle of `entry` (its entry file and every chunk it is
 * split into: what the zip ships), the bundle's size and the metafile.
 */
async function bundled(entry: string): Promise<{ inputs: string[]; bytes: number; metafile: Metafile }> {
  const { outExtension: _o, ...options } = esbuildOptions();
  const result = await build({
    ...options,
    entryPoints: [entry],
    outdir: join('.fleetward', 'meta-bundles'),
    write: false,
    metafile: true,
    sourcemap: false,
    logLevel: 'silent',
  });
  const metafile = result.metafile as Metafile;
  const outputs = Object.values(metafile.outputs);
  if (!outputs.some((o) => o.entryPoint)) throw new Error(`no output for ${entry}`);
  const inputs = new Set<string>();
  for (const output of outputs) {
    for (const [input, v] of Object.entries(output.inputs)) if (v.bytesInOutput > 0) inputs.add(input);
  }
  return { inputs: [...inputs], bytes: outputs.reduce((sum, o) => sum + o.bytes, 0), metafile };
}

/** The inputs reachable from `entry` through static imports only (a dynamic `import()` ends a path). */
function staticallyReachable(metafile: Metafile, entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const edge of metafile.inputs[file]?.imports ?? []) {
      if (edge.external || edge.kind === 'dynamic-import' || seen.has(edge.path)) continue;
      seen.add(edge.path);
      queue.push(edge.path);
    }
  }
  return seen;
}

const sdksOf = (inputs: readonly string[]) =>
  [...new Set(inputs.map(packageOf).filter((p): p is string => p !== undefined))]
    .filter((p) => CLOUD_SDKS.some((r) => r.test(p)))
    .sort();

const packagesOf = (inputs: readonly string[]) =>
  inputs.map(packageOf).filter((p): p is string => p !== undefined);

describe('event endpoint bundles', () => {
  const functions = readServerless().functions;

  it.each(EVENT_ENDPOINTS)('%s bundles no cloud SDK and no cloud adapter, under 3 MB', async (name) => {
    // Act
    const { inputs, bytes } = await bundled(entryOf(functions[name]!.handler));

    // Assess
    expect(sdksOf(inputs)).toEqual([]);
    expect(inputs.filter((i) => ADAPTERS.test(i))).toEqual([]);
    expect(bytes).toBeLessThan(ENDPOINT_LIMIT_BYTES);
  });

  it('the rule can fail: the worker that rediscovers bundles the cloud SDKs and adapters', async () => {
    // Act
    const { inputs } = await bundled(entryOf(functions['rediscover-clusters-worker']!.handler));

    // Assess
    expect(sdksOf(inputs)).toEqual(
      expect.arrayContaining([
        '@aws-sdk/client-eks',
        '@google-cloud/container',
        '@azure/arm-containerservice',
      ]),
    );
    expect(inputs.some((i) => ADAPTERS.test(i))).toBe(true);
  });
});

describe('functions that call the clouds through the registry', () => {
  const functions = readServerless().functions;

  it.each(['rediscover-clusters-worker', 'discover-clusters'])(
    '%s reaches the cloud adapters only through the registry (lazily, per configured cloud)',
    async (name) => {
      // Prepare
      const entry = entryOf(functions[name]!.handler);
      const { metafile } = await bundled(entry);

      // Act
      const reachable = [...staticallyReachable(metafile, entry)];

      // Assess: no static chain from the entry to an adapter, so a config naming one cloud
      // evaluates only that cloud's adapter and SDK (esbuild defers dynamically imported modules).
      expect(reachable.filter((i) => ADAPTERS.test(i))).toEqual([]);
      expect(reachable.filter((i) => /node_modules\/@(google-cloud|azure)\//.test(i))).toEqual([]);
      expect(reachable).toContain('shared/clouds/registry.ts');
    },
  );
});

describe('every function bundle carries only the cloud SDKs its capabilities call', () => {
  const functions = readServerless().functions;
  const names = Object.keys(functions).sort();
  // Every job's wiring at once: what a handler would ship if it imported the CLI's barrel.
  const BARREL = 'shared/runtime/deps.ts';
  let bundles: Awaited<ReturnType<typeof bundledInputs>>;

  beforeAll(async () => {
    // One build of every function (and the barrel): each entry's closure is its own bundle.
    bundles = await bundledInputs([...names.map((n) => entryOf(functions[n]!.handler)), BARREL]);
  }, 180_000);

  it.each(names)('%s carries no cloud SDK its capabilities never call', (name) => {
    // Prepare
    const entry = entryOf(functions[name]!.handler);
    const allowed = allowedSdks(name);

    // Act
    const stray = strayCloudSdks(packagesOf(bundles.inputs.get(entry)!), allowed ?? new Set());

    // Assess: name the chain that brings each stray SDK in, so a failure says what to split.
    expect(allowed, `${name} has no row in shared/deploy/functions.ts`).toBeDefined();
    const why = stray.map((pkg) =>
      chainTo(bundles.metafile, entry, (i) => packageOf(i) === pkg)?.join(' -> '),
    );
    expect(why).toEqual([]);
  });

  it('no handler reaches the barrel of every job wiring', () => {
    // Act
    const reaching = names.filter((n) =>
      chainTo(bundles.metafile, entryOf(functions[n]!.handler), (i) => i === BARREL),
    );

    // Assess
    expect(reaching).toEqual([]);
  });

  it('the rule bites: every job wiring at once carries SDKs the budgets function never calls', () => {
    // Prepare: the capabilities of reconcile-budgets, the bundle of the barrel.
    const allowed = allowedSdks('reconcile-budgets')!;

    // Act
    const stray = strayCloudSdks(packagesOf(bundles.inputs.get(BARREL)!), allowed);

    // Assess: kube access, audit log sources, evidence stores; and the budgets SDKs are allowed.
    expect(stray).toEqual(
      expect.arrayContaining([
        '@kubernetes/client-node',
        '@aws-sdk/client-cloudwatch-logs',
        '@azure/monitor-query-logs',
        '@aws-sdk/client-s3',
      ]),
    );
    expect(stray).not.toContain('@aws-sdk/client-budgets');
    expect(stray).not.toContain('@google-cloud/billing-budgets');
  });

  it('the table names only packages the project depends on, for every capability a function has', () => {
    // Prepare
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
      dependencies: Record<string, string>;
    };

    // Act
    const named = Object.values(SDK_FAMILIES).flat();
    const unrowed = FUNCTIONS.flatMap((f) => f.capabilities).filter((c) => !(c in SDK_FAMILIES));

    // Assess
    expect(named.filter((p) => !(p in manifest.dependencies))).toEqual([]);
    expect(unrowed).toEqual([]);
  });
});
