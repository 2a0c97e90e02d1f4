/**
 * `fleetward onboard kubernetes`: the RBAC Fleetward needs inside every cluster (Velero
 * Backups and Restores, drill namespaces, reading workloads), generated from the Kubernetes
 * grants of the permission table, bound to the group `fleetward`; and the EKS access entries
 * that put the member accounts' reader role in that group.
 *
 * A grant's permission is `[<group>/]<resource>[/<subresource>]:<verb>` (`velero.io/backups:create`,
 * `namespaces:delete`, `apps/deployments:list`). Velero's resources live in Velero's namespace:
 * they go into a Role there; everything else into the ClusterRole.
 */
import { stringify } from 'yaml';
import type { PermissionGrant } from '../../clouds/permissions.ts';
import { type Generator, memberGrants, OnboardError, script, shq, sortedUnique } from './common.ts';
import { gcpServiceAccount } from './gcp.ts';

/** The Kubernetes group Fleetward's identities are bound through. */
export const KUBE_GROUP = 'fleetward';

/** API groups without a dot (the rest of the built-in ones have one: `rbac.authorization.k8s.io`). */
const UNDOTTED_GROUPS = new Set(['apps', 'batch', 'policy', 'autoscaling', 'extensions']);

/** A Kubernetes grant, parsed: a resource of an API group, or a non-resource URL (`/version`). */
export interface KubePermission {
  group: string;
  resource: string;
  verb: string;
  /** Set for a non-resource URL such as `/version`; `group` and `resource` are then empty. */
  nonResourceURL?: string;
}

/**
 * Parses `[<group>/]<resource>[/<subresource>]:<verb>`; the core group is `''`.
 *
 * @throws OnboardError when the permission has no verb or no resource.
 */
export function parseKubePermission(permission: string): KubePermission {
  const match = /^([^:]+):([a-z*]+)$/.exec(permission);
  if (!match) {
    throw new OnboardError(
      `kubernetes permission "${permission}" is not <group>/<resource>:<verb>`,
      'grants',
    );
  }
  const [, path, verb] = match as unknown as [string, string, string];
  if (path.startsWith('/')) return { group: '', resource: '', verb, nonResourceURL: path };
  const parts = path.split('/');
  const hasGroup = parts.length > 1 && (parts[0]!.includes('.') || UNDOTTED_GROUPS.has(parts[0]!));
  const group = hasGroup ? parts[0]! : '';
  const resource = (hasGroup ? parts.slice(1) : parts).join('/');
  if (!resource) throw new OnboardError(`kubernetes permission "${permission}" names no resource`, 'grants');
  return { group, resource, verb };
}

type Rule =
  | { apiGroups: string[]; resources: string[]; verbs: string[] }
  | { nonResourceURLs: string[]; verbs: string[] };

/** One rule per (group, resource) or non-resource URL, verbs sorted: easy to read and to diff. */
function rules(grants: readonly PermissionGrant[]): Rule[] {
  const byKey = new Map<string, { p: KubePermission; verbs: Set<string> }>();
  for (const g of grants) {
    const p = parseKubePermission(g.permission);
    const key = p.nonResourceURL ?? `${p.group}/${p.resource}`;
    const entry = byKey.get(key) ?? { p, verbs: new Set<string>() };
    entry.verbs.add(p.verb);
    byKey.set(key, entry);
  }
  return [...byKey.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, { p, verbs }]) =>
      p.nonResourceURL
        ? { nonResourceURLs: [p.nonResourceURL], verbs: sortedUnique(verbs) }
        : { apiGroups: [p.group], resources: [p.resource], verbs: sortedUnique(verbs) },
    );
}

const RBAC = 'rbac.authorization.k8s.io/v1';

