/**
 * `npm run bench -- coldstart [--packaged] [--samples N]`: what a cold start costs per
 * function. Each handler is bundled with serverless.yml's own `custom.esbuild` options
 * (`--packaged`: the zips `serverless package` makes, cached per source state), then per
 * function: zip and unzipped size, the cloud SDKs inside (from the source map), and the
 * median wall time of a fresh `node` importing the bundle by file URL beside the median of
 * `node -e 0` measured in the same run. Then the time from process start to the first cloud
 * connection of `discover-clusters`, for a config naming one cloud and one naming all three.
 *
 * Targets (issue 13): each event endpoint under 3 MB and importing under 5x `node -e 0`; no
 * event endpoint carries a cloud SDK beyond its own SQS/DynamoDB/SSM/Secrets Manager clients;
 * no function carries a cloud SDK its capabilities never call (shared/deploy/sdk-families.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { parse } from 'yaml';
import { FUNCTIONS } from '../../shared/deploy/functions.ts';
import { isCloudSdk, sdkFamiliesOf } from '../../shared/deploy/sdk-families.ts';
import { median } from './measure.ts';

/** The event endpoints and the packages an endpoint may bundle (its state, secrets and queue). */
export const EVENT_ENDPOINTS = ['gcp-cluster-events', 'azure-cluster-events', 'on-cluster-event'] as const;

/** Packages whose presence in a bundle means it carries that cloud's SDK (beyond the deployment's own AWS services). */
export const CLOUD_SDKS: readonly RegExp[] = [
  /^@google-cloud\//,
  /^google-auth-library$/,
  /^google-gax$/,
  /^@grpc\//,
  /^@azure\//,
  /^@aws-sdk\/client-(eks|sts|budgets|cloudwatch-logs|s3|ec2)$/,
  /^@aws-sdk\/credential-providers$/,
  /^@kubernetes\//,
];

const MAX_ENDPOINT_BYTES = 3 * 1024 * 1024;
const MAX_IMPORT_RATIO = 5;

interface ServerlessYml {
  custom: { esbuild: Record<string, unknown> };
  functions: Record<string, { handler: string }>;
}

/** serverless.yml with CloudFormation short-form tags read as plain values. */
export function readServerless(root = '.'): ServerlessYml {
  const customTags = ['Ref', 'GetAtt', 'Sub', 'Join', 'If', 'Select', 'Split', 'Equals', 'Not'].map(
    (tag) => ({
      tag: `!${tag}`,
      resolve: (value: unknown) => ({ [tag]: value }),
    }),
  );
  return parse(readFileSync(join(root, 'serverless.yml'), 'utf8'), { customTags }) as ServerlessYml;
}

/** The esbuild options serverless-esbuild derives from `custom.esbuild` (its own keys dropped). */
export function esbuildOptions(root = '.'): BuildOptions {
  const {
    exclude: _e,
    outputFileExtension,
    concurrency: _c,
    packager: _p,
    ...rest
  } = readServerless(root).custom.esbuild as Record<string, unknown> & { outputFileExtension?: string };
  return {
    ...(rest as BuildOptions),
    ...(outputFileExtension && outputFileExtension !== '.js'
      ? { outExtension: { '.js': outputFileExtension } }
      : {}),
  };
}

/** The entry file of a function (`functions/x/handler.handler` -> `functions/x/handler.ts`). */
export function entryOf(handler: string): string {
  return `${handler.slice(0, handler.lastIndexOf('.'))}.ts`;
}

