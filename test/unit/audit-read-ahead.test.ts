import { describe, expect, it } from 'vitest';
import { readAhead } from '../../shared/audit/chunks.ts';

/** A source of `n` items that logs what it does. */
function logged(n: number, log: string[], failAt?: number): AsyncGenerator<number> {
  return (async function* () {
    try {
      for (let i = 1; i <= n; i++) {
        log.push(`produce ${i}`);
        if (i === failAt) throw new Error(`item ${i} failed`);
        yield i;
      }
    } finally {
      log.push('source closed');
    }
  })();
}

describe('readAhead', () => {
  it('yields every item in order, producing the next while the consumer holds one', async () => {
    const log: string[] = [];
    for await (const item of readAhead(logged(3, log))) {
      log.push(`consume ${item}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(log).toEqual([
      'produce 1',
      'produce 2',
      'consume 1',
      'produce 3',
      'consume 2',
      'source closed',
      'consume 3',
    ]);
  });

  it('surfaces a failure of the step ahead when the consumer asks for that item', async () => {
    const log: string[] = [];
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const item of readAhead(logged(5, log, 3))) seen.push(item);
      })(),
    ).rejects.toThrow('item 3 failed');
    expect(seen).toEqual([1, 2]);
    expect(log).toContain('source closed');
  });

  it('closes the source before returning when the consumer stops early', async () => {
    const log: string[] = [];
    for await (const item of readAhead(logged(10, log))) {
      if (item === 2) break;
    }
    // Nothing runs behind the consumer's back: the step in flight finished and the source closed.
    expect(log).toEqual(['produce 1', 'produce 2', 'produce 3', 'source closed']);
  });

  it('closes the source when the consumer throws', async () => {
    const log: string[] = [];
    await expect(
      (async () => {
        for await (const item of readAhead(logged(10, log))) {
          if (item === 1) throw new Error('archive write failed');
        }
      })(),
    ).rejects.toThrow('archive write failed');
    expect(log.at(-1)).toBe('source closed');
  });

  it('calls stop before waiting for the step in flight, so a stalled read is aborted', async () => {
    const reading = new AbortController();
    async function* stalled(): AsyncGenerator<number> {
      yield 1;
      // A throttled read: only an abort ends it.
      await new Promise((_, reject) => {
        reading.signal.addEventListener('abort', () => reject(new Error('read aborted')));
      });
      yield 2;
    }
    await expect(
      (async () => {
        for await (const _ of readAhead(stalled(), () => reading.abort()))
          throw new Error('archive write failed');
      })(),
    ).rejects.toThrow('archive write failed');
    expect(reading.signal.aborted).toBe(true);
  });
});
