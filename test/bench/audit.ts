/**
 * `npm run bench -- audit`: `--mb` (default 1024) MB of synthetic audit.k8s.io/v1 Event
 * lines through the whole `collect` pipeline (read, identify, dedupe, gzip, hash, chain) into
 * a local write-once evidence store, for one cluster.
 *
 * Three sides over the same file, `--repeat` (default 3) interleaved rounds, min and median
 * MB/s of each:
 * - floor: the honest lower bound, in one Node process: the bytes through Node's zlib with the
 *   chunks' settings (`CHUNK_GZIP`, level 6) and SHA-256 of the gzipped output, streaming
 *   (1 MiB reads, `WRITE_BATCH` writes, a new gzip member every `DEFAULT_MAX_BYTES` like the
 *   chunks), with the pipeline's V8 flags;
 * - `gzip -c | sha256sum`, two native processes (slower than Node's zlib on this box);
 * - the pipeline.
 * Targets: pipeline median >= 0.8x the floor's median, peak RSS < 256 MB.
 *
 * `--parse identity` (default) identifies each line as the AWS source does (`eventIdentity`);
 * `--parse json` as it did before (`JSON.parse` of every line); `--parse scan` by plain string
 * search (not exact: a bound, not a mode of the product).
 *
 * The floor and the pipeline run in child Node processes of their own (so is the event
 * generator), started with the V8 flags a 256 MB Lambda function would use:
 * {@link PIPELINE_FLAGS}, printed with the results; `--node-flags '<flags>'` runs them with others.
 * The RSS target is measured in the pipeline's process (sampled every 50 ms, and its maxRSS).
 * Profile with `--node-flags '<flags> --cpu-prof --cpu-prof-dir=DIR'`.
 *
 * What the profiles said (256 MB, 302,178 events, `node --cpu-prof` on the pipeline child,
 * 2-core box; main-thread self time):
 * - before (JSON.parse, 256 KiB gzip batches, chunk sealed before the next was started):
 *   pipeline 5.96 s wall, 7.7 s CPU (floor: 2.26 s, 2.6 s CPU). Main thread: `JSON.parse` of
 *   each line (in the source) 26%, GC 17% (mostly the parse's objects), idle 18% (waiting at
 *   every chunk boundary for gzip to finish and for the archive write; the compressor idled
 *   too), dedup keys' SHA-256 6%, seen-set Map and Date.parse ~10%. zlib ran on the threadpool
 *   but starved: gzip starts its next queued write only from a callback on the main thread, so
 *   while the main thread parsed a page the second core waited after each 256 KiB batch.
 * - changes: a chunk is sealed without waiting for its compression and the next one fills
 *   meanwhile (handed on at the next pause, at the latest before the next page is read);
 *   `collect` writes a chunk while the next is built (`readAhead`; a failed write aborts the
 *   read in flight); 512 KiB batches (a batch outlasts a page's parsing); each timestamp
 *   parsed once; the source identifies lines with `eventIdentity` (the same answer as
 *   `JSON.parse`, checked against it, no object tree: ~0.6 s less CPU per 256 MB, mostly GC).
 * - after (256 MB, load ~1.5): main thread idle 16% (about half of it waiting for gzip: the
 *   compressor is fed), identity scan 24% (a char-by-char scan of ~890 chars costs about what
 *   `JSON.parse` does on this box, ~3-5 us a line; it saves the parse's garbage), GC 15%,
 *   dedup-key SHA-256 6.5%, seen set and times ~9%, the bench source's own read/split ~8%.
 * - 1 GB, 3 interleaved rounds each, 2-3 runs per side (load 1.3-5 from other work on the
 *   box): before 39.6-49.0 MB/s median, 24.8-25.3 s CPU, 0.36-0.46x the floor, 0.49-0.62x
 *   gzip | sha256sum, 197-205 MB peak RSS; after 49.5-72.0 MB/s, 19.3-24.4 s CPU, 0.45-0.59x
 *   the floor, 0.63-0.84x gzip | sha256sum, 197-233 MB peak RSS. With another process holding
 *   a core, wall time follows CPU time, and the pipeline's CPU is ~2.2x the floor's (per event:
 *   identity scan, dedup-key hash, seen set, GC), so the ratio stays near 1/2. Even on an idle
 *   box the main thread is busy
 *   ~3.4 s per 256 MB against the floor's ~2.2 s: at most ~0.65x the floor however well the
 *   compressor overlaps. 0.8x needs per-event work (identity scan, dedup-key hashes) off the
 *   main thread (a worker), not more tuning of this loop.
 */

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip, type ZlibOptions } from 'node:zlib';
import { CHUNK_GZIP, DEFAULT_MAX_BYTES, GZIP_QUEUE, WRITE_BATCH } from '../../shared/audit/chunks.ts';
import { eventIdentity } from '../../shared/audit/identity.ts';
import { LocalArchiveStore } from '../../shared/audit/local-store.ts';
import { Jurisdiction } from '../../shared/config/schema.ts';
import { type AuditJobDeps, collect } from '../../shared/jobs/audit.ts';
import type { Cluster } from '../../shared/model.ts';
import type { AuditEvent, AuditLogSource } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { median } from './measure.ts';

