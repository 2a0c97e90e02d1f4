/**
 * Block Kit digests: pure functions from findings, control changes and status counts to
 * one {@link SlackMessage}. Every message is redacted (webhook URLs, tokens, key ids) and
 * stripped of any other URL, finding messages are cut to {@link MAX_FINDING_CHARS}, and the
 * result stays inside {@link SLACK_LIMITS} without relying on `fitSlackLimits` to cut it.
 *
 * Block layout: header, context (stage, run), counts per jurisdiction, newly failing and
 * newly fixed controls, then up to `maxFindings` findings (one section each, most severe
 * first), "…and N more", and the number of resolved findings.
 */
import type { ControlChange, StatusCounts } from '../compliance/schema.ts';
import type { Finding } from '../model.ts';
import { redact, redactDeep, SLACK_LIMITS, type SlackMessage } from './slack.ts';

/** Longest finding message shown, in characters; longer ones end in "…". */
export const MAX_FINDING_CHARS = 300;
/** Longest list of changed controls shown per kind (failing, fixed) before "…and N more". */
export const MAX_CHANGES_LISTED = 15;
/** Slack's limit on a header block's plain text. */
const MAX_HEADER_CHARS = 150;

/** What a digest shows. */
export interface DigestInput {
  title: string;
  stage: string;
  runId?: string | undefined;
  counts?: { jurisdiction: string; counts: StatusCounts }[] | undefined;
  changes?: { newlyFailing: ControlChange[]; newlyFixed: ControlChange[] } | undefined;
  /** New findings; shown most severe first. */
  findings: Finding[];
  /** Findings closed since the last notice. */
  resolved?: number | undefined;
  /** Findings listed one by one before "…and N more" (fewer when the 50-block limit needs it). */
  maxFindings: number;
}

const SEVERITY_RANK: Record<Finding['severity'], number> = { low: 1, medium: 2, high: 3, critical: 4 };
const SEVERITY_EMOJI: Record<Finding['severity'], string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  medium: ':large_yellow_circle:',
  low: ':white_circle:',
};

const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s<>"']+/gi;

/** Redacts secrets, removes URLs, and escapes Slack's control characters (`&`, `<`, `>`) so text cannot mention or link. */
export function safeText(text: string): string {
  return redact(text)
    .replace(URL_PATTERN, '[url removed]')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Lines joined into one section text, keeping whole lines under the limit and saying how many were left out. */
function linesSection(heading: string, lines: string[], more = 0): unknown {
  const limit = SLACK_LIMITS.maxSectionTextChars - 40;
  let text = heading;
  let left = more;
  for (let i = 0; i < lines.length; i++) {
    const next = `${text}\n${lines[i]}`;
    if (next.length > limit) {
      left += lines.length - i;
      break;
    }
    text = next;
  }
  if (left > 0) text += `\n…and ${left} more`;
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

function countsLine(jurisdiction: string, c: StatusCounts): string {
  return (
    `*${safeText(jurisdiction)}*: :white_check_mark: ${c.pass} pass · :x: ${c.fail} fail · ` +
    `:heavy_minus_sign: ${c['not-applicable']} n/a · :grey_question: ${c.unknown} unknown`
  );
}

function changeLines(changes: ControlChange[]): { lines: string[]; more: number } {
  const shown = changes.slice(0, MAX_CHANGES_LISTED);
  return {
    lines: shown.map(
      (c) =>
        `• \`${cut(safeText(c.control), 120)}\` on \`${cut(safeText(c.clusterId), 200)}\` ` +
        `(${c.before ?? 'new'} → ${c.after ?? 'gone'})`,
    ),
    more: changes.length - shown.length,
  };
}

function findingBlock(f: Finding): unknown {
  const message = cut(safeText(f.message), MAX_FINDING_CHARS);
  return {
    type: 'section',
    text: {
      type: 'mrkdwn',
      text:
        `${SEVERITY_EMOJI[f.severity] ?? ''} *${f.severity.toUpperCase()}* · ` +
        `\`${cut(safeText(f.clusterId), 300)}\` · ${cut(safeText(f.kind), 100)}\n${message}`,
    },
  };
}

/** Findings ordered most severe first, then by cluster and kind (stable for equal keys). */
export function bySeverity(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) =>
      (SEVERITY_RANK[b.severity] ?? 0) - (SEVERITY_RANK[a.severity] ?? 0) ||
      a.clusterId.localeCompare(b.clusterId) ||
      a.kind.localeCompare(b.kind),
  );
}

function fallbackText(input: DigestInput): string {
  const parts: string[] = [];
  if (input.findings.length > 0) {
    const bySev = (['critical', 'high', 'medium', 'low'] as const)
      .map((s) => [s, input.findings.filter((f) => f.severity === s).length] as const)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${s}`);
    parts.push(`${plural(input.findings.length, 'new finding')} (${bySev.join(', ')})`);
  }
  const failing = input.changes?.newlyFailing.length ?? 0;
  const fixed = input.changes?.newlyFixed.length ?? 0;
  if (failing > 0) parts.push(`${plural(failing, 'control')} newly failing`);
  if (fixed > 0) parts.push(`${plural(fixed, 'control')} newly fixed`);
  if (input.resolved) parts.push(`${plural(input.resolved, 'finding')} resolved`);
  const summary = parts.length > 0 ? parts.join('; ') : 'nothing new';
  return `${safeText(input.title)} [${safeText(input.stage)}]: ${summary}`;
}

/** Builds the Block Kit digest of a job's findings and a snapshot's control changes (see the module comment). */
export function buildDigest(input: DigestInput): SlackMessage & { text: string } {
  const blocks: unknown[] = [];
  blocks.push({
    type: 'header',
    text: {
      type: 'plain_text',
      text: cut(redact(input.title).replace(URL_PATTERN, '[url removed]'), MAX_HEADER_CHARS),
      emoji: true,
    },
  });
  const meta = [`stage *${safeText(input.stage)}*`];
  if (input.runId) meta.push(`run \`${safeText(input.runId)}\``);
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: meta.join(' · ') }] });

  if (input.counts && input.counts.length > 0) {
    blocks.push(
      linesSection(
        '*Controls by jurisdiction*',
        input.counts.map((c) => countsLine(c.jurisdiction, c.counts)),
      ),
    );
  }
  const failing = input.changes?.newlyFailing ?? [];
  const fixed = input.changes?.newlyFixed ?? [];
  if (failing.length > 0) {
    const { lines, more } = changeLines(failing);
    blocks.push(linesSection(`:rotating_light: *Newly failing controls (${failing.length})*`, lines, more));
  }
  if (fixed.length > 0) {
    const { lines, more } = changeLines(fixed);
    blocks.push(linesSection(`:white_check_mark: *Newly fixed controls (${fixed.length})*`, lines, more));
  }

  const findings = bySeverity(input.findings);
  if (findings.length > 0) {
    blocks.push({ type: 'divider' });
    // Room left under the 50-block limit: one block for "…and N more", one for "resolved".
    const room = SLACK_LIMITS.maxBlocks - blocks.length - 2;
    const shown = findings.slice(0, Math.max(0, Math.min(input.maxFindings, room)));
    for (const f of shown) blocks.push(findingBlock(f));
    const more = findings.length - shown.length;
    if (more > 0) {
      blocks.push({
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `…and ${plural(more, 'more finding')}` }],
      });
    }
  }
  if (input.resolved && input.resolved > 0) {
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `:white_check_mark: ${plural(input.resolved, 'finding')} resolved since the last notice`,
        },
      ],
    });
  }
  return redactDeep({ text: cut(fallbackText(input), 3000), blocks });
}
