/**
 * What every `fleetward onboard` generator shares: its input (the permission table, the
 * function catalogue, the validated fleet.yaml and the command's options), its output (named
 * artefacts and notes for the operator), the deployments a fleet.yaml implies and the IAM role
 * of each deployed function (named by shared/deploy/generate.ts `roleName`).
 *
 * Generators are pure: no clock, no network, no file system. Only deploy-time tools and tests
 * import this module, never a Lambda handler.
 */
import type { PermissionGrant, PermissionProvider } from '../../clouds/permissions.ts';
import type { FleetConfig } from '../../config/schema.ts';
import { Residency } from '../../residency/index.ts';
import { FleetwardError, ResidencyError } from '../../runtime/errors.ts';
import { allCapabilities, capabilitiesIn, type DeploymentRole, type FunctionSpec } from '../functions.ts';
import { deploymentId, roleName } from '../generate.ts';

/** Options every target takes (the CLI fills them from its flags). */
export interface OnboardOptions {
  /** The deployment stage the functions were deployed with (`--stage`; default: fleet.yaml's `stage`). */
  stage: string;
  /** Region of the home deployment (`--home-region`; default: `clouds.aws.homeRegion`). */
  homeRegion?: string | undefined;
  /** Region of each jurisdiction's regional deployment (`--regional <id>=<region>`; default: its evidence bucket's AWS region). */
  regionalRegions?: Readonly<Record<string, string>> | undefined;
  /** The AWS account the Fleetward functions run in (`--fleetward-account`); needed by gcp and azure. */
  fleetwardAccountId?: string | undefined;
  /** The AWS account's outbound identity federation issuer URL (`--issuer`); needed by azure. */
  issuer?: string | undefined;
  /** GCP project that holds the Workload Identity Pool and the service account (`--pool-project`). */
  poolProject?: string | undefined;
  /** GCP organization to create the custom role in once, instead of in every project (`--organization`). */
  organization?: string | undefined;
  /** The date residency exceptions are judged on (injected for tests). */
  now?: () => Date;
}

/** Everything a generator reads. */
export interface OnboardInput {
  grants: readonly PermissionGrant[];
  functions: readonly FunctionSpec[];
  config: FleetConfig;
  options: OnboardOptions;
}

/** One ready-to-apply file. */
export interface Artefact {
  /** File name under `--out` (also the heading on stdout when a target prints several). */
  file: string;
  /** One line: what it is and where to apply it. */
  title: string;
  content: string;
}

/** What a target prints: its artefacts, and notes the operator should read (printed on stderr). */
export interface OnboardResult {
  artefacts: Artefact[];
  notes: string[];
}

/** A generator: a pure function of the permission table, the catalogue, the config and the options. */
export type Generator = (input: OnboardInput) => OnboardResult;

/** Onboarding cannot produce a correct artefact from this config and these options; the message names the field or flag to set. */
export class OnboardError extends FleetwardError {
  /** The config path or command-line flag to fix. */
  readonly field: string;
  constructor(message: string, field: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OnboardError';
    this.field = field;
  }
}

/** One deployment of the service: the home one, or a regional one per jurisdiction. */
export interface Deployment {
  role: DeploymentRole;
  /** `home`, or the jurisdiction id of a regional deployment: part of its stack, function and role names. */
  id: string;
  /** The jurisdiction a regional deployment serves. */
  jurisdiction?: string;
  region: string;
}

/** The `serverless deploy` parameters of a deployment (without `--stage`). */
export function deployArgs(d: Deployment): string {
  return d.role === 'home'
    ? `--param role=home --region ${d.region}`
    : `--param role=regional --param jurisdiction=${d.jurisdiction} --region ${d.region}`;
}

/**
 * The deployments a fleet.yaml implies: the home one in the home region and one regional
 * deployment per jurisdiction, each in a region the residency guard accepts for that
 * jurisdiction (its audit logs are processed there).
 *
 * @throws OnboardError when the home region or a jurisdiction's region is unknown, or a
 *   regional region lies outside its jurisdiction.
 */
