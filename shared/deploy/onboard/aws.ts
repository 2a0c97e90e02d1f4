/**
 * `fleetward onboard aws`: the CloudFormation template of the reader role in every member
 * account, ready for a StackSet (nothing account-specific but its parameters).
 *
 * Trust: the Fleetward account, narrowed by `aws:PrincipalArn` to exactly the roles of the
 * functions whose capabilities use a member AWS grant, in every deployment (home and each
 * regional one), and by `sts:ExternalId` when one is given. Permissions: one inline policy
 * with every `member` AWS grant of the permission table, a statement per capability.
 */
import { type Generator, memberFunctionRoles, memberGrants, OnboardError, sortedUnique } from './common.ts';

/** Inline policies of a role may hold 10,240 characters in all (IAM quotas). */
const INLINE_POLICY_MAX = 10_240;

function sid(capability: string): string {
  return capability
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}

/** The reader-role template: JSON CloudFormation, `Parameters` FleetwardAccountId, ExternalId (NoEcho), ReaderRoleName. */
export const onboardAws: Generator = (input) => {
  const grants = memberGrants(input.grants, 'aws');
  if (grants.length === 0) {
    throw new OnboardError(
      'the permission table has no member AWS grant: nothing to put in the reader role',
      'grants',
    );
  }
  const roles = memberFunctionRoles(input, 'aws');
  const byCapability = new Map<string, string[]>();
  for (const g of grants)
    byCapability.set(g.capability, [...(byCapability.get(g.capability) ?? []), g.permission]);
  const statements = [...byCapability.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([capability, actions]) => ({
      Sid: sid(capability),
      Effect: 'Allow',
      Action: sortedUnique(actions),
      Resource: '*',
    }));
  const policy = { Version: '2012-10-17', Statement: statements };
  if (JSON.stringify(policy).length > INLINE_POLICY_MAX) {
    throw new OnboardError(
      `the reader policy is over the ${INLINE_POLICY_MAX}-character inline policy quota`,
      'grants',
    );
  }
  const principalArns = roles.map((r) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:iam::\${FleetwardAccountId}:role/${r.name}`,
  }));
  const trust = {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'FleetwardFunctions',
        Effect: 'Allow',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not a template literal
        Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${FleetwardAccountId}:root' } },
        Action: 'sts:AssumeRole',
        Condition: {
          'Fn::If': [
            'HasExternalId',
            {
              ArnLike: { 'aws:PrincipalArn': principalArns },
              StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } },
            },
            { ArnLike: { 'aws:PrincipalArn': principalArns } },
          ],
        },
      },
    ],
  };
  const template = {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `Fleetward (${input.options.stage}) reader role for a member account: trusted by ${roles.length} Fleetward function role(s), holding the permissions of the member AWS grants. Deploy as a StackSet to every account fleet.yaml lists.`,
    Metadata: {
      Fleetward: {
        stage: input.options.stage,
        trustedRoles: roles.map((r) => ({
          role: r.name,
          function: r.fn,
          deployment: r.deployment.id,
          region: r.deployment.region,
        })),
        grants: grants.map((g) => ({ permission: g.permission, capability: g.capability, why: g.why })),
      },
    },
    Parameters: {
      FleetwardAccountId: {
        Type: 'String',
        AllowedPattern: '^\\d{12}$',
        Description: 'The AWS account the Fleetward functions run in.',
      },
      ExternalId: {
        Type: 'String',
        NoEcho: true,
        Default: '',
        Description:
          'The externalId fleet.yaml gives this account (clouds.aws.accounts[].externalId); empty: none.',
      },
      ReaderRoleName: {
        Type: 'String',
        Default: 'fleetward-reader',
        AllowedPattern: '^[\\w+=,.@-]{1,64}$',
        Description: 'The role name fleet.yaml names in clouds.aws.accounts[].roleArn.',
      },
    },
    Conditions: {
      HasExternalId: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ExternalId' }, ''] }] },
    },
    Resources: {
      ReaderRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: { Ref: 'ReaderRoleName' },
          Description: `Fleetward (${input.options.stage}) reads and tags clusters, budgets and audit logs in this account`,
          MaxSessionDuration: 3600,
          AssumeRolePolicyDocument: trust,
          Policies: [{ PolicyName: 'fleetward-member', PolicyDocument: policy }],
          Tags: [
            { Key: 'managed-by', Value: 'fleetward' },
            { Key: 'fleetward-stage', Value: input.options.stage },
          ],
        },
      },
    },
    Outputs: {
      ReaderRoleArn: {
        Description: 'Put this in fleet.yaml as clouds.aws.accounts[].roleArn.',
        Value: { 'Fn::GetAtt': ['ReaderRole', 'Arn'] },
      },
    },
  };
  return {
    artefacts: [
      {
        file: 'fleetward-reader.cfn.json',
        title:
          'CloudFormation template of the reader role; apply in every member account (a StackSet for AWS Organizations)',
        content: `${JSON.stringify(template, null, 2)}\n`,
      },
    ],
    notes: [
      `The reader role trusts ${roles.length} function role(s) of stage "${input.options.stage}"; regenerate and update the StackSet after adding a jurisdiction or changing --stage.`,
    ],
  };
};
