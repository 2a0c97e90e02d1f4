/**
 * Text tables and lists for the CLI that fit a 120-column terminal. The cluster id is the one
 * column never cut (it is what `--cluster` takes, and people copy it): when it is too long for
 * its column it gets a line of its own. Free-text columns wrap at spaces; optional columns
 * appear only with `--wide`, which also lifts the width limit.
 */

/** The width every table and list fits unless `--wide` is given. */
export const TABLE_WIDTH = 120;

/** The narrowest a wrapping column is made before the key column gives up room. */
const MIN_WRAP = 28;
/** Words up to this long widen a wrapped column to fit them; longer ones (URLs) overflow instead. */
const MAX_WORD = 30;
const GAP = 2;

export interface Column<T> {
  title: string;
  value: (row: T) => string;
  /** The row's identity (the cluster id): never cut or wrapped. At most one per table. */
  key?: boolean;
  /** Free text that wraps at spaces to fit the width. */
  wrap?: boolean;
  /** Shown only with `--wide`. */
  wide?: boolean;
  /** Shown only without `--wide` (a short form that wide columns replace). */
  narrow?: boolean;
}

export interface TableOptions {
  /** Optional columns, no width limit. */
  wide?: boolean;
  /** Default {@link TABLE_WIDTH}. */
  width?: number;
  /** Spaces before every line (default 2). */
  indent?: number;
}

/** Words of `text` in lines of at most `width` characters; a longer word (an id, a URL) is never cut. */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * `head` followed by `body`, wrapped at spaces of `body` to `width`; continuation lines are
 * indented by `indent` spaces (less for a word that would not fit so). `head` (which holds the
 * cluster id) is never cut.
 */
export function wrapHanging(head: string, body: string, indent: number, width = TABLE_WIDTH): string[] {
  const lines: string[] = [];
  const shift = (word: string) => ' '.repeat(Math.max(0, Math.min(indent, width - word.length)));
  let line = head;
  // A head too long for the line (a status word, then a long id): the id goes on the next line.
  const split = /^(.*\S)\s+(\S+\s*)$/.exec(head);
  if (head.trimEnd().length > width && split) {
    lines.push(split[1]!);
    line = `${shift(split[2]!.trimEnd())}${split[2]}`;
  }
  let words = 0; // words of `body` on the current line
  for (const word of body.split(/\s+/).filter(Boolean)) {
    const joined = `${line}${words === 0 ? '' : ' '}${word}`;
    if (joined.length > width && line.trim() !== '') {
      lines.push(line.trimEnd());
      // A word too long for the indented column (a long id) starts further left instead.
      line = `${shift(word)}${word}`;
      words = 1;
    } else {
      line = joined;
      words++;
    }
  }
  lines.push(line.trimEnd());
  return lines;
}

/**
 * The rows as a table: one title line, then one line per row, plus a line of its own for a key
 * longer than its column and continuation lines for wrapped text. Every line fits `width`
 * unless one key alone is longer, or `wide` is set.
 */
export function renderTable<T>(
  columns: readonly Column<T>[],
  rows: readonly T[],
  options: TableOptions = {},
): string {
  const wide = options.wide === true;
  const width = options.width ?? TABLE_WIDTH;
  const indent = ' '.repeat(options.indent ?? 2);
  const cols = columns.filter((c) => (wide ? !c.narrow : !c.wide));
  const cells = rows.map((r) => cols.map((c) => c.value(r)));
  const natural = cols.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const widths = [...natural];
  const total = (ws: number[]) => indent.length + ws.reduce((n, w) => n + w, 0) + GAP * (ws.length - 1);
  if (!wide && total(natural) > width) {
    const keyAt = cols.findIndex((c) => c.key);
    const wrapAt = cols.flatMap((c, i) => (c.wrap ? [i] : []));
    const fixed = total(cols.map((c, i) => (c.key || c.wrap ? 0 : natural[i]!)));
    // A wrapped column is never narrower than its longest word (up to a limit): words are not cut.
    const longestWord = (i: number) =>
      Math.min(MAX_WORD, Math.max(0, ...cells.flatMap((row) => row[i]!.split(/\s+/).map((w) => w.length))));
    const wrapMin = wrapAt.map((i) =>
      Math.min(natural[i]!, Math.max(cols[i]!.title.length, MIN_WRAP, longestWord(i))),
    );
    if (keyAt >= 0) {
      // The key column as wide as the longest key that still leaves the wrapped text its minimum.
      const room = width - fixed - wrapMin.reduce((n, w) => n + w, 0);
      const fitting = cells.map((row) => row[keyAt]!.length).filter((n) => n <= room);
      widths[keyAt] = Math.max(cols[keyAt]!.title.length, ...fitting);
    }
    let left = width - fixed - (keyAt >= 0 ? widths[keyAt]! : 0);
    wrapAt.forEach((i, n) => {
      const share = Math.max(wrapMin[n]!, Math.floor(left / (wrapAt.length - n)));
      widths[i] = Math.min(natural[i]!, share);
      left -= widths[i]!;
    });
  }
  const line = (row: string[]) =>
    `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join(' '.repeat(GAP))}`.trimEnd();
  const out = [line(cols.map((c) => c.title))];
  const keyAt = cols.findIndex((c) => c.key);
  for (const row of cells) {
    const parts = row.map((cell, i) => (cols[i]!.wrap && !wide ? wrapWords(cell, widths[i]!) : [cell]));
    const first = [...row];
    if (keyAt >= 0 && row[keyAt]!.length > widths[keyAt]!) {
      out.push(`${indent}${row[keyAt]}`);
      first[keyAt] = '';
    }
    const height = Math.max(...parts.map((p) => p.length));
    for (let l = 0; l < height; l++) {
      out.push(line(first.map((cell, i) => (cols[i]!.wrap ? (parts[i]![l] ?? '') : l === 0 ? cell : ''))));
    }
  }
  return out.join('\n');
}
