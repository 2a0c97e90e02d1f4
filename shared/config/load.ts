/**
 * Loading and validating `fleet.yaml`: parse YAML, validate with the strict schema,
 * and turn every problem into a `ConfigIssue` that names the dotted path of the bad field.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { Residency, regionCountry } from '../residency/index.ts';
import { ConfigError, type ConfigIssue, ResidencyError } from '../runtime/errors.ts';
import { comparableKey, gcpLabelKey, tagProblems } from '../tags/rules.ts';
import { FleetConfig } from './schema.ts';

/** Where the CLI looks for the config when `--config` is not given. */
export const DEFAULT_CONFIG_FILE = 'fleet.yaml';

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || '(root)';
}

/** One readable message per zod issue; unknown keys get one issue per key, at the key's own path. */
function toIssues(error: z.ZodError): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        issues.push({ path: dotted([...issue.path, key]), message: 'unknown key' });
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      issues.push({ path: dotted(issue.path), message: `required (${issue.message})` });
    } else {
      issues.push({ path: dotted(issue.path), message: issue.message });
    }
  }
  return issues;
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
  const result = FleetConfig.safeParse(input);
  if (!result.success) throw new ConfigError(toIssues(result.error), file);
  const issues = residencyIssues(result.data);
  if (issues.length > 0) throw new ConfigError(issues, file);
  return resolvePaths(result.data, origin.pathsRelativeTo ?? file);
}

/**
 * Checks the schema cannot express: jurisdictions that claim the same country (presets
 * included), evidence buckets outside their jurisdiction, kubeconfig regions we cannot place.
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
      if (t.region === undefined) continue;
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
  config.clouds.kubeconfig?.forEach((source, i) => {
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
          message: `unknown ${ctx.cloud} region "${ctx.region}"; give a country for on-premises clusters`,
        });
      }
    });
  });
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

/** Parses YAML (or JSON, which YAML reads too) text; syntax errors become issues with line and column. */
export function parseConfigText(text: string, file?: string, origin: ConfigOrigin = {}): FleetConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: '(yaml)',
        message: `${e.message.split('\n')[0]}${e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ''}`,
      })),
      file,
    );
  }
  return parseConfig(doc.toJS(), file, origin);
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
          message: code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${code}`,
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
