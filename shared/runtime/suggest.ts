/**
 * Near-match suggestions ("did you mean"), for flags, subcommands, config keys, cluster ids
 * and jurisdictions: whatever a user may mistype.
 */

/** Levenshtein distance, for near-match suggestions of short strings. */
export function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The candidates close to `input`, nearest first (at most `limit`): within a distance of
 * 2, or a quarter of the input's length when that is more.
 */
export function nearest(input: string, candidates: Iterable<string>, limit = 5): string[] {
  const max = Math.max(2, Math.floor(input.length / 4));
  return [...new Set(candidates)]
    .map((c) => ({ c, d: distance(input, c) }))
    .filter((x) => x.d <= max)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, limit)
    .map((x) => x.c);
}

/**
 * `; did you mean "x"?` (or `"x" or "y"`, `"x", "y" or "z"`), or '' when nothing is near.
 * Only the nearest candidates are named: `eu-centrall-1` suggests `eu-central-1` alone, not
 * every region two edits away.
 */
export function didYouMean(input: string, candidates: Iterable<string>): string {
  const near = nearest(input, candidates, 3);
  if (near.length === 0) return '';
  const best = distance(input, near[0] as string);
  const quoted = near.filter((c) => distance(input, c) === best).map((c) => `"${c}"`);
  const last = quoted.pop();
  return `; did you mean ${quoted.length > 0 ? `${quoted.join(', ')} or ${last}` : last}?`;
}
