/**
 * `fleetward onboard evidence`: the write-once evidence stores of every jurisdiction, named
 * and placed as fleet.yaml names them (`jurisdictions.<id>.evidence`), each checked by the
 * residency guard first: a store outside its jurisdiction (or allowed only by an expired
 * exception) is refused and nothing is printed.
 *
 * - AWS: a CloudFormation template per bucket: Object Lock with default COMPLIANCE retention of
 *   the jurisdiction's `audit.retentionDays`, versioning, public access block,
 *   BucketOwnerEnforced, SSE-KMS, a Rules assertion on the region, and a bucket policy: deny
 *   non-TLS, deny principals outside the bucket's account, deny deletes, retention changes and
 *   governance bypass.
 * - GCS: `gcloud storage buckets create` with a retention policy, then
 *   `gcloud storage buckets update --lock-retention-period`.
 * - Azure: a storage account with blob versioning, a container with version-level
 *   immutability, its default time-based policy, then the policy locked.
 *
 * What the audit job checks before it writes (`assertImmutable`) is what these create.
 */
import type { JurisdictionConfig } from '../../config/schema.ts';
import type { RegionCloud } from '../../model.ts';
import { Residency } from '../../residency/index.ts';
import { ResidencyError } from '../../runtime/errors.ts';
import { type Artefact, type Generator, OnboardError, type OnboardInput, script, shq } from './common.ts';

/** Options of the evidence target beyond the common ones. */
export interface EvidenceOptions {
  /** Only this jurisdiction (`--jurisdiction`). */
  jurisdiction?: string | undefined;
}

/** The residency guard, judged today: refuses a store outside the jurisdiction. */
function guard(input: OnboardInput, id: string, cloud: RegionCloud, region: string, what: string): void {
  const residency = new Residency(
    input.config.jurisdictions,
    input.options.now ? { now: input.options.now } : {},
  );
  try {
    residency.assertResidency({ jurisdiction: id }, { cloud, region, what });
  } catch (error) {
    if (error instanceof ResidencyError) {
      throw new OnboardError(error.message, `jurisdictions.${id}.evidence.${cloud}`, { cause: error });
    }
    throw error;
  }
}

/** S3 actions that would shorten what the bucket keeps (COMPLIANCE already refuses most; this says so twice). */
const DENIED_OBJECT_ACTIONS = [
  's3:BypassGovernanceRetention',
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:PutObjectRetention',
];

function awsTemplate(
  id: string,
  j: JurisdictionConfig,
  bucket: string,
  region: string,
  stage: string,
): object {
  const days = j.audit.retentionDays;
  const bucketArn = { 'Fn::GetAtt': ['EvidenceBucket', 'Arn'] };
  // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not a template literal
  const objectsArn = { 'Fn::Sub': '${EvidenceBucket.Arn}/*' };
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `Fleetward (${stage}) evidence bucket of jurisdiction "${id}": write-once (Object Lock COMPLIANCE, ${days} days), in ${region}, readable and writable only from this account over TLS.`,
    Rules: {
      InJurisdictionRegion: {
        Assertions: [
          {
            Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, region] },
            AssertDescription: `jurisdiction "${id}" keeps its evidence in ${region}: deploy this stack there`,
          },
        ],
      },
    },
    Resources: {
      EvidenceBucket: {
        Type: 'AWS::S3::Bucket',
        // Evidence outlives the stack: Object Lock would refuse the delete anyway.
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          BucketName: bucket,
          ObjectLockEnabled: true,
          ObjectLockConfiguration: {
            ObjectLockEnabled: 'Enabled',
            Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: days } },
          },
          VersioningConfiguration: { Status: 'Enabled' },
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [
              { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true },
            ],
          },
          Tags: [
            { Key: 'managed-by', Value: 'fleetward' },
            { Key: 'fleetward-jurisdiction', Value: id },
            { Key: 'fleetward-stage', Value: stage },
          ],
        },
      },
      EvidenceBucketPolicy: {
        Type: 'AWS::S3::BucketPolicy',
        Properties: {
          Bucket: { Ref: 'EvidenceBucket' },
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'DenyInsecureTransport',
                Effect: 'Deny',
                Principal: '*',
                Action: 's3:*',
                Resource: [bucketArn, objectsArn],
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              },
              {
                Sid: 'DenyOtherAccounts',
                Effect: 'Deny',
                Principal: '*',
                Action: 's3:*',
                Resource: [bucketArn, objectsArn],
                Condition: { StringNotEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } },
              },
              {
                Sid: 'DenyDeletesAndRetentionChanges',
                Effect: 'Deny',
                Principal: '*',
                Action: DENIED_OBJECT_ACTIONS,
                Resource: objectsArn,
              },
            ],
          },
        },
      },
    },
    Outputs: {
      BucketName: { Value: { Ref: 'EvidenceBucket' } },
      BucketArn: { Value: bucketArn },
    },
  };
}