const TARGET_RATIO = 0.8;
const TARGET_RSS_MB = 256;
const MB = 1024 * 1024;
const PAGE_EVENTS = 1_000;
/** The events span this much time, inside the job's default first-run lookback (1 day). */
const SPAN_MS = 20 * 60 * 60_000;
/** Average line length of `auditEventLine` (bytes with the newline), to space timestamps. */
const APPROX_LINE_BYTES = 890;
const END = Date.parse('2026-11-21T10:00:00Z');

const cluster: Cluster = {
  id: 'aws/111111111111/eu-central-1/bench-audit',
  cloud: 'aws',
  scope: '111111111111',
  region: 'eu-central-1',
  name: 'bench-audit',
  kubernetesVersion: '1.32',
  endpoint: null,
  endpointAccess: 'private',
  secretsEncryptionKey: null,
  auditLogging: true,
  tags: {},
  status: 'running',
  providerStatus: 'ACTIVE',
  createdAt: null,
  country: 'DE',
  jurisdiction: 'eu',
};

/** Deterministic PRNG (mulberry32), so runs with the same `--mb` write the same shapes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Streams `bytes` of event lines (unique auditIDs, increasing timestamps) to `path`. */
async function generate(path: string, bytes: number): Promise<{ bytes: number; events: number }> {
  const { auditEventLine } = await import('../sandbox/aws-audit.ts');
  const out = createWriteStream(path);
  const random = prng(42);
  const spacing = SPAN_MS / Math.max(1, Math.ceil(bytes / APPROX_LINE_BYTES));
  const start = END - SPAN_MS;
  let written = 0;
  let events = 0;
  while (written < bytes) {
    const lines: string[] = [];
    for (let i = 0; i < 1_000 && written < bytes; i++) {
      const line = `${auditEventLine(Math.round(start + events * spacing), random, randomUUID())}\n`;
      written += Buffer.byteLength(line);
      events++;
      lines.push(line);
    }
    if (!out.write(lines.join(''))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { bytes: written, events };
}

/**
 * Runs {@link generate} in a child process (this module run directly), so the memory the
 * generator touched (and the AWS SDK the line builder loads) is not in the measured process.
 */
async function generateApart(path: string, bytes: number): Promise<{ bytes: number; events: number }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'generate', path, String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`the event generator exited with ${code}`);
  return JSON.parse(out) as { bytes: number; events: number };
}

const ID_FIELD = '"auditID":"';
const TS_FIELD = '"stageTimestamp":"';
const STAGE_FIELD = '"stage":"';

