/**
 * Loading and validating `fleet.yaml`: parse YAML, validate with the strict schema,
 * and turn every problem into a `ConfigIssue` that names the dotted path of the bad field.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { RegionCloud } from '../model.ts';
import { REGIONS, Residency, regionCountry } from '../residency/index.ts';
import { ConfigError, type ConfigIssue, ResidencyError } from '../runtime/errors.ts';
import { didYouMean } from '../runtime/suggest.ts';
import { comparableKey, gcpLabelKey, tagProblems } from '../tags/rules.ts';
import { FleetConfig } from './schema.ts';

/** Where the CLI looks for the config when `--config` is not given. */
export const DEFAULT_CONFIG_FILE = 'fleet.yaml';

/** The config file a command reads: `--config`, else `$FLEETWARD_CONFIG` (when not empty), else `./fleet.yaml`. */
export function configPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit || env.FLEETWARD_CONFIG || DEFAULT_CONFIG_FILE;
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || '(root)';
}

/** The parts of a zod schema definition the issue reader looks through. */
interface SchemaDef {
  type: string;
  shape?: Record<string, z.core.$ZodType>;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  out?: z.core.$ZodType;
  element?: z.core.$ZodType;
  items?: readonly z.core.$ZodType[];
  valueType?: z.core.$ZodType;
  options?: readonly z.core.$ZodType[];
  left?: z.core.$ZodType;
  right?: z.core.$ZodType;
  getter?: () => z.core.$ZodType;
  values?: readonly unknown[];
}

const defOf = (schema: z.core.$ZodType) => schema._zod.def as unknown as SchemaDef;

/** `value[key]` when `value` is an object or array, else undefined. */
function child(value: unknown, key: PropertyKey): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<PropertyKey, unknown>)[key]
    : undefined;
}

/** The object schema under wrappers (optional, default, refinements...), if `schema` is one. */
function objectDef(schema: z.core.$ZodType): SchemaDef | undefined {
  const def = defOf(schema);
  if (def.type === 'object') return def;
  return def.innerType ? objectDef(def.innerType) : undefined;
}

/**
 * Whether `value` can be meant for a union option: every literal field of an object option
 * (a discriminator such as `type: sqlite`) that `value` sets matches it.
 */
function fits(option: z.core.$ZodType, value: unknown): boolean {
  const def = objectDef(option);
  if (!def?.shape) return true;
  return Object.entries(def.shape).every(([key, field]) => {
    const literal = defOf(field);
    const given = child(value, key);
    return literal.type !== 'literal' || given === undefined || (literal.values ?? []).includes(given);
  });
}

/**
 * The object schemas found at `path` inside `schema`, following `value` (the config as
 * written) to choose among union options; empty when the path leads to no object.
 */
function objectsAt(schema: z.core.$ZodType, path: readonly PropertyKey[], value: unknown): SchemaDef[] {
  const def = defOf(schema);
  const key = path[0];
  if (key === undefined) return def.type === 'object' ? [def] : objectsBelow(def, path, value);
  const next = (s: z.core.$ZodType | undefined) => (s ? objectsAt(s, path.slice(1), child(value, key)) : []);
  switch (def.type) {
    case 'object':
      return next(def.shape?.[String(key)]);
    case 'array':
      return next(def.element);
    case 'tuple':
      return next(def.items?.[Number(key)]);
    case 'record':
      return next(def.valueType);
    default:
      return objectsBelow(def, path, value);
  }
}

/** Looks through a schema that wraps others (unions, optional, default, pipes...) for `objectsAt`. */
function objectsBelow(def: SchemaDef, path: readonly PropertyKey[], value: unknown): SchemaDef[] {
  switch (def.type) {
    case 'union': {
      const options = def.options ?? [];
      const fitting = options.filter((o) => fits(o, value));
      return (fitting.length > 0 ? fitting : options).flatMap((o) => objectsAt(o, path, value));
    }
    case 'intersection':
      return [def.left, def.right].flatMap((s) => (s ? objectsAt(s, path, value) : []));
    case 'pipe':
      return [def.in, def.out].flatMap((s) => (s ? objectsAt(s, path, value) : []));
    case 'lazy':
      return def.getter ? objectsAt(def.getter(), path, value) : [];
    default:
      return def.innerType ? objectsAt(def.innerType, path, value) : [];
  }
}

