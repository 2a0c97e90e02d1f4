/**
 * `eventIdentity` must give exactly what `JSON.parse` of the line gives (`parsedEventIdentity`):
 * the dedup key of every archived event depends on it. Checked on real-looking Events, on
 * hand-picked grammar corners, and on many mutations of valid lines (a byte changed, removed,
 * duplicated, a prefix cut), which are mostly invalid JSON in every possible way.
 */
import { describe, expect, it } from 'vitest';
import { eventIdentity, parsedEventIdentity } from '../../shared/audit/identity.ts';
import { auditEventLine } from '../sandbox/aws-audit.ts';

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const same = (line: string) => expect(eventIdentity(line), line).toEqual(parsedEventIdentity(line));

const CORNERS = [
  '{"auditID":"a","stage":"ResponseComplete"}',
  ' \t\r\n{ "auditID" : "a" , "stage" : "RequestReceived" } \r\n\t',
  '{"stage":"x","auditID":"a"}',
  '{"auditID":"a","auditID":"b","stage":"s","stage":"t"}',
  '{"auditID":"a","auditID":1}',
  '{"auditID":1,"auditID":"a"}',
  '{"auditID":"","stage":"s"}',
  '{"auditID":"a","stage":""}',
  '{"auditID":"a","stage":null}',
  '{"stage":"s"}',
  '{"audit\\u0049D":"escaped-key","stage":"s"}',
  '{"auditID":"a\\"b","stage":"s\\u00e9"}',
  '{"auditID":"a","nested":{"auditID":"inner","stage":"inner"},"list":[{"auditID":"x"}]}',
  '{"nested":{"auditID":"inner"}}',
  '{"auditID":"a","n":[1,-0,0.5,-1.5e+10,2E-3,1e5,[],{},[[]],true,false,null]}',
  '{}',
  '[]',
  '[{"auditID":"a"}]',
  '"{\\"auditID\\":\\"a\\"}"',
  '123',
  'null',
  '',
  '   ',
  '{',
  '{"auditID":"a"',
  '{"auditID":"a",}',
  '{"auditID":"a"}}',
  '{"auditID":"a"} x',
  '{"auditID":"a",,"stage":"s"}',
  '{"auditID" "a"}',
  '{auditID:"a"}',
  "{'auditID':'a'}",
  '{"auditID":"a","n":01}',
  '{"auditID":"a","n":1.}',
  '{"auditID":"a","n":.5}',
  '{"auditID":"a","n":+1}',
  '{"auditID":"a","n":1e}',
  '{"auditID":"a","n":-}',
  '{"auditID":"a","n":NaN}',
  '{"auditID":"a","n":tru}',
  '{"auditID":"a","n":[1,]}',
  '{"auditID":"a","n":[,1]}',
  '{"auditID":"a","s":"tab\there"}',
  '{"auditID":"a","s":"bad \\x escape"}',
  '{"auditID":"a","s":"bad \\u12G4"}',
  '{"auditID":"a","s":"\\ud800 lone surrogate"}',
  '{"auditID":"a\u00e9\u4e2d\ud83d\ude00","stage":"s"}',
  '\ufeff{"auditID":"a"}',
  '{"auditID":"a"}\u00a0',
];

describe('eventIdentity', () => {
  it.each(CORNERS.map((line) => [line]))('matches JSON.parse on %j', (line) => {
    same(line);
  });

  it('reads the auditID and stage of generated Events', () => {
    const random = prng(1);
    for (let i = 0; i < 200; i++) {
      const line = auditEventLine(Date.parse('2026-11-21T10:00:00Z') + i, random, `id-${i}-a-b-c`);
      expect(eventIdentity(line)).toEqual({ auditID: `id-${i}-a-b-c`, stage: 'ResponseComplete' });
      same(line);
    }
  });

  it('matches JSON.parse on thousands of mutated lines (mostly invalid JSON)', () => {
    const random = prng(2);
    const bases = [
      ...CORNERS.slice(0, 15),
      ...Array.from({ length: 20 }, (_, i) =>
        auditEventLine(Date.parse('2026-11-21T10:00:00Z'), random, `m-${i}-a-b-c`),
      ),
    ];
    const alphabet = '{}[]":,\\ -+.0123456789eEtrufalsn\u00e9\t';
    let invalid = 0;
    for (let n = 0; n < 20_000; n++) {
      const base = bases[Math.floor(random() * bases.length)] as string;
      const at = Math.floor(random() * (base.length + 1));
      const ch = alphabet[Math.floor(random() * alphabet.length)] as string;
      const kind = Math.floor(random() * 4);
      const line =
        kind === 0
          ? base.slice(0, at) + ch + base.slice(at + 1)
          : kind === 1
            ? base.slice(0, at) + base.slice(at + 1)
            : kind === 2
              ? base.slice(0, at) + ch + base.slice(at)
              : base.slice(0, at);
      if (parsedEventIdentity(line).auditID === null) invalid++;
      same(line);
    }
    // The mutations do reach the rejecting paths (and the accepting ones).
    expect(invalid).toBeGreaterThan(2_000);
    expect(invalid).toBeLessThan(19_000);
  });

  it('refuses a line JSON.parse refuses even when its identity is well formed', () => {
    const line = auditEventLine(Date.parse('2026-11-21T10:00:00Z'), prng(3), 't-r-u-n-c');
    expect(eventIdentity(line.slice(0, -1))).toEqual({ auditID: null, stage: null });
    expect(eventIdentity(`${line},`)).toEqual({ auditID: null, stage: null });
  });
});
