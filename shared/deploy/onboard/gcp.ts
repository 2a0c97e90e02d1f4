/**
 * `fleetward onboard gcp`: the custom role (YAML for `gcloud iam roles create --file`), the
 * Workload Identity Pool with its AWS provider, the service account the Fleetward function
 * roles impersonate, and the bindings, as a gcloud script.
 *
 * - Pool, provider and pool project number come from `clouds.gcp.workloadIdentity` when it is
 *   set (the values Fleetward federates with at run time), else from the defaults below.
 * - The provider trusts only the Fleetward AWS account, and its attribute condition only
 *   sessions of roles named `fleetward-<stage>-...` (every deployment's function roles).
 * - `roles/iam.workloadIdentityUser` on the service account goes to exactly the function roles
 *   that use a member GCP grant (one `principalSet` per role, on the `aws_role` attribute).
 * - The custom role (every `member` GCP grant) is granted to the service account on every
 *   project fleet.yaml lists; with a `workloadIdentity` block that names no service account,
 *   to each function role's principalSet directly.
 * - With `workloadIdentity`, the `external_account` configuration Fleetward builds from it
 *   (`gcpExternalAccountConfig`), to compare with what `gcloud iam workload-identity-pools
 *   create-cred-config` prints; nothing needs to store it.
 *
 * Attribute mapping and `principalSet` format: Google's "Configure Workload Identity Federation
 * with AWS" (test/fixtures/onboard/README.md).
 */
import { stringify } from 'yaml';
import { gcpExternalAccountConfig } from '../../clouds/gcp/federation.ts';
import type { GcpConfig } from '../../config/schema.ts';
import {
  type Generator,
  memberFunctionRoles,
  memberGrants,
  OnboardError,
  requireFleetwardAccount,
  script,
  shq,
  sortedUnique,
} from './common.ts';

/** Custom role ids: letters, digits, `_` and `.`, 3 to 64 characters (IAM `roles.create`). */
export const GCP_ROLE_ID = /^[a-zA-Z0-9_.]{3,64}$/;

/** The pool and provider ids Fleetward uses. */
export const GCP_POOL_ID = 'fleetward';
export const GCP_PROVIDER_ID = 'fleetward-aws';
export const GCP_SERVICE_ACCOUNT_ID = 'fleetward';

/**
 * Google's attribute mapping for AWS providers: `aws_role` is the role's session ARN without
 * the session name (`arn:aws:sts::<account>:assumed-role/<role>`).
 */
export const GCP_AWS_ATTRIBUTE_MAPPING =
  "google.subject=assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn";

/**
 * The project of the Workload Identity Pool: `--pool-project`, else the project of the
 * configured service account, else the first project of fleet.yaml.
 */
export function gcpPoolProject(gcp: GcpConfig, poolProject: string | undefined): string {
  const sa = gcp.workloadIdentity?.serviceAccount;
  const saProject = sa ? /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(sa)?.[1] : undefined;
  return poolProject ?? saProject ?? gcp.projects[0]!.id;
}

/**
 * The service account the function roles impersonate: `clouds.gcp.workloadIdentity.serviceAccount`,
 * else `fleetward@<pool project>`; undefined when a workloadIdentity block names none (the
 * federated principals then hold the roles themselves).
 */
export function gcpServiceAccount(gcp: GcpConfig, poolProject: string | undefined): string | undefined {
  const wi = gcp.workloadIdentity;
  if (wi) return wi.serviceAccount;
  return `${GCP_SERVICE_ACCOUNT_ID}@${gcpPoolProject(gcp, poolProject)}.iam.gserviceaccount.com`;
}

/** The custom role id for a stage: `fleetward_<stage>` with `-` as `_`. */
export function gcpRoleId(stage: string): string {
  return `fleetward_${stage.replace(/-/g, '_')}`;
}

