import { describe, expect, it } from 'vitest';
import type { ControlChange } from '../../shared/compliance/schema.ts';
import type { Finding } from '../../shared/model.ts';
import { buildDigest, type DigestInput, MAX_FINDING_CHARS } from '../../shared/notify/digest.ts';
import { fitSlackLimits, SLACK_LIMITS } from '../../shared/notify/slack.ts';

type Block = { type: string; text?: { type: string; text: string }; elements?: { text: string }[] };

function finding(n: number, over: Partial<Finding> = {}): Finding {
  return {
    clusterId: `aws/111111111111/eu-central-1/c${String(n).padStart(3, '0')}`,
    jurisdiction: 'eu',
    kind: 'velero-missing',
    severity: 'medium',
    message: `finding number ${n}`,
    at: '2025-01-01T00:00:00.000Z',
    ...over,
  };
}

function input(over: Partial<DigestInput> = {}): DigestInput {
  return { title: 'Fleetward backup', stage: 'dev', findings: [], maxFindings: 10, ...over };
}

const blocksOf = (m: { blocks?: unknown[] }) => (m.blocks ?? []) as Block[];
const textOf = (b: Block) => b.text?.text ?? b.elements?.map((e) => e.text).join(' ') ?? '';
const allText = (m: { text: string; blocks?: unknown[] }) =>
  `${m.text}\n${blocksOf(m).map(textOf).join('\n')}`;

const change = (
  control: string,
  clusterId: string,
  before: ControlChange['before'],
  after: ControlChange['after'],
) => ({ clusterId, control, before, after }) satisfies ControlChange;

