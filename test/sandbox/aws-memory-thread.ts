/**
 * The in-memory AWS responder and its latency proxy on a worker thread of their own.
 *
 * Why: in the benchmark process the emulator's CPU (HTTP parsing, classification, the
 * proxy's forward hop) would share one event loop with the code under measurement, and
 * every millisecond it takes would delay Fleetward's callbacks — the emulator's service
 * time again, in another form. A real AWS endpoint spends none of the client's CPU. On its
 * own thread the stack answers from another core, as moto (its own process) did.
 *
 * The thread keeps its own {@link FaultInjector} and {@link RequestLog}: set the latency with
 * `setLatency` and read the requests with `takeRequests` (outside a measured window; it
 * copies them across threads).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startAwsMemory } from './aws-memory.ts';
import { startAwsProxy } from './aws-proxy.ts';
import { FaultInjector, type RequestInfo, RequestLog } from './faults.ts';

export interface AwsMemoryThread {
  /** The latency proxy (point clients here). */
  url: string;
  /** The responder itself, without latency (for seeding). */
  upstreamUrl: string;
  setLatency(ms: number): Promise<void>;
  /** Every request the proxy answered since the last call, then forgets them. */
  takeRequests(): Promise<RequestInfo[]>;
  stop(): Promise<void>;
}

type Ask = { kind: 'latency'; ms: number } | { kind: 'take' } | { kind: 'stop' };
type Command = Ask & { id: number };
type Reply = { id: number; requests?: RequestInfo[] };

export async function startAwsMemoryThread(options: { latencyMs?: number } = {}): Promise<AwsMemoryThread> {
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { awsMemoryThread: true, latencyMs: options.latencyMs ?? 0 },
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const ready = await new Promise<{ url: string; upstreamUrl: string }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  let nextId = 0;
  const pending = new Map<number, (reply: Reply) => void>();
  worker.on('message', (reply: Reply) => {
    pending.get(reply.id)?.(reply);
    pending.delete(reply.id);
  });
  const ask = (command: Ask) =>
    new Promise<Reply>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      worker.postMessage({ ...command, id });
    });
  return {
    ...ready,
    async setLatency(ms) {
      await ask({ kind: 'latency', ms });
    },
    async takeRequests() {
      return (await ask({ kind: 'take' })).requests ?? [];
    },
    async stop() {
      await ask({ kind: 'stop' });
      await worker.terminate();
      await exited;
    },
  };
}

/** The worker side: responder, proxy, and a message loop. */
async function serve(): Promise<void> {
  const port = parentPort!;
  const faults = new FaultInjector({ latencyMs: (workerData as { latencyMs: number }).latencyMs });
  const log = new RequestLog();
  const memory = await startAwsMemory();
  const proxy = await startAwsProxy({ upstream: memory.url, faults, log });
  port.on('message', async (command: Command) => {
    if (command.kind === 'latency') faults.latencyMs = command.ms;
    if (command.kind === 'take') {
      const requests = [...log.entries];
      log.clear();
      port.postMessage({ id: command.id, requests } satisfies Reply);
      return;
    }
    if (command.kind === 'stop') {
      await proxy.stop();
      await memory.stop();
    }
    port.postMessage({ id: command.id } satisfies Reply);
  });
  port.postMessage({ url: proxy.url, upstreamUrl: memory.url });
}

if (!isMainThread && (workerData as { awsMemoryThread?: boolean } | undefined)?.awsMemoryThread) {
  await serve();
}
