/**
 * The snapshot formats Fleetward publishes and one entry point that renders any of them.
 */
import { UsageError } from '../../runtime/errors.ts';
import type { JurisdictionSnapshot } from '../schema.ts';
import { renderCsv } from './csv.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';

/** Every snapshot format, in the order they are written. */
export const FORMATS = ['json', 'html', 'md', 'csv'] as const;

/** One snapshot format: `json` (the document itself), `html`, `md` (Markdown) or `csv`. */
export type SnapshotFormat = (typeof FORMATS)[number];

/** Renders a jurisdiction snapshot in one format; `json` is the document, 2-space indented, newline-terminated. */
export function render(snapshot: JurisdictionSnapshot, format: SnapshotFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(snapshot, null, 2)}\n`;
    case 'html':
      return renderHtml(snapshot);
    case 'md':
      return renderMarkdown(snapshot);
    case 'csv':
      return renderCsv(snapshot);
  }
}

/**
 * Parses a comma-separated list of formats (`json,html`; spaces around names are ignored,
 * repeats are dropped, order is kept). Throws {@link UsageError} naming the first unknown
 * format, or when the list names none.
 */
export function parseFormats(list: string): SnapshotFormat[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (names.length === 0) {
    throw new UsageError(`no snapshot format given: expected one or more of ${FORMATS.join(', ')}`);
  }
  const formats: SnapshotFormat[] = [];
  for (const name of names) {
    if (!isFormat(name)) {
      throw new UsageError(
        `unknown snapshot format "${name}": expected one or more of ${FORMATS.join(', ')}`,
      );
    }
    if (!formats.includes(name)) formats.push(name);
  }
  return formats;
}

function isFormat(name: string): name is SnapshotFormat {
  return (FORMATS as readonly string[]).includes(name);
}
