/**
 * Each cloud's rules for tag and label keys and values, as data. A value that breaks its
 * cloud's rules is rejected while planning and never sent.
 *  - AWS (EKS tags): keys 1-128, values 0-256 characters; letters, digits, spaces and
 *    `_ . : / = + - @`; the `aws:` prefix is reserved; 50 tags per resource.
 *  - GCP (GKE resource labels): keys 1-63 and values 0-63 characters of lower-case letters,
 *    digits, `_` and `-`; keys start with a lower-case letter; 64 labels per resource.
 *  - Azure (resource tags): keys 1-512, values 0-256 characters; keys may not contain
 *    `< > % & \ ? /`, are case-insensitive, and may not start with `microsoft`, `azure` or
 *    `windows`; 50 tags per resource.
 */
import type { RegionCloud } from '../model.ts';

export interface TagRules {
  keyMax: number;
  valueMax: number;
  /** Every character a key may hold (tested per character). */
  keyChars: RegExp;
  valueChars: RegExp;
  /** What a key must start with, when the cloud says. */
  keyStart?: RegExp;
  /** Prefixes reserved by the cloud (compared case-insensitively). */
  reservedPrefixes: readonly string[];
  caseInsensitiveKeys: boolean;
  maxTags: number;
}

const AWS_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]$/u;
const GCP_CHARS = /^[\p{Ll}\p{Lo}\p{N}_-]$/u;
const AZURE_FORBIDDEN = /^[^<>%&\\?/]$/u;

export const TAG_RULES: Record<RegionCloud, TagRules> = {
  aws: {
    keyMax: 128,
    valueMax: 256,
    keyChars: AWS_CHARS,
    valueChars: AWS_CHARS,
    reservedPrefixes: ['aws:'],
    caseInsensitiveKeys: false,
    maxTags: 50,
  },
  gcp: {
    keyMax: 63,
    valueMax: 63,
    keyChars: GCP_CHARS,
    valueChars: GCP_CHARS,
    keyStart: /^[\p{Ll}\p{Lo}]/u,
    reservedPrefixes: ['goog'],
    caseInsensitiveKeys: false,
    maxTags: 64,
  },
  azure: {
    keyMax: 512,
    valueMax: 256,
    keyChars: AZURE_FORBIDDEN,
    valueChars: /^.$/su,
    reservedPrefixes: ['microsoft', 'azure', 'windows'],
    caseInsensitiveKeys: true,
    maxTags: 50,
  },
};

/** Why a key/value pair cannot be written to a resource of `cloud` (empty when it can). */
export function tagProblems(cloud: RegionCloud, key: string, value: string): string[] {
  const rules = TAG_RULES[cloud];
  const problems: string[] = [];
  const length = (s: string) => [...s].length;
  if (length(key) === 0) problems.push('key is empty');
  if (length(key) > rules.keyMax) problems.push(`key is longer than ${rules.keyMax} characters`);
  if (length(value) > rules.valueMax) problems.push(`value is longer than ${rules.valueMax} characters`);
  const badKey = [...key].find((c) => !rules.keyChars.test(c));
  if (badKey !== undefined) problems.push(`key contains "${badKey}", which ${cloud} does not allow`);
  const badValue = [...value].find((c) => !rules.valueChars.test(c));
  if (badValue !== undefined) problems.push(`value contains "${badValue}", which ${cloud} does not allow`);
  if (rules.keyStart && key.length > 0 && !rules.keyStart.test(key))
    problems.push('key must start with a lower-case letter');
  const reserved = rules.reservedPrefixes.find((p) => key.toLowerCase().startsWith(p));
  if (reserved) problems.push(`key prefix "${reserved}" is reserved by ${cloud}`);
  return problems;
}

/**
 * The GCP label a policy key becomes: lower-cased, every other character outside
 * `[a-z0-9_-]` replaced by `_`, cut to 63 characters. Two policy keys with the same label
 * would overwrite each other on GKE, so configuration validation refuses them.
 */
export function gcpLabelKey(key: string): string {
  return [...key.toLowerCase()]
    .map((c) => (GCP_CHARS.test(c) ? c : '_'))
    .join('')
    .slice(0, 63);
}

/** The key two keys collide on in `cloud` (Azure compares keys case-insensitively). */
export function comparableKey(cloud: RegionCloud, key: string): string {
  if (cloud === 'gcp') return gcpLabelKey(key);
  return TAG_RULES[cloud].caseInsensitiveKeys ? key.toLowerCase() : key;
}