export const onboardGcp: Generator = (input) => {
  const gcp = input.config.clouds.gcp;
  if (!gcp) throw new OnboardError('fleet.yaml configures no GCP project', 'clouds.gcp');
  const account = requireFleetwardAccount(input.options);
  // The identity grant (impersonating the service account) comes from roles/iam.workloadIdentityUser
  // on that one account, below; in a project-wide role it would reach every service account.
  const grants = memberGrants(input.grants, 'gcp').filter((g) => g.capability !== 'identity');
  if (grants.length === 0) {
    throw new OnboardError(
      'the permission table has no member GCP grant: nothing to put in the custom role',
      'grants',
    );
  }
  const stage = input.options.stage;
  const roleId = gcpRoleId(stage);
  if (!GCP_ROLE_ID.test(roleId)) throw new OnboardError(`custom role id "${roleId}" is not valid`, '--stage');
  const wi = gcp.workloadIdentity;
  const poolId = wi?.poolId ?? GCP_POOL_ID;
  const providerId = wi?.providerId ?? GCP_PROVIDER_ID;
  const poolProject = gcpPoolProject(gcp, input.options.poolProject);
  const pool = gcp.projects.find((p) => p.id === poolProject);
  const knownNumber = wi?.projectNumber ?? pool?.number;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable the script sets
  const poolNumber = knownNumber ?? '${POOL_PROJECT_NUMBER}';
  const serviceAccount = gcpServiceAccount(gcp, input.options.poolProject);
  // With a workloadIdentity block and no service account, the principals get the role themselves.
  const direct = serviceAccount === undefined;
  const roles = memberFunctionRoles(input, 'gcp');
  const principal = (role: string) =>
    `principalSet://iam.googleapis.com/projects/${poolNumber}/locations/global/workloadIdentityPools/${poolId}/attribute.aws_role/arn:aws:sts::${account}:assumed-role/${role}`;

  const roleFile = `${roleId}.role.yaml`;
  const role = {
    title: `Fleetward (${stage})`,
    description: `What Fleetward (${stage}) calls in each project: ${sortedUnique(grants.map((g) => g.capability)).join(', ')}`,
    stage: 'GA',
    includedPermissions: sortedUnique(grants.map((g) => g.permission)),
  };

  const org = input.options.organization;
  const roleName = (project: string) =>
    org ? `organizations/${org}/roles/${roleId}` : `projects/${project}/roles/${roleId}`;
  const condition = `attribute.aws_role.startsWith('arn:aws:sts::${account}:assumed-role/fleetward-${stage}-')`;
  const lines: string[] = [];
  lines.push('# 1. The custom role, from the YAML file next to this script.');
  if (org) {
    lines.push(`gcloud iam roles create ${roleId} --organization=${shq(org)} --file=${roleFile}`);
  } else {
    for (const p of gcp.projects)
      lines.push(`gcloud iam roles create ${roleId} --project=${shq(p.id)} --file=${roleFile}`);
  }
  lines.push('', `# 2. The Workload Identity Pool and its AWS provider in ${poolProject}.`);
  if (!knownNumber) {
    lines.push(
      `POOL_PROJECT_NUMBER=$(gcloud projects describe ${shq(poolProject)} --format='value(projectNumber)')`,
    );
  }
  lines.push(
    `gcloud iam workload-identity-pools create ${poolId} --project=${shq(poolProject)} --location=global --display-name=${shq(`Fleetward (${stage})`)}`,
    `gcloud iam workload-identity-pools providers create-aws ${providerId} --project=${shq(poolProject)} --location=global --workload-identity-pool=${poolId} --account-id=${account} --attribute-mapping=${shq(GCP_AWS_ATTRIBUTE_MAPPING)} --attribute-condition=${shq(condition)}`,
  );
  if (direct) {
    lines.push(
      '',
      `# 3. The custom role for each of these ${roles.length} function role(s), on every project fleet.yaml lists.`,
    );
    for (const p of gcp.projects) {
      for (const r of roles) {
        lines.push(
          `gcloud projects add-iam-policy-binding ${shq(p.id)} --member="${principal(r.name)}" --role=${roleName(p.id)} --condition=None`,
        );
      }
    }
  } else {
    lines.push(
      '',
      '# 3. The service account the Fleetward function roles impersonate.',
      `gcloud iam service-accounts create ${serviceAccount!.split('@')[0]} --project=${shq(poolProject)} --display-name=${shq(`Fleetward (${stage})`)}`,
      '',
      `# 4. Only these ${roles.length} function role(s) may impersonate it.`,
    );
    for (const r of roles) {
      lines.push(
        `gcloud iam service-accounts add-iam-policy-binding ${serviceAccount} --project=${shq(poolProject)} --role=roles/iam.workloadIdentityUser --member="${principal(r.name)}"`,
      );
    }
    lines.push('', '# 5. The custom role on every project fleet.yaml lists.');
    for (const p of gcp.projects) {
      lines.push(
        `gcloud projects add-iam-policy-binding ${shq(p.id)} --member=serviceAccount:${serviceAccount} --role=${roleName(p.id)} --condition=None`,
      );
    }
  }
  const notes = [
    direct
      ? `GKE RBAC: bind the federated principals (principalSet members above) in each GKE cluster, or add a service account to clouds.gcp.workloadIdentity.`
      : `GKE RBAC: 'fleetward onboard kubernetes' binds ${serviceAccount} in each GKE cluster.`,
    'Fleetward builds the external_account credential configuration for this pool and provider itself (clouds.gcp.workloadIdentity); no key file is created or stored.',
  ];
  if (!wi) {
    notes.push(
      `fleet.yaml has no clouds.gcp.workloadIdentity: the script uses pool ${poolId} and provider ${providerId} in ${poolProject}; add the block (projectNumber: ${knownNumber ?? "<the pool project's number>"}, poolId: ${poolId}, providerId: ${providerId}, serviceAccount: ${serviceAccount}) so the functions federate with them.`,
    );
  }
  const external = wi
    ? [
        {
          file: 'gcp-external-account.json',
          title:
            'the external_account configuration Fleetward builds from clouds.gcp.workloadIdentity (for checking; not needed at run time)',
          content: `${JSON.stringify(gcpExternalAccountConfig(gcp), null, 2)}\n`,
        },
      ]
    : [];
  return {
    artefacts: [
      {
        file: roleFile,
        title: `GCP custom role ${roleId} (gcloud iam roles create --file)`,
        content: stringify(role),
      },
      {
        file: 'gcp-onboard.sh',
        title:
          'gcloud commands: custom role, Workload Identity Pool and AWS provider, service account, bindings',
        content: script(
          [
            `Fleetward (${stage}) in GCP: run with gcloud as a project owner (or an organization admin with --organization).`,
            `Functions: ${roles.length} role(s) in AWS account ${account}; projects: ${gcp.projects.map((p) => p.id).join(', ')}.`,
          ],
          lines,
        ),
      },
      ...external,
    ],
    notes,
  };
};