/** The npm package of a bundled input path, or undefined for the project's own files. */
export function packageOf(input: string): string | undefined {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** The cloud SDK packages among `packages`. */
export function cloudSdks(packages: Iterable<string>): string[] {
  return [...new Set(packages)].filter((p) => CLOUD_SDKS.some((r) => r.test(p))).sort();
}

/** The package.json of `pkg` as resolved from `from` (a package directory or the root), like Node does. */
function packageJson(pkg: string, from: string): { dir: string; json: Record<string, unknown> } | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', pkg, 'package.json');
    if (existsSync(candidate)) {
      return { dir: dirname(candidate), json: JSON.parse(readFileSync(candidate, 'utf8')) };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * `packages` and every package they depend on (dependencies, optional and peer ones), read from
 * the installed package.json files: what a bundle carries when it carries those packages.
 */
export function dependencyClosure(packages: Iterable<string>, root = '.'): Set<string> {
  const seen = new Set<string>();
  const queue: { pkg: string; from: string }[] = [...packages].map((pkg) => ({ pkg, from: root }));
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    if (seen.has(next.pkg)) continue;
    seen.add(next.pkg);
    const found = packageJson(next.pkg, next.from);
    if (!found) continue;
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const dep of Object.keys((found.json[field] as Record<string, string> | undefined) ?? {})) {
        if (!seen.has(dep)) queue.push({ pkg: dep, from: found.dir });
      }
    }
  }
  return seen;
}

/**
 * The cloud SDK packages a function may carry: the SDKs its capabilities call
 * (shared/deploy/sdk-families.ts) and what they depend on. Undefined for a function the
 * deployment table does not know.
 */
export function allowedSdks(name: string, root = '.'): Set<string> | undefined {
  const spec = FUNCTIONS.find((f) => f.name === name);
  if (!spec) return undefined;
  return new Set([...dependencyClosure(sdkFamiliesOf(spec), root)].filter(isCloudSdk));
}

/** The cloud SDKs among `packages` that `allowed` does not name, sorted. */
export function strayCloudSdks(packages: Iterable<string>, allowed: ReadonlySet<string>): string[] {
  return [...new Set(packages)].filter((p) => isCloudSdk(p) && !allowed.has(p)).sort();
}

/**
 * The inputs each entry's bundle carries, from ONE esbuild build of all `entries` with the
 * serverless.yml options (metafile, nothing written): every input reachable from the entry
 * through static and dynamic imports that puts bytes into an output. esbuild emits a chunk for
 * every `import()` in a module it bundles, called or not, and serverless-esbuild zips every
 * output of a function's build, so this is what the function's zip ships.
 */
export async function bundledInputs(
  entries: readonly string[],
  root = '.',
): Promise<{ inputs: Map<string, string[]>; metafile: Metafile }> {
  const { outExtension: _o, ...options } = esbuildOptions(root);
  const result = await build({
    ...options,
    absWorkingDir: resolve(root),
    entryPoints: [...entries],
    outdir: join('.fleetward', 'meta-bundles'),
    write: false,
    metafile: true,
    sourcemap: false,
    logLevel: 'silent',
  });
  const metafile = result.metafile as Metafile;
  const emitted = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, v] of Object.entries(output.inputs)) if (v.bytesInOutput > 0) emitted.add(input);
  }
  const inputs = new Map<string, string[]>();
  for (const entry of entries) {
    if (!metafile.inputs[entry]) throw new Error(`no input ${entry} in the build`);
    const seen = new Set<string>([entry]);
    const queue = [entry];
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      for (const edge of metafile.inputs[file]?.imports ?? []) {
        if (edge.external || seen.has(edge.path)) continue;
        seen.add(edge.path);
        queue.push(edge.path);
      }
    }
    inputs.set(
      entry,
      [...seen].filter((i) => emitted.has(i)),
    );
  }
  return { inputs, metafile };
}

/** One import chain (static or dynamic) from `entry` to an input `match` accepts, or undefined if none. */
export function chainTo(
  metafile: Metafile,
  entry: string,
  match: (input: string) => boolean,
): string[] | undefined {
  const from = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (match(file)) {
      const chain: string[] = [];
      for (let f: string | undefined = file; f !== undefined; f = from.get(f)) chain.unshift(f);
      return chain;
    }
    for (const edge of metafile.inputs[file]?.imports ?? []) {
      if (edge.external || from.has(edge.path)) continue;
      from.set(edge.path, file);
      queue.push(edge.path);
    }
  }
  return undefined;
}