/** The string value after `field` in `line`, or `null` (no escapes: IDs and timestamps have none). */
function scanField(line: string, field: string): string | null {
  const i = line.indexOf(field);
  if (i < 0) return null;
  const from = i + field.length;
  const to = line.indexOf('"', from);
  return to < 0 ? null : line.slice(from, to);
}

/** What the AWS source did with a message before `eventIdentity`: `JSON.parse`, then auditID and stage. */
function parseJson(line: string): AuditEvent {
  try {
    const e = JSON.parse(line) as { auditID?: unknown; stage?: unknown; stageTimestamp?: unknown };
    const auditID = typeof e.auditID === 'string' && e.auditID !== '' ? e.auditID : null;
    return {
      auditID,
      stage: auditID !== null && typeof e.stage === 'string' && e.stage !== '' ? e.stage : null,
      timestamp: typeof e.stageTimestamp === 'string' ? e.stageTimestamp : '',
      raw: line,
    };
  } catch {
    return { auditID: null, timestamp: '', raw: line };
  }
}

/** What the AWS source does (`eventIdentityOf`): {@link eventIdentity}, the same answer as `JSON.parse` without its objects. */
function parseIdentity(line: string): AuditEvent {
  const { auditID, stage } = eventIdentity(line);
  return { auditID, stage, timestamp: scanField(line, TS_FIELD) ?? '', raw: line };
}

function parseScan(line: string): AuditEvent {
  const auditID = scanField(line, ID_FIELD);
  return {
    auditID,
    stage: auditID === null ? null : scanField(line, STAGE_FIELD),
    timestamp: scanField(line, TS_FIELD) ?? '',
    raw: line,
  };
}

