/** Small helpers the benchmarks share: grouping a request log by operation, medians. */
import type { RequestInfo } from '../sandbox/faults.ts';

/** Requests by `<cloud>:<operation>`. */
export function group(requests: readonly RequestInfo[]): Map<string, RequestInfo[]> {
  const byOp = new Map<string, RequestInfo[]>();
  for (const r of requests) {
    const key = `${r.cloud}:${r.operation}`;
    byOp.set(key, [...(byOp.get(key) ?? []), r]);
  }
  return byOp;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

/** Median service time per operation (ms) from a pass without injected latency. */
export function serviceTimes(requests: readonly RequestInfo[]): Map<string, number> {
  return new Map([...group(requests)].map(([op, rs]) => [op, median(rs.map((r) => r.durationMs ?? 0))]));
}