describe('buildDigest', () => {
  it('starts with a header and the stage and run', () => {
    // Prepare / Act
    const message = buildDigest(input({ runId: '20250101000000-abcd1234', findings: [finding(1)] }));

    // Assess
    const [header, context] = blocksOf(message);
    expect(header).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Fleetward backup', emoji: true },
    });
    expect(textOf(context!)).toContain('dev');
    expect(textOf(context!)).toContain('20250101000000-abcd1234');
  });

  it('shows status counts per jurisdiction', () => {
    const message = buildDigest(
      input({
        counts: [
          { jurisdiction: 'eu', counts: { pass: 12, fail: 3, 'not-applicable': 1, unknown: 0 } },
          { jurisdiction: 'in', counts: { pass: 4, fail: 0, 'not-applicable': 0, unknown: 2 } },
        ],
      }),
    );

    const section = blocksOf(message).find((b) => textOf(b).includes('Controls by jurisdiction'));
    expect(section).toBeDefined();
    expect(textOf(section!)).toMatch(/\*eu\*: .*12 pass .*3 fail .*1 n\/a .*0 unknown/);
    expect(textOf(section!)).toMatch(/\*in\*: .*4 pass .*0 fail .*0 n\/a .*2 unknown/);
  });

  it('lists newly failing and newly fixed controls separately', () => {
    const message = buildDigest(
      input({
        changes: {
          newlyFailing: [
            change('backup.recent', 'c1', 'pass', 'fail'),
            change('audit.enabled', 'c2', null, 'fail'),
          ],
          newlyFixed: [change('residency.cluster-region', 'c3', 'fail', 'pass')],
        },
      }),
    );

    const failing = blocksOf(message).find((b) => textOf(b).includes('Newly failing controls (2)'));
    const fixed = blocksOf(message).find((b) => textOf(b).includes('Newly fixed controls (1)'));
    expect(textOf(failing!)).toContain('`backup.recent` on `c1` (pass → fail)');
    expect(textOf(failing!)).toContain('`audit.enabled` on `c2` (new → fail)');
    expect(textOf(fixed!)).toContain('`residency.cluster-region` on `c3` (fail → pass)');
    expect(message.text).toContain('2 controls newly failing');
    expect(message.text).toContain('1 control newly fixed');
  });

  it.each([
    { total: 3, max: 10, listed: 3, more: undefined },
    { total: 10, max: 10, listed: 10, more: undefined },
    { total: 11, max: 10, listed: 10, more: 'and 1 more finding' },
    { total: 25, max: 5, listed: 5, more: 'and 20 more findings' },
  ])('lists $listed of $total findings with maxFindings $max', ({ total, max, listed, more }) => {
    const findings = Array.from({ length: total }, (_, i) => finding(i));

    const message = buildDigest(input({ findings, maxFindings: max }));

    const listedBlocks = blocksOf(message).filter((b) => textOf(b).includes('finding number'));
    expect(listedBlocks).toHaveLength(listed);
    const moreBlock = blocksOf(message).find((b) => /and \d+ more finding/.test(textOf(b)));
    if (more) expect(textOf(moreBlock!)).toContain(more);
    else expect(moreBlock).toBeUndefined();
    expect(message.text).toContain(`${total} new finding`);
  });

  it('lists the most severe findings first with severity, cluster and kind', () => {
    const findings = [
      finding(1, { severity: 'low', kind: 'a-kind' }),
      finding(2, { severity: 'critical', kind: 'rpo-exceeded' }),
      finding(3, { severity: 'high' }),
    ];

    const message = buildDigest(input({ findings, maxFindings: 2 }));

    const listed = blocksOf(message)
      .filter((b) => textOf(b).includes('finding number'))
      .map(textOf);
    expect(listed).toHaveLength(2);
    expect(listed[0]).toContain('*CRITICAL*');
    expect(listed[0]).toContain('`aws/111111111111/eu-central-1/c002`');
    expect(listed[0]).toContain('rpo-exceeded');
    expect(listed[1]).toContain('*HIGH*');
    expect(message.text).toContain('3 new findings (1 critical, 1 high, 1 low)');
  });

  it('says how many findings were resolved', () => {
    const message = buildDigest(input({ resolved: 4 }));

    expect(allText(message)).toContain('4 findings resolved since the last notice');
    expect(message.text).toContain('4 findings resolved');
  });

  it('removes tokens, webhook urls and other urls from finding messages', () => {
    // Built at run time so no secret-looking literal sits in the repository.
    const hook = ['https:', '', 'hooks.example.test', 'services', 'TFAKE', 'BFAKE', 'x'.repeat(24)].join('/');
    const slackToken = ['xoxb', '000000000', 'fake', 'token'].join('-');
    const eksToken = `${'k8s-aws-v1'}.${'Zm9vYmFy'.repeat(4)}`;
    const keyId = `${'AKIA'}${'0'.repeat(16)}`;
    const presigned = `https://bucket.example.test/object?X-Amz-Signature=${'f'.repeat(32)}`;
    const message = buildDigest(
      input({
        title: `Fleetward ${hook}`,
        findings: [
          finding(1, { message: `post to ${hook} with ${slackToken}` }),
          finding(2, { message: `token ${eksToken} and Bearer ${'a'.repeat(30)} for ${keyId}` }),
          finding(3, { message: `see ${presigned} <!channel>` }),
        ],
      }),
    );

    const json = JSON.stringify(message);
    for (const secret of [
      hook,
      slackToken,
      eksToken,
      keyId,
      'a'.repeat(30),
      presigned,
      'X-Amz-Signature',
      'TFAKE',
    ]) {
      expect(json).not.toContain(secret);
    }
    expect(json).not.toContain('<!channel>');
    expect(json).toContain('&lt;!channel&gt;');
  });

  it(`cuts each finding message to ${MAX_FINDING_CHARS} characters`, () => {
    const message = buildDigest(input({ findings: [finding(1, { message: `m${'x'.repeat(5000)}` })] }));

    const listed = blocksOf(message).find((b) => textOf(b).includes('mxxx'));
    const shown = textOf(listed!).split('\n')[1]!;
    expect(shown.length).toBe(MAX_FINDING_CHARS);
    expect(shown.endsWith('…')).toBe(true);
  });

  it.each([10, 500])('stays within Slack limits with 500 findings and maxFindings %i', (maxFindings) => {
    const findings = Array.from({ length: 500 }, (_, i) =>
      finding(i, {
        message: `finding number ${i} ${'y'.repeat(400)}`,
        severity: i % 7 === 0 ? 'critical' : 'low',
      }),
    );
    const manyChanges = Array.from({ length: 300 }, (_, i) =>
      change(`control.${i}`, `cluster-${'z'.repeat(100)}-${i}`, 'pass', 'fail'),
    );
    const counts = Array.from({ length: 200 }, (_, i) => ({
      jurisdiction: `j${i}`,
      counts: { pass: i, fail: 1, 'not-applicable': 0, unknown: 0 },
    }));

    const message = buildDigest(
      input({
        findings,
        maxFindings,
        resolved: 3,
        counts,
        changes: { newlyFailing: manyChanges, newlyFixed: manyChanges },
      }),
    );

    const blocks = blocksOf(message);
    expect(blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.maxBlocks);
    for (const b of blocks) {
      if (b.type === 'section')
        expect(b.text!.text.length).toBeLessThanOrEqual(SLACK_LIMITS.maxSectionTextChars);
    }
    expect(message.text.length).toBeLessThanOrEqual(SLACK_LIMITS.maxTextChars);
    // Nothing left for fitSlackLimits to cut.
    expect(fitSlackLimits(message)).toEqual(message);
    const listed = blocks.filter((b) => textOf(b).includes('finding number')).length;
    expect(allText(message)).toContain(`and ${500 - listed} more findings`);
    expect(allText(message)).toContain('3 findings resolved');
    expect(allText(message)).toContain('…and 285 more');
  });
});