interface Built {
  name: string;
  /** The directory holding the function's files as deployed (the .mjs at `entry`). */
  dir: string;
  entry: string;
  zipBytes: number;
  unzippedBytes: number;
  /** The JavaScript Lambda loads (.mjs files; the source map is not loaded). */
  codeBytes: number;
  packages: string[];
}

function dirBytes(dir: string, suffix = ''): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p, suffix);
    else if (e.name.endsWith(suffix)) total += statSync(p).size;
  }
  return total;
}

/** Packages named by the bundle's source maps. */
function packagesOfMaps(dir: string): string[] {
  const out = new Set<string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.map')) {
        for (const s of (JSON.parse(readFileSync(p, 'utf8')) as { sources: string[] }).sources) {
          const pkg = packageOf(s);
          if (pkg) out.add(pkg);
        }
      }
    }
  };
  walk(dir);
  return [...out].sort();
}

/** Builds every function with esbuild and the serverless.yml options, zipping each output as the deployment would. */
async function buildAll(root: string, work: string, only: readonly string[]): Promise<Built[]> {
  const sls = readServerless(root);
  const options = esbuildOptions(root);
  const out: Built[] = [];
  for (const [name, fn] of Object.entries(sls.functions)) {
    if (only.length > 0 && !only.includes(name)) continue;
    const entry = entryOf(fn.handler);
    const dir = join(work, name);
    await build({
      ...options,
      entryPoints: [join(root, entry)],
      outdir: join(dir, dirname(entry)),
      logLevel: 'error',
    });
    const zip = join(work, `${name}.zip`);
    execFileSync('zip', ['-qr', zip, '.'], { cwd: dir });
    out.push({
      name,
      dir,
      entry: entry.replace(/\.ts$/, '.mjs'),
      zipBytes: statSync(zip).size,
      unzippedBytes: dirBytes(dir),
      codeBytes: dirBytes(dir, '.mjs'),
      packages: packagesOfMaps(dir),
    });
  }
  return out;
}

/**
 * Unzips the packaged functions of `serverless package` (cached per source state): the home
 * package and the regional one (India), since each role deploys only its own functions.
 */
async function unzipPackaged(root: string, work: string): Promise<Built[]> {
  const { HOME, REGIONAL_IN, packageService } = await import('../sandbox/package.ts');
  // One after the other: both runs build in the service's one `.esbuild/` directory, and two at
  // once overwrite each other's outputs (zips holding no handler, packaged without an error).
  const packages: Awaited<ReturnType<typeof packageService>>[] = [];
  for (const params of [HOME, REGIONAL_IN]) packages.push(await packageService(params, { root }));
  for (const packaged of packages) {
    if (packaged.status !== 0) throw new Error(`serverless package failed:\n${packaged.output.slice(-2000)}`);
  }
  const sls = readServerless(root);
  return Object.entries(sls.functions).flatMap(([name, fn]) => {
    const zip = packages.map((p) => join(p.dir, `${name}.zip`)).find((z) => existsSync(z));
    if (!zip) return [];
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    execFileSync('unzip', ['-q', zip, '-d', dir]);
    return [
      {
        name,
        dir,
        entry: entryOf(fn.handler).replace(/\.ts$/, '.mjs'),
        zipBytes: statSync(zip).size,
        unzippedBytes: dirBytes(dir),
        codeBytes: dirBytes(dir, '.mjs'),
        packages: packagesOfMaps(dir),
      },
    ];
  });
}

const NODE = resolve('node_modules', '.bin', 'node');