/** An audit log source over an NDJSON file: split by hand from 1 MiB reads, pages of {@link PAGE_EVENTS}. */
class FileSource implements AuditLogSource {
  readonly #path: string;
  readonly #parse: (line: string) => AuditEvent;
  constructor(path: string, parse: (line: string) => AuditEvent) {
    this.#path = path;
    this.#parse = parse;
  }
  async enabled(): Promise<{ enabled: boolean }> {
    return { enabled: true };
  }
  async *read(): AsyncIterable<AuditEvent[]> {
    let page: AuditEvent[] = [];
    // The bytes of a line split across two reads; only they are copied, never a whole read.
    let rest: Buffer | undefined;
    for await (const read of createReadStream(this.#path, { highWaterMark: MB })) {
      const buf = read as Buffer;
      let from = 0;
      for (let nl = buf.indexOf(0x0a, from); nl >= 0; nl = buf.indexOf(0x0a, from)) {
        const text = rest
          ? Buffer.concat([rest, buf.subarray(from, nl)]).toString('utf8')
          : buf.toString('utf8', from, nl);
        rest = undefined;
        if (text.length > 0) page.push(this.#parse(text));
        from = nl + 1;
        if (page.length >= PAGE_EVENTS) {
          yield page;
          page = [];
        }
      }
      if (from < buf.length) rest = rest ? Buffer.concat([rest, buf.subarray(from)]) : buf.subarray(from);
    }
    if (rest && rest.length > 0) page.push(this.#parse(rest.toString('utf8')));
    if (page.length > 0) yield page;
  }
}

/** Samples RSS every 50 ms. */
function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

/** One timed run of a side. */
interface SideRun {
  ms: number;
  /** CPU time of the process (all threads) while the side ran; `undefined` for the shell pipe. */
  cpuMs?: number | undefined;
}

/** `gzip -c | sha256sum` over the file, timed from the spawn to the digest. */
async function baseline(path: string): Promise<SideRun & { digest: string }> {
  const started = performance.now();
  const child = spawn('sh', ['-c', 'gzip -c < "$1" | sha256sum', 'sh', path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`gzip -c | sha256sum exited with ${code}`);
  return { ms, digest: out.trim().split(/\s+/)[0] ?? '' };
}

interface FloorRun extends SideRun {
  cpuMs: number;
  /** Gzip members written (one per {@link DEFAULT_MAX_BYTES} of input, like the chunks). */
  members: number;
  /** Compressed bytes. */
  gzipped: number;
}

/**
 * The honest floor: the file's bytes through Node's zlib with the chunks' settings
 * ({@link CHUNK_GZIP}) and SHA-256 of the gzipped output, streaming in one process: reads of
 * 1 MiB, writes of {@link WRITE_BATCH}, up to {@link GZIP_QUEUE} bytes queued, a new gzip
 * member and hash every {@link DEFAULT_MAX_BYTES} (where the pipeline seals a chunk). No
 * parsing, no dedup, no archive: only what every byte must go through.
 */
async function floor(path: string): Promise<FloorRun> {
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  let members = 0;
  let gzipped = 0;
  const open = () => {
    // zlib streams pass stream options on to Transform; ZlibOptions just does not declare them.
    const gzip = createGzip({ ...CHUNK_GZIP, writableHighWaterMark: GZIP_QUEUE } as ZlibOptions);
    const hash = createHash('sha256');
    gzip.on('data', (part: Buffer) => {
      hash.update(part);
      gzipped += part.byteLength;
    });
    const ended = once(gzip, 'end');
    return { gzip, hash, ended, bytes: 0 };
  };
  const seal = async (member: ReturnType<typeof open>) => {
    member.gzip.end();
    await member.ended;
    member.hash.digest('hex');
    members++;
  };
  let member = open();
  for await (const read of createReadStream(path, { highWaterMark: MB })) {
    const buf = read as Buffer;
    for (let at = 0; at < buf.length; ) {
      if (member.bytes === DEFAULT_MAX_BYTES) {
        await seal(member);
        member = open();
      }
      const n = Math.min(WRITE_BATCH, buf.length - at, DEFAULT_MAX_BYTES - member.bytes);
      member.bytes += n;
      const ok = member.gzip.write(buf.subarray(at, at + n));
      at += n;
      if (!ok) await once(member.gzip, 'drain');
    }
  }
  await seal(member);
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, members, gzipped };
}

/** Runs {@link floor} in a child process started with `flags` (this module run directly). */
async function floorApart(file: string, flags: string[]): Promise<FloorRun> {
  return JSON.parse(await runApart([...flags, fileURLToPath(import.meta.url), 'floor', file])) as FloorRun;
}

/** Runs `node <args>`; resolves to its stdout. */
async function runApart(args: string[]): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`node ${args.at(-2) ?? ''} exited with ${code}`);
  return out;
}

interface PipelineRun {
  ms: number;
  /** CPU time of the process (all threads) while the pipeline ran. */
  cpuMs: number;
  /** RSS sampled every 50 ms while the pipeline ran. */
  peakRss: number;
  /** maxRSS of the whole pipeline process. */
  maxRss: number;
  chunks: number;
  events: number;
  duplicates: number;
  status: string;
}

/**
 * The V8 flags of the pipeline process: the heap bounds a 256 MB Lambda function would run
 * with (the live set is a few tens of MB; without bounds V8 lets old space fill with dead
 * objects up to far beyond the function's memory), and GC on the main thread only so that
 * the second core stays with gzip (a 256 MB Lambda has a fraction of one vCPU anyway).
 */
const PIPELINE_FLAGS = ['--max-old-space-size=128', '--max-semi-space-size=8', '--single-threaded-gc'];

/** Runs {@link pipeline} in a child process started with `flags` (this module run directly). */
async function pipelineApart(
  file: string,
  dir: string,
  parse: string,
  flags: string[],
): Promise<PipelineRun> {
  const run = await runApart([...flags, fileURLToPath(import.meta.url), 'pipeline', file, dir, parse]);
  return JSON.parse(run) as PipelineRun;
}

async function pipeline(
  path: string,
  dir: string,
  parse: (line: string) => AuditEvent,
): Promise<PipelineRun> {
  const store = new SqliteStateStore({ path: ':memory:' });
  try {
    await store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
    const archive = new LocalArchiveStore(join(dir, 'archive'));
    const source = new FileSource(path, parse);
    const now = new Date(END + 60_000);
    const deps: AuditJobDeps = {
      config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
      store,
      residency: new Residency({ eu: { preset: 'eu-gdpr' } }),
      logger: silentLogger,
      clock: { now: () => now },
      sources: { for: () => source },
      archives: { for: async () => archive },
      // A local directory is not compliant storage: allowed here as the CLI's --local-evidence does.
      allowLocalEvidence: true,
    };
    const rss = rssSampler();
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    const result = await collect(deps);
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const peakRss = rss.stop();
    const outcome = result.outcomes[0];
    if (!outcome) throw new Error('collect returned no outcome');
    if (outcome.status === 'skipped')
      return { ms, cpuMs, peakRss, maxRss: 0, chunks: 0, events: 0, duplicates: 0, status: 'skipped' };
    return {
      ms,
      cpuMs,
      peakRss,
      maxRss: 0,
      chunks: outcome.chunks,
      events: outcome.events,
      duplicates: outcome.duplicates,
      status: outcome.status === 'failed' ? `failed: ${outcome.error.message}` : outcome.status,
    };
  } finally {
    await store.close();
  }
}

const loadavg = async (): Promise<string> =>
  (await readFile('/proc/loadavg', 'utf8').catch(() => 'n/a')).split(' ').slice(0, 3).join(' ');

export async function benchAudit(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      mb: { type: 'string', default: '1024' },
      repeat: { type: 'string', default: '3' },
      parse: { type: 'string', default: 'identity' },
      'node-flags': { type: 'string', default: PIPELINE_FLAGS.join(' ') },
    },
  });
  const flags = values['node-flags'].split(/\s+/).filter((flag) => flag !== '');
  const mb = Number(values.mb);
  if (!Number.isFinite(mb) || mb <= 0) {
    console.log(`--mb must be a positive number, got ${values.mb}`);
    return 2;
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    console.log(`--repeat must be a positive integer, got ${values.repeat}`);
    return 2;
  }
  if (!['json', 'identity', 'scan'].includes(values.parse)) {
    console.log(`--parse must be json, identity or scan, got ${values.parse}`);
    return 2;
  }
  for (const tool of ['gzip', 'sha256sum']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      console.log(`The baseline needs \`${tool}\` on the PATH; it was not found.`);
      return 1;
    }
  }

  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-audit-'));
  try {
    const file = join(dir, 'events.ndjson');
    process.stderr.write(`Generating ${mb} MB of audit events...\n`);
    const input = await generateApart(file, Math.round(mb * MB));
    const inputMb = input.bytes / MB;
    const loadBefore = await loadavg();

    // Interleaved, so that load from other processes on the box hits every side alike.
    const floors: FloorRun[] = [];
    const bases: SideRun[] = [];
    const runs: PipelineRun[] = [];
    for (let i = 1; i <= repeat; i++) {
      process.stderr.write(`Round ${i}/${repeat}: floor (node zlib + sha256)...\n`);
      floors.push(await floorApart(file, flags));
      process.stderr.write(`Round ${i}/${repeat}: gzip -c | sha256sum...\n`);
      bases.push(await baseline(file));
      process.stderr.write(`Round ${i}/${repeat}: pipeline (parse: ${values.parse})...\n`);
      const runDir = join(dir, `run-${i}`);
      runs.push(await pipelineApart(file, runDir, values.parse, flags));
      await rm(runDir, { recursive: true, force: true });
    }
    const loadAfter = await loadavg();

    const f = (n: number, d = 1) => n.toFixed(d);
    const speeds = (xs: SideRun[]) => xs.map((x) => inputMb / (x.ms / 1000));
    const side = (xs: SideRun[]) => {
      const mbs = speeds(xs);
      return { min: Math.min(...mbs), median: median(mbs), all: mbs };
    };
    const floorS = side(floors);
    const baseS = side(bases);
    const pipeS = side(runs);
    const ratio = pipeS.median / floorS.median;
    const ratioGzip = pipeS.median / baseS.median;
    const worstRssMb = Math.max(...runs.map((r) => Math.max(r.peakRss, r.maxRss))) / MB;
    const sampledMb = Math.max(...runs.map((r) => r.peakRss)) / MB;
    const maxRssMb = Math.max(...runs.map((r) => r.maxRss)) / MB;
    const incomplete = runs.find((r) => r.status !== 'archived' || r.events !== input.events);
    const line = (name: string, s: ReturnType<typeof side>, about: string) =>
      console.log(
        `${name.padEnd(21)}median ${f(s.median)} MB/s, min ${f(s.min)} MB/s (runs ${s.all.map((x) => f(x)).join(', ')}) ${about}`,
      );
    const cpu = (xs: { cpuMs?: number | undefined }[]) => f(median(xs.map((x) => x.cpuMs ?? 0)) / 1000, 2);

    console.log(
      `input                ${f(inputMb)} MB, ${input.events} events, ${repeat} interleaved rounds`,
    );
    console.log(`load average         ${loadBefore} before, ${loadAfter} after (2-core box)`);
    line('floor', floorS, `node zlib level ${CHUNK_GZIP.level} + sha256, one process, CPU ${cpu(floors)} s`);
    line('gzip | sha256sum', baseS, 'gzip -c | sha256sum, two processes');
    line('pipeline', pipeS, `collect (parse: ${values.parse}), CPU ${cpu(runs)} s`);
    console.log(
      `node flags           ${flags.length > 0 ? flags.join(' ') : '(none)'} (the floor's and the pipeline's processes)`,
    );
    console.log(
      `ratio                ${f(ratio, 2)} of the floor (target >= ${TARGET_RATIO}), ${f(ratioGzip, 2)} of gzip | sha256sum (medians)`,
    );
    console.log(
      `peak RSS             ${f(sampledMb)} MB sampled every 50 ms, ${f(maxRssMb)} MB maxRSS of the pipeline process, worst run (target < ${TARGET_RSS_MB})`,
    );
    const last = runs.at(-1) as PipelineRun;
    console.log(
      `written              ${last.chunks} chunks, ${last.events} events (${last.duplicates} duplicates dropped), status ${last.status}`,
    );
    const failures: string[] = [];
    if (incomplete)
      failures.push(`archived ${incomplete.events} of ${input.events} events (${incomplete.status})`);
    if (ratio < TARGET_RATIO) failures.push(`ratio ${f(ratio, 2)} < ${TARGET_RATIO}`);
    if (worstRssMb >= TARGET_RSS_MB) failures.push(`peak RSS ${f(worstRssMb)} MB >= ${TARGET_RSS_MB} MB`);
    console.log(failures.length === 0 ? 'PASS' : `FAIL: ${failures.join('; ')}`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'generate' && rest.length === 2) {
    const [path = '', bytes = ''] = rest;
    process.stdout.write(JSON.stringify(await generate(path, Number(bytes))));
  } else if (mode === 'pipeline' && rest.length === 3) {
    const [file = '', dir = '', parse = ''] = rest;
    const run = await pipeline(
      file,
      dir,
      parse === 'scan' ? parseScan : parse === 'identity' ? parseIdentity : parseJson,
    );
    run.maxRss = process.resourceUsage().maxRSS * 1024;
    process.stdout.write(JSON.stringify(run));
  } else if (mode === 'floor' && rest.length === 1) {
    process.stdout.write(JSON.stringify(await floor(rest[0] ?? '')));
  } else {
    throw new Error(
      'usage: audit.ts generate <file> <bytes> | floor <file> | pipeline <file> <dir> <json|scan>',
    );
  }
}