export const onboardKubernetes: Generator = (input) => {
  const grants = memberGrants(input.grants, 'kubernetes');
  if (grants.length === 0) {
    throw new OnboardError('the permission table has no Kubernetes grant: nothing to bind', 'grants');
  }
  const stage = input.options.stage;
  const veleroNs = input.config.velero.namespace;
  const isVelero = (g: PermissionGrant) => parseKubePermission(g.permission).group === 'velero.io';
  const clusterGrants = grants.filter((g) => !isVelero(g));
  const veleroGrants = grants.filter(isVelero);
  const labels = { 'app.kubernetes.io/managed-by': 'fleetward', 'fleetward.io/stage': stage };
  const subjects: Record<string, string>[] = [
    { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: KUBE_GROUP },
  ];
  const gcp = input.config.clouds.gcp;
  if (gcp) {
    // GKE names a Google identity by its email; groups need Google Groups for RBAC, so bind the service account too.
    const serviceAccount = gcpServiceAccount(gcp, input.options.poolProject);
    if (serviceAccount) {
      subjects.push({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: serviceAccount });
    }
  }
  const docs: object[] = [];
  if (clusterGrants.length > 0) {
    docs.push(
      {
        apiVersion: RBAC,
        kind: 'ClusterRole',
        metadata: { name: 'fleetward', labels },
        rules: rules(clusterGrants),
      },
      {
        apiVersion: RBAC,
        kind: 'ClusterRoleBinding',
        metadata: { name: 'fleetward', labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'fleetward' },
        subjects,
      },
    );
  }
  if (veleroGrants.length > 0) {
    docs.push(
      {
        apiVersion: RBAC,
        kind: 'Role',
        metadata: { name: 'fleetward-velero', namespace: veleroNs, labels },
        rules: rules(veleroGrants),
      },
      {
        apiVersion: RBAC,
        kind: 'RoleBinding',
        metadata: { name: 'fleetward-velero', namespace: veleroNs, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'fleetward-velero' },
        subjects,
      },
    );
  }
  const rbac = docs.map((d) => stringify(d)).join('---\n');
  const artefacts = [
    {
      file: 'fleetward-rbac.yaml',
      title: 'Kubernetes RBAC: kubectl apply -f in every cluster Fleetward backs up or drills',
      content: `# What Fleetward (${stage}) does in each cluster: ${sortedUnique(grants.map((g) => g.capability)).join(', ')}.\n${rbac}`,
    },
  ];
  const aws = input.config.clouds.aws;
  if (aws) {
    const lines: string[] = [];
    for (const a of aws.accounts) {
      lines.push(
        `# Account ${a.id}${a.alias ? ` (${a.alias})` : ''}: run with credentials of that account (e.g. AWS_PROFILE).`,
      );
      const regions =
        a.regions === 'all'
          ? `$(aws ec2 describe-regions --region ${aws.homeRegion} --query 'Regions[].RegionName' --output text)`
          : a.regions.join(' ');
      lines.push(
        `for region in ${regions}; do`,
        `  for cluster in $(aws eks list-clusters --region "$region" --query 'clusters[]' --output text); do`,
        `    aws eks create-access-entry --region "$region" --cluster-name "$cluster" --principal-arn ${shq(a.roleArn)} --kubernetes-groups ${KUBE_GROUP} --type STANDARD`,
        '  done',
        'done',
        '',
      );
    }
    artefacts.push({
      file: 'eks-access-entries.sh',
      title:
        "EKS access entries: each account's reader role joins the Kubernetes group fleetward in every EKS cluster",
      content: script(
        [
          'EKS clusters must use authentication mode API or API_AND_CONFIG_MAP.',
          'No access policy is associated: the group gets exactly the RBAC of fleetward-rbac.yaml.',
        ],
        lines,
      ),
    });
    const template = {
      AWSTemplateFormatVersion: '2010-09-09',
      Description: `Fleetward (${stage}): the account's reader role joins the Kubernetes group ${KUBE_GROUP} in one EKS cluster (for clusters managed with CloudFormation).`,
      Parameters: {
        ClusterName: { Type: 'String', Description: 'The EKS cluster.' },
        ReaderRoleName: {
          Type: 'String',
          Default: 'fleetward-reader',
          Description: 'The reader role of this account.',
        },
      },
      Resources: {
        FleetwardAccessEntry: {
          Type: 'AWS::EKS::AccessEntry',
          Properties: {
            ClusterName: { Ref: 'ClusterName' },
            PrincipalArn: {
              // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not a template literal
              'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ReaderRoleName}',
            },
            KubernetesGroups: [KUBE_GROUP],
            Type: 'STANDARD',
          },
        },
      },
    };
    artefacts.push({
      file: 'eks-access-entry.cfn.json',
      title: 'CloudFormation AWS::EKS::AccessEntry for one EKS cluster (alternative to the script)',
      content: `${JSON.stringify(template, null, 2)}\n`,
    });
  }
  const notes = [
    input.config.clouds.azure?.credential.type === 'aws-federation'
      ? `AKS with Entra ID: Fleetward signs in as one app registration per deployment ('fleetward onboard azure' creates them, named fleetward-${stage}-<home|jurisdiction>); add their service principals to an Entra group and add that group's object id as a Group subject, or bind each service principal's object id as a User.`
      : `AKS with Entra ID: add the service principal of app ${
          input.config.clouds.azure?.credential.type === 'workload-identity'
            ? input.config.clouds.azure.credential.clientId
            : '<client id>'
        } to an Entra group and add that group's object id as a Group subject, or bind the service principal's object id as a User.`,
  ];
  return { artefacts, notes };
};