/** Wall time (ms) of one fresh `node` running `args`. */
function timeNode(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done, fail) => {
    const start = process.hrtime.bigint();
    const child = spawn(NODE, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', fail);
    child.once('exit', (code) => {
      if (code !== 0) fail(new Error(`node ${args.join(' ')} exited ${code}: ${err.slice(-500)}`));
      else done(Number(process.hrtime.bigint() - start) / 1e6);
    });
  });
}

/** A Lambda-like environment: no metadata servers, fake credentials, Powertools quiet. */
function lambdaEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    AWS_REGION: 'eu-central-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_EC2_METADATA_DISABLED: 'true',
    METADATA_SERVER_DETECTION: 'none',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...extra,
  };
}

/** A one-cloud or three-cloud config whose every endpoint is `port` on loopback. */
function benchConfig(port: number, clouds: 'aws' | 'all', dir: string): string {
  const endpoint = `http://127.0.0.1:${port}`;
  const aws = {
    endpoint,
    homeRegion: 'eu-central-1',
    accounts: [
      {
        id: '111111111111',
        roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
        regions: ['eu-central-1'],
      },
    ],
  };
  const config = {
    version: 1,
    clouds: {
      aws,
      ...(clouds === 'all'
        ? {
            gcp: { endpoint: `127.0.0.1:${port}`, insecure: true, projects: [{ id: 'bench-project' }] },
            azure: {
              endpoint: `https://127.0.0.1:${port}`,
              credential: { type: 'access-token', env: 'BENCH_AZURE_TOKEN' },
              subscriptions: [{ id: '00000000-0000-0000-0000-00000000a001' }],
            },
          }
        : {}),
    },
    jurisdictions: { eu: { preset: 'eu-gdpr' } },
    state: { type: 'sqlite', path: join(dir, 'state.db') },
  };
  const path = join(dir, `fleet-${clouds}.yaml`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/**
 * Milliseconds from spawning `node` to the first TCP connection the discover-clusters bundle
 * opens towards a cloud endpoint (every configured endpoint is one loopback listener).
 */
async function firstCloudCall(fn: Built, clouds: 'aws' | 'all', dir: string): Promise<number> {
  let first: bigint | undefined;
  const server = createServer((socket) => {
    first ??= process.hrtime.bigint();
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const config = benchConfig(port, clouds, dir);
  const script = `const m = await import(${JSON.stringify(pathToFileURL(join(fn.dir, fn.entry)).href)});
await m.handler({}, { functionName: 'discover-clusters', awsRequestId: 'bench', getRemainingTimeInMillis: () => 60000 }).catch(() => {});
process.exit(0);`;
  const start = process.hrtime.bigint();
  const child = spawn(NODE, ['--input-type=module', '-e', script], {
    stdio: 'ignore',
    cwd: dir,
    env: lambdaEnv({ FLEETWARD_CONFIG: config, BENCH_AZURE_TOKEN: 'bench' }),
  });
  const deadline = Date.now() + 30_000;
  while (first === undefined && Date.now() < deadline && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill();
  await new Promise<void>((r) => server.close(() => r()));
  if (first === undefined) return Number.NaN;
  return Number(first - start) / 1e6;
}

const short = (pkg: string) => pkg.replace(/^@(aws-sdk|google-cloud|azure)\//, '$1/');
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

/** Runs the bench; 0 when every target is met. */
export async function benchColdstart(args: string[]): Promise<number> {
  const packaged = args.includes('--packaged');
  const samplesAt = args.indexOf('--samples');
  const samples = samplesAt >= 0 ? Number(args[samplesAt + 1]) : 7;
  const only = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--samples');
  const root = resolve('.');
  const work = mkdtempSync(join(tmpdir(), 'fleetward-coldstart-'));
  try {
    const t0 = Date.now();
    let fns = packaged ? await unzipPackaged(root, work) : await buildAll(root, work, only);
    if (only.length > 0) fns = fns.filter((f) => only.includes(f.name));
    console.log(
      `coldstart: ${fns.length} functions ${packaged ? 'from `serverless package`' : 'bundled with serverless.yml custom.esbuild'} in ${((Date.now() - t0) / 1000).toFixed(1)} s; N=${samples}, ${NODE.replace(`${root}/`, '')} ${execFileSync(NODE, ['--version']).toString().trim()}`,
    );
    const env = lambdaEnv({ FLEETWARD_CONFIG: join(root, 'fleet.example.yaml') });
    const baseline: number[] = [];
    const imports = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    // Interleaved, so a burst of load on the machine falls on every function alike.
    for (let i = 0; i < samples; i++) {
      baseline.push(await timeNode(['-e', '0'], env));
      for (const fn of fns) {
        const url = pathToFileURL(join(fn.dir, fn.entry)).href;
        imports
          .get(fn.name)!
          .push(await timeNode(['--input-type=module', '-e', `await import(${JSON.stringify(url)})`], env));
      }
    }
    const base = median(baseline);
    let failed = 0;
    let strays = 0;
    const rows = fns.map((fn) => {
      const ms = median(imports.get(fn.name)!);
      const ratio = ms / base;
      const sdks = cloudSdks(fn.packages);
      const endpoint = (EVENT_ENDPOINTS as readonly string[]).includes(fn.name);
      const misses = endpoint
        ? [
            fn.codeBytes > MAX_ENDPOINT_BYTES ? 'size' : '',
            ratio > MAX_IMPORT_RATIO ? 'import' : '',
            sdks.length > 0 ? 'sdk' : '',
          ].filter(Boolean)
        : [];
      if (misses.length > 0) failed++;
      const allowed = allowedSdks(fn.name, root);
      const stray = allowed ? strayCloudSdks(fn.packages, allowed) : [];
      if (stray.length > 0) strays++;
      return [
        fn.name,
        mb(fn.zipBytes),
        mb(fn.codeBytes),
        mb(fn.unzippedBytes),
        `${ms.toFixed(0)} ms`,
        `${ratio.toFixed(1)}x`,
        endpoint ? (misses.length === 0 ? 'PASS' : `FAIL (${misses.join(', ')})`) : '-',
        allowed ? (stray.length === 0 ? 'PASS' : `FAIL (${stray.length})`) : '?',
        stray.map(short).join(' ') || '-',
        sdks.map(short).join(' ') || 'none',
      ];
    });
    const head = [
      'function',
      'zip',
      'bundle .mjs',
      'unzipped (+map)',
      'import',
      'vs node -e 0',
      'target',
      'no SDK it never calls',
      'SDKs it never calls',
      'cloud SDKs inside',
    ];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    console.log(`node -e 0: median ${base.toFixed(0)} ms`);
    console.log(line(head));
    for (const r of rows) console.log(line(r));

    const discover = fns.find((f) => f.name === 'discover-clusters');
    if (discover) {
      const one: number[] = [];
      const all: number[] = [];
      for (let i = 0; i < samples; i++) {
        one.push(await firstCloudCall(discover, 'aws', work));
        all.push(await firstCloudCall(discover, 'all', work));
      }
      console.log(
        `discover-clusters, process start -> first cloud connection: one cloud (aws) ${median(one).toFixed(0)} ms, all three clouds ${median(all).toFixed(0)} ms (node -e 0: ${base.toFixed(0)} ms)`,
      );
    }
    console.log(
      failed === 0
        ? 'coldstart: every event endpoint meets its targets'
        : `coldstart: ${failed} event endpoints miss a target (< ${mb(MAX_ENDPOINT_BYTES)}, < ${MAX_IMPORT_RATIO}x node -e 0, no cloud SDK)`,
    );
    console.log(
      strays === 0
        ? 'coldstart: no function carries a cloud SDK its capabilities never call'
        : `coldstart: ${strays} functions carry cloud SDKs their capabilities never call (shared/deploy/sdk-families.ts)`,
    );
    return failed === 0 && strays === 0 ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