export const onboardEvidence = (input: OnboardInput & { evidence?: EvidenceOptions }) => {
  const stage = input.options.stage;
  const only = input.evidence?.jurisdiction;
  if (only !== undefined && !(only in input.config.jurisdictions)) {
    throw new OnboardError(
      `unknown jurisdiction "${only}" (configured: ${Object.keys(input.config.jurisdictions).join(', ')})`,
      '--jurisdiction',
    );
  }
  const artefacts: Artefact[] = [];
  const notes: string[] = [];
  for (const [id, j] of Object.entries(input.config.jurisdictions)) {
    if (only !== undefined && id !== only) continue;
    const evidence = j.evidence;
    if (!evidence || (!evidence.aws && !evidence.gcp && !evidence.azure)) {
      notes.push(
        `jurisdiction "${id}" names no evidence store (jurisdictions.${id}.evidence): nothing to create`,
      );
      continue;
    }
    const days = j.audit.retentionDays;
    if (evidence.aws) {
      const { bucket, region } = evidence.aws;
      guard(input, id, 'aws', region, 'evidence bucket');
      artefacts.push({
        file: `evidence-${id}-aws.cfn.json`,
        title: `S3 evidence bucket ${bucket} of "${id}": deploy in ${region}, in the account of "${id}"'s regional deployment`,
        content: `${JSON.stringify(awsTemplate(id, j, bucket, region, stage), null, 2)}\n`,
      });
    }
    if (evidence.gcp) {
      const { bucket, location } = evidence.gcp;
      guard(input, id, 'gcp', location, 'evidence bucket');
      const project = input.options.poolProject ?? input.config.clouds.gcp?.projects[0]?.id;
      if (!project) {
        throw new OnboardError(
          `jurisdiction "${id}" has a GCS evidence bucket but no GCP project is known: pass --pool-project or configure clouds.gcp`,
          '--pool-project',
        );
      }
      const lines = [
        // gcloud turns a day count through years and months of its own length (400d -> 399.25 days): give seconds.
        `gcloud storage buckets create gs://${bucket} --project=${shq(project)} --location=${location} --uniform-bucket-level-access --public-access-prevention --retention-period=${days * 86_400}s`,
        '# Irreversible: a locked retention policy can only be lengthened, and the bucket cannot be deleted while it holds objects younger than it.',
        `gcloud storage buckets update gs://${bucket} --lock-retention-period`,
      ];
      artefacts.push({
        file: `evidence-${id}-gcp.sh`,
        title: `GCS evidence bucket ${bucket} of "${id}" in ${location}, retention ${days} days, locked`,
        content: script(
          [`Fleetward (${stage}) evidence of jurisdiction "${id}" in GCS (${location}).`],
          lines,
        ),
      });
    }
    if (evidence.azure) {
      const { storageAccount, container, region } = evidence.azure;
      guard(input, id, 'azure', region, 'evidence storage account');
      const group = evidence.azure.resourceGroup ?? `fleetward-evidence-${id}`;
      if (!evidence.azure.resourceGroup) {
        notes.push(
          `jurisdictions.${id}.evidence.azure.resourceGroup is not set: the script uses "${group}"; add it to fleet.yaml so the audit job can check the container's immutability policy`,
        );
      }
      const sub = evidence.azure.subscriptionId ? ` --subscription ${evidence.azure.subscriptionId}` : '';
      const acct = `--account-name ${shq(storageAccount)} --resource-group ${shq(group)}${sub}`;
      const lines = [
        `az group create --name ${shq(group)} --location ${region}${sub}`,
        `az storage account create --name ${shq(storageAccount)} --resource-group ${shq(group)} --location ${region}${sub} --kind StorageV2 --sku Standard_ZRS --https-only true --min-tls-version TLS1_2 --allow-blob-public-access false`,
        `az storage account blob-service-properties update ${acct} --enable-versioning true`,
        `az storage container-rm create --storage-account ${shq(storageAccount)} --resource-group ${shq(group)}${sub} --name ${shq(container)} --enable-vlw`,
        `az storage container immutability-policy create ${acct} --container-name ${shq(container)} --period ${days}`,
        '# Irreversible: a locked policy can only be lengthened.',
        `etag=$(az storage container immutability-policy show ${acct} --container-name ${shq(container)} --query etag --output tsv)`,
        `az storage container immutability-policy lock ${acct} --container-name ${shq(container)} --if-match "$etag"`,
      ];
      artefacts.push({
        file: `evidence-${id}-azure.sh`,
        title: `Azure evidence container ${storageAccount}/${container} of "${id}" in ${region}, version-level immutability ${days} days, locked`,
        content: script(
          [`Fleetward (${stage}) evidence of jurisdiction "${id}" in Azure (${region}).`],
          lines,
        ),
      });
    }
  }
  if (artefacts.length === 0 && notes.length === 0) notes.push('no jurisdiction is configured');
  return { artefacts, notes };
};

/** Type check: the evidence target is a generator with one more option. */
export const evidenceGenerator: Generator = (input) => onboardEvidence(input);
