/** A function that runs tasks with at most `limit` of them in flight at once. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Creates a FIFO concurrency limiter. All work of one adapter shares one limiter,
 * so nested fan-out (regions, then clusters) never exceeds the allowed concurrency
 * and never leaves a slot idle while work is queued.
 */
export function createLimiter(limit: number): Limiter {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  let active = 0;
  const queue: (() => void)[] = [];
  const next = () => {
    active--;
    queue.shift()?.();
  };
  return <T>(task: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const start = () => {
        active++;
        task().then(resolve, reject).finally(next);
      };
      if (active < limit) start();
      else queue.push(start);
    });
}

/** Maps `items` through `fn` with the limiter, keeping order; every item settles. */
export async function mapSettled<I, O>(
  items: readonly I[],
  limiter: Limiter,
  fn: (item: I) => Promise<O>,
): Promise<PromiseSettledResult<O>[]> {
  return Promise.allSettled(items.map((item) => limiter(() => fn(item))));
}