/** The keys the object at `path` accepts (every fitting union option's keys). */
function keysAt(path: readonly PropertyKey[], input: unknown): string[] {
  return [...new Set(objectsAt(FleetConfig, path, input).flatMap((d) => Object.keys(d.shape ?? {})))];
}

/** How a value found in the config reads in a message: strings quoted (URLs cut after the host, long ones shortened). */
function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    // Never echo a URL's path or query: it may carry a token (a webhook URL in the wrong place).
    const url = /^([a-z][a-z0-9+.-]*:\/\/[^/?#\s]*)[/?#]./i.exec(value);
    if (url) return `"${url[1]}/…"`;
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 39)}…` : value);
  }
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** zod's type names as a config's author reads them. */
const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  date: 'a date',
};

/** zod's string formats as a config's author reads them. */
const FORMAT_WORDS: Record<string, string> = {
  email: 'an email address',
  url: 'a URL',
  uuid: 'a uuid',
  guid: 'a uuid',
  date: 'a date like 2027-06-30',
  datetime: 'a date and time like 2027-06-30T12:00:00Z',
};

/**
 * What the field expects: the schema's own message (`expected a positive integer`), or, for
 * zod's generic English ones (`Invalid input: expected number, received string`), a rewording.
 */
function expectation(issue: z.core.$ZodIssue): string {
  if (!/^[A-Z]/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      return `expected ${values.length === 1 ? values[0] : `one of ${values.join(', ')}`}`;
    }
    case 'invalid_format':
      return issue.format === 'regex' && issue.pattern
        ? `expected a value matching ${issue.pattern}`
        : `expected ${FORMAT_WORDS[issue.format] ?? `a valid ${issue.format}`}`;
    case 'too_small':
    case 'too_big': {
      const [bound, limit] =
        issue.code === 'too_small' ? ['at least', issue.minimum] : ['at most', issue.maximum];
      const exclusive = issue.inclusive === false;
      if (issue.origin === 'array' || issue.origin === 'set') return `expected ${bound} ${limit} item(s)`;
      if (issue.origin === 'string') return `expected ${bound} ${limit} character(s)`;
      const op = issue.code === 'too_small' ? (exclusive ? '>' : '>=') : exclusive ? '<' : '<=';
      return `expected a number ${op} ${limit}`;
    }
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

/** `; did you mean "x"?` for a mistyped string among `choices`, else ''. */
function suggestion(found: unknown, choices: readonly unknown[]): string {
  if (typeof found !== 'string') return '';
  return didYouMean(
    found,
    choices.filter((c): c is string => typeof c === 'string'),
  );
}

const isContainer = (value: unknown) => typeof value === 'object' && value !== null;

/** Types whose wrong value is described by its type only. */
const CONTAINER_TYPES = new Set(['object', 'record', 'array']);

/** `a string`, `a number`, `true`: what a value is, without what it says. */
function typeOf(value: unknown): string {
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'a number';
  return describeValue(value);
}

/** Issue codes whose message says what the field expects, so `, found <value>` completes it. */
const VALUE_CODES = new Set(['invalid_type', 'invalid_value', 'invalid_format', 'too_small', 'too_big']);

/**
 * One readable message per zod issue: what was expected and what was found (`expected a
 * positive integer, found "sixty"`), a near match for a mistyped key or choice, and one issue
 * per unknown key, at the key's own path. `input` is the config as written.
 */
function toIssues(error: z.ZodError, input: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  // Keys an unknown key was surely meant as: their own "required" issue would say the same twice.
  const typoed = new Set<string>();
  for (const issue of error.issues) {
    const path = dotted(issue.path);
    if (issue.code === 'unrecognized_keys') {
      // Keys the object already has are not what a typo meant.
      const valid = keysAt(issue.path, input).filter((k) => child(issue.input, k) === undefined);
      for (const key of issue.keys) {
        const near = didYouMean(key, valid);
        const meant = /^; did you mean "([^"]+)"\?$/.exec(near)?.[1];
        if (meant) typoed.add(dotted([...issue.path, meant]));
        const message =
          near || valid.length === 0
            ? `unknown key${near}`
            : `unknown key (expected one of: ${valid.join(', ')})`;
        issues.push({ path: dotted([...issue.path, key]), message });
      }
      continue;
    }
    const found = issue.input;
    if (issue.path.length === 0 && (found === undefined || found === null)) {
      issues.push({
        path,
        message:
          'empty config: expected a mapping with version, clouds and jurisdictions (see fleet.example.yaml)',
      });
    } else if (issue.code === 'invalid_type' && found === undefined) {
      issues.push({ path, message: `required (${expectation(issue)})` });
    } else if (issue.code === 'invalid_union' && issue.discriminator !== undefined) {
      // A discriminated union's tag (`type: sqlit`): the issue sits at the tag, the input is its object.
      const tag = child(found, issue.discriminator);
      const choices = 'options' in issue ? (issue.options ?? []) : [];
      const what = tag === undefined ? 'nothing' : describeValue(tag);
      issues.push({ path, message: `${expectation(issue)}, found ${what}${suggestion(tag, choices)}` });
    } else if (
      (VALUE_CODES.has(issue.code) || (issue.code === 'invalid_union' && !isContainer(found))) &&
      found !== undefined &&
      expectation(issue).startsWith('expected')
    ) {
      const near = issue.code === 'invalid_value' ? suggestion(found, issue.values) : '';
      // Where a mapping was expected (a secret reference, say) the string found may be the secret itself.
      const shown =
        issue.code === 'invalid_type' && CONTAINER_TYPES.has(issue.expected)
          ? typeOf(found)
          : describeValue(found);
      issues.push({ path, message: `${expectation(issue)}, found ${shown}${near}` });
    } else {
      issues.push({ path, message: expectation(issue) });
    }
  }
  return issues.filter((i) => !(typoed.has(i.path) && i.message.startsWith('required')));
}

/** Where a config came from, when that is not a file whose directory its relative paths are in. */
export interface ConfigOrigin {
  /** The file its relative paths are relative to (default: the file named in errors). */
  pathsRelativeTo?: string | undefined;
}

/**
 * Validates an already-parsed config object; throws `ConfigError` naming every bad field.
 * `file` names the source in errors; relative paths are resolved against its directory, or
 * against `origin.pathsRelativeTo`'s when given (a config fetched from AppConfig).
 */
export function parseConfig(input: unknown, file?: string, origin: ConfigOrigin = {}): FleetConfig {
  // reportInput: the issues carry the value found, to say it (and to tell missing from wrong).
  const result = FleetConfig.safeParse(input, { reportInput: true });
  if (!result.success) throw new ConfigError(toIssues(result.error, input), file);
  const issues = [...regionIssues(result.data), ...residencyIssues(result.data)];
  if (issues.length > 0) throw new ConfigError(issues, file);
  return resolvePaths(result.data, origin.pathsRelativeTo ?? file);
}

const CLOUD_NAMES: Record<RegionCloud, string> = { aws: 'AWS', gcp: 'GCP', azure: 'Azure' };

/** Whether the region table lists `region` for `cloud`, spelled exactly as the cloud does. */
function knownRegion(cloud: RegionCloud, region: string): boolean {
  return Object.hasOwn(REGIONS[cloud], region);
}

/**
 * `unknown AWS region "eu-centrall-1"; did you mean "eu-central-1"?`, or, for another cloud's
 * region, `unknown AWS region "europe-west3" (a GCP region)`.
 */
function unknownRegion(cloud: RegionCloud, region: string): string {
  const other = (Object.keys(REGIONS) as RegionCloud[]).find((c) => c !== cloud && knownRegion(c, region));
  const hint = other ? ` (a ${CLOUD_NAMES[other]} region)` : didYouMean(region, Object.keys(REGIONS[cloud]));
  return `unknown ${CLOUD_NAMES[cloud]} region "${region}"${hint}`;
}

/**
 * Every region the config names, checked against the region table (`shared/residency/`):
 * a mistyped region would otherwise only fail at run time, as an API error or a residency
 * refusal. Kubeconfig contexts may name a zone (`europe-west1-b`); a context with a country
 * is on premises and its region is free-form.
 */
function regionIssues(config: FleetConfig): ConfigIssue[] {
  const fields: { path: string; cloud: RegionCloud; region: string | undefined }[] = [];
  const { aws, azure, kubeconfig } = config.clouds;
  if (aws) {
    fields.push({ path: 'clouds.aws.homeRegion', cloud: 'aws', region: aws.homeRegion });
    aws.accounts.forEach((account, i) => {
      if (account.regions === 'all') return;
      account.regions.forEach((region, k) => {
        fields.push({ path: `clouds.aws.accounts.${i}.regions.${k}`, cloud: 'aws', region });
      });
    });
  }
  if (azure?.credential.type === 'aws-federation') {
    const region = azure.credential.stsRegion;
    fields.push({ path: 'clouds.azure.credential.stsRegion', cloud: 'aws', region });
  }
  if (config.state.type === 'dynamodb')
    fields.push({ path: 'state.region', cloud: 'aws', region: config.state.region });
  for (const [id, j] of Object.entries(config.jurisdictions)) {
    const at = `jurisdictions.${id}.evidence`;
    fields.push(
      { path: `${at}.aws.region`, cloud: 'aws', region: j.evidence?.aws?.region },
      { path: `${at}.gcp.location`, cloud: 'gcp', region: j.evidence?.gcp?.location },
      { path: `${at}.azure.region`, cloud: 'azure', region: j.evidence?.azure?.region },
    );
  }
  const issues = fields.flatMap(({ path, cloud, region }) =>
    region === undefined || knownRegion(cloud, region)
      ? []
      : [{ path, message: unknownRegion(cloud, region) }],
  );
  kubeconfig?.forEach((source, i) => {
    source.contexts.forEach((ctx, k) => {
      if (ctx.country !== undefined) return;
      const path = `clouds.kubeconfig.${i}.contexts.${k}`;
      if (ctx.cloud === undefined) {
        issues.push({
          path: `${path}.cloud`,
          message: 'expected the cloud whose region names "region" uses, or a country',
        });
      } else if (regionCountry(ctx.cloud, ctx.region) === undefined) {
        issues.push({
          path: `${path}.region`,
          message: `${unknownRegion(ctx.cloud, ctx.region)} (for an on-premises cluster, give its country)`,
        });
      }
    });
  });
  return issues;
}

/**
 * Checks the schema cannot express: jurisdictions that claim the same country (presets
 * included), evidence buckets outside their jurisdiction.
 * Exceptions count as live here whatever their expiry: an expired one is a finding at run
 * time and a refusal at write time, not a reason to stop every job from loading the config.
 */
function residencyIssues(config: FleetConfig): ConfigIssue[] {
  let residency: Residency;
  try {
    residency = new Residency(config.jurisdictions, { now: () => new Date(0) });
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  const issues: ConfigIssue[] = [];
  for (const [id, j] of Object.entries(config.jurisdictions)) {
    const targets = [
      { cloud: 'aws', region: j.evidence?.aws?.region, path: 'evidence.aws.region' },
      { cloud: 'gcp', region: j.evidence?.gcp?.location, path: 'evidence.gcp.location' },
      { cloud: 'azure', region: j.evidence?.azure?.region, path: 'evidence.azure.region' },
    ] as const;
    for (const t of targets) {
      // A region the table does not know is reported once, by regionIssues.
      if (t.region === undefined || !knownRegion(t.cloud, t.region)) continue;
      try {
        residency.assertResidency(
          { jurisdiction: id },
          { cloud: t.cloud, region: t.region, what: 'evidence bucket' },
        );
      } catch (error) {
        if (!(error instanceof ResidencyError)) throw error;
        issues.push({ path: `jurisdictions.${id}.${t.path}`, message: error.message });
      }
    }
  }
  issues.push(...tagPolicyIssues(config));
  return issues;
}

/**
 * Tag policy keys that one cloud cannot hold apart (two keys becoming one GCP label, or one
 * Azure key ignoring case), and keys or defaults that break a cloud's rules.
 */
function tagPolicyIssues(config: FleetConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const keys = [...Object.keys(config.policies.tags.required), ...config.policies.tags.derived];
  // Only the clouds the fleet uses constrain its tags.
  for (const cloud of (['aws', 'gcp', 'azure'] as const).filter((c) => config.clouds[c] !== undefined)) {
    const seen = new Map<string, string>();
    for (const key of keys) {
      const path =
        key in config.policies.tags.required ? `policies.tags.required.${key}` : 'policies.tags.derived';
      const same = comparableKey(cloud, key);
      const other = seen.get(same);
      if (other !== undefined && other !== key) {
        const what =
          cloud === 'gcp' ? `both become GCP label "${same}"` : `${cloud} does not tell them apart`;
        issues.push({ path, message: `keys "${other}" and "${key}" collide: ${what}` });
      }
      seen.set(same, key);
      const value = config.policies.tags.required[key]?.default ?? '';
      // GCP keys are written in their label form; values are written as they are everywhere.
      for (const problem of tagProblems(cloud, cloud === 'gcp' ? gcpLabelKey(key) : key, value)) {
        issues.push({ path, message: `${cloud}: ${problem}` });
      }
    }
  }
  return issues;
}

/** Relative file paths in the config (kubeconfig files, CA files, sqlite path) are relative to the config file. */
function resolvePaths(config: FleetConfig, file: string | undefined): FleetConfig {
  if (!file) return config;
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) || p === ':memory:' ? p : resolve(base, p));
  for (const source of config.clouds.kubeconfig ?? []) source.file = abs(source.file);
  if (config.clouds.aws?.credentials?.file)
    config.clouds.aws.credentials.file = abs(config.clouds.aws.credentials.file);
  const azureCredential = config.clouds.azure?.credential;
  if (azureCredential?.type === 'access-token' && azureCredential.file)
    azureCredential.file = abs(azureCredential.file);
  if (config.clouds.azure?.storageKeyFile)
    config.clouds.azure.storageKeyFile = abs(config.clouds.azure.storageKeyFile);
  if (config.clouds.azure?.caFile) config.clouds.azure.caFile = abs(config.clouds.azure.caFile);
  if (config.clouds.gcp?.credentialsFile)
    config.clouds.gcp.credentialsFile = abs(config.clouds.gcp.credentialsFile);
  for (const o of config.kubeAccess.overrides) if (o.caFile) o.caFile = abs(o.caFile);
  if (config.kubeAccess.gcp.auth === 'token-file')
    config.kubeAccess.gcp.file = abs(config.kubeAccess.gcp.file);
  if (config.state.type === 'sqlite') config.state.path = abs(config.state.path);
  return config;
}

/**
 * Parses YAML (or JSON, which YAML reads too) text; a syntax error becomes an issue at
 * `<file>:<line>:<column>` (`(yaml)` when the text has no file name) saying why, once.
 */
export function parseConfigText(text: string, file?: string, origin: ConfigOrigin = {}): FleetConfig {
  const lineCounter = new LineCounter();
  // Not prettyErrors: its messages repeat the position and add a code frame.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        const reason = /^[A-Z][a-z]/.test(e.message)
          ? e.message[0]!.toLowerCase() + e.message.slice(1)
          : e.message;
        return { path: `${file ?? '(yaml)'}:${line}:${col}`, message: reason };
      }),
      file,
    );
  }
  return parseConfig(doc.toJS(), file, origin);
}

const READ_ERRORS: Record<string, string> = {
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/** Whether `error` says the config file does not exist (a first run: the CLI explains what to do). */
export function isMissingConfig(error: unknown): error is ConfigError {
  return (
    error instanceof ConfigError &&
    error.issues.length === 1 &&
    error.issues[0]?.path === '(file)' &&
    (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
  );
}

/** Reads and validates a config file. */
export async function loadConfig(file: string): Promise<FleetConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new ConfigError(
      [
        {
          path: '(file)',
          message:
            code === 'ENOENT'
              ? `no such file: ${file}`
              : `cannot read ${file}: ${READ_ERRORS[code ?? ''] ?? code}`,
        },
      ],
      file,
      { cause },
    );
  }
  return parseConfigText(text, file);
}

/** The JSON Schema of `fleet.yaml` (input form: defaults make fields optional), for editors and CI linting. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://fleetward.dev/schemas/fleet.schema.json',
    title: 'Fleetward fleet.yaml',
    ...z.toJSONSchema(FleetConfig, { io: 'input', unrepresentable: 'any' }),
  };
}
