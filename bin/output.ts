/**
 * What every CLI command prints the same way: the closing summary line, progress on long
 * runs, and the exit codes' meaning. One wording for one condition, in every command.
 */

/** The CLI's exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** What each exit code means, as the summary line says it. */
const EXIT_MEANING: Record<number, string> = {
  [EXIT.ok]: 'done',
  [EXIT.failed]: 'completed with failures',
  [EXIT.usage]: 'bad usage or invalid config',
};

/**
 * The one-line summary a command ends with, e.g.
 * `Summary: 3 created, 18 exist, 2 skipped, 1 failed (exit 1: completed with failures)`.
 * Counts of zero are left out, except that an all-zero summary says `nothing to do`.
 * `counts` keeps the caller's order; use the words created / exists / changed / skipped /
 * failed (and the command's own nouns, e.g. `pass`, `fail`) consistently.
 */
export function summaryLine(counts: Record<string, number>, exitCode: number): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([word, n]) => `${n} ${word}`);
  const meaning = EXIT_MEANING[exitCode] ?? 'failed';
  return `Summary: ${parts.length > 0 ? parts.join(', ') : 'nothing to do'} (exit ${exitCode}: ${meaning})`;
}

/** A progress reporter: `update` as work advances, `done` when it ends (clears a TTY line). */
export interface Progress {
  update(done: number, total?: number, detail?: string): void;
  done(): void;
}

/**
 * Progress on stderr for work that may take longer than `afterMs` (default 2 s): silent until
 * then, so quick runs print nothing. On a TTY one line is rewritten in place; elsewhere (CI,
 * pipes, tests) a plain line is written at most every `everyMs` (default 5 s).
 */
export function progress(
  label: string,
  options: { afterMs?: number; everyMs?: number; stream?: NodeJS.WriteStream; now?: () => number } = {},
): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const afterMs = options.afterMs ?? 2000;
  const everyMs = options.everyMs ?? 5000;
  const tty = stream.isTTY === true;
  const started = now();
  let lastWrite = 0;
  let written = false;
  return {
    update(done, total, detail) {
      const t = now();
      if (t - started < afterMs) return;
      if (!tty && written && t - lastWrite < everyMs) return;
      const seconds = Math.round((t - started) / 1000);
      const count = total === undefined ? `${done}` : `${done}/${total}`;
      const text = `${label}: ${count}${detail ? ` ${detail}` : ''} (${seconds} s)`;
      stream.write(tty ? `\r\x1b[2K${text}` : `${text}\n`);
      written = true;
      lastWrite = t;
    },
    done() {
      if (tty && written) stream.write('\r\x1b[2K');
    },
  };
}