export function deployments(config: FleetConfig, options: OnboardOptions): Deployment[] {
  const home = options.homeRegion ?? config.clouds.aws?.homeRegion;
  if (!home) {
    throw new OnboardError(
      'the home region is unknown: pass --home-region or set clouds.aws.homeRegion',
      '--home-region',
    );
  }
  const residency = new Residency(config.jurisdictions, options.now ? { now: options.now } : {});
  const result: Deployment[] = [{ role: 'home', id: deploymentId('home'), region: home }];
  for (const [id, j] of Object.entries(config.jurisdictions)) {
    const region = options.regionalRegions?.[id] ?? j.evidence?.aws?.region;
    if (!region) {
      throw new OnboardError(
        `the region of jurisdiction "${id}"'s regional deployment is unknown: pass --regional ${id}=<aws region> or set jurisdictions.${id}.evidence.aws.region`,
        `--regional ${id}`,
      );
    }
    try {
      residency.assertResidency({ jurisdiction: id }, { cloud: 'aws', region, what: 'regional deployment' });
    } catch (error) {
      if (error instanceof ResidencyError)
        throw new OnboardError(error.message, `--regional ${id}`, { cause: error });
      throw error;
    }
    result.push({ role: 'regional', id: deploymentId('regional', id), jurisdiction: id, region });
  }
  return result;
}

/** The grants of one provider held by the member identity (reader role, custom roles, ClusterRole). */
export function memberGrants(
  grants: readonly PermissionGrant[],
  provider: PermissionProvider,
): PermissionGrant[] {
  return grants.filter((g) => g.provider === provider && g.holder === 'member');
}

/** The functions that use a member grant of the provider: the only ones the member identity trusts. */
export function functionsNeedingMember(
  input: Pick<OnboardInput, 'grants' | 'functions'>,
  provider: PermissionProvider,
): FunctionSpec[] {
  const capabilities = new Set(memberGrants(input.grants, provider).map((g) => g.capability));
  return input.functions.filter((f) => allCapabilities(f).some((c) => capabilities.has(c)));
}

/** One deployed function role: which function, in which deployment, under which name. */
export interface FunctionRole {
  fn: string;
  deployment: Deployment;
  name: string;
}

/**
 * The roles of the functions that need member access on a provider, in every deployment that
 * deploys them (a function of both roles has one role in the home and one in each regional
 * deployment), sorted by name: `roleName(stage, deployment, function)` of shared/deploy/generate.ts,
 * the names the deployments give them.
 */
export function memberFunctionRoles(
  input: OnboardInput,
  provider: PermissionProvider,
  only?: Deployment,
): FunctionRole[] {
  const deployed = only ? [only] : deployments(input.config, input.options);
  const needed = new Set(memberGrants(input.grants, provider).map((g) => g.capability));
  const roles = functionsNeedingMember(input, provider).flatMap((f) =>
    deployed
      .filter((d) => f.roles.includes(d.role) && capabilitiesIn(f, d.role).some((c) => needed.has(c)))
      .map((d) => ({
        fn: f.name,
        deployment: d,
        name: roleName(input.options.stage, d.id, f.name),
      })),
  );
  return uniqueBy(roles, (r) => r.name).sort((a, b) => a.name.localeCompare(b.name));
}

/** Sorted, de-duplicated strings. */
export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The Fleetward AWS account id, or an error naming the flag. */
export function requireFleetwardAccount(options: OnboardOptions): string {
  const account = options.fleetwardAccountId;
  if (!account) {
    throw new OnboardError(
      'the Fleetward AWS account is unknown: pass --fleetward-account <12-digit account id>',
      '--fleetward-account',
    );
  }
  if (!/^\d{12}$/.test(account)) {
    throw new OnboardError(
      `--fleetward-account "${account}" is not a 12-digit AWS account id`,
      '--fleetward-account',
    );
  }
  return account;
}

/** Quotes a value for a POSIX shell (single quotes). */
export function shq(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A shell script: strict mode, a header comment, then the lines. */
export function script(header: string[], lines: string[]): string {
  return ['#!/usr/bin/env bash', 'set -euo pipefail', ...header.map((h) => `# ${h}`), '', ...lines, ''].join(
    '\n',
  );
}
