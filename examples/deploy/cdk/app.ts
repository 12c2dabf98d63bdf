// The reconcile step as an AWS CDK app: one NodejsFunction built from examples/lambda-handler.ts,
// with the environment, IAM, timeout and network ORCA's step needs. ORCA owns the queue, the
// database secret and the VPC, so the app takes them as context values (cdk.json holds sample
// values; pass your own with `-c key=value` or edit cdk.json).
//
//   cd examples/deploy/cdk && npx cdk synth            # the template, no AWS account needed
//   npx cdk deploy -c prefix=... -c internalReportQueueArn=... -c dbConnectInfoSecretArn=... ...
//
// The stack has no `env`: its template is the same for every account and region (the queue URL
// is derived from the queue ARN), so `cdk synth` works offline.
import { fileURLToPath } from 'node:url';
import { Annotations, App, Arn, ArnFormat, CfnOutput, Duration, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface OrcaReconcileStackProps extends StackProps {
  /** ORCA's deployment prefix, used in resource names. */
  prefix: string;
  /** ARN of ORCA's internal report queue (the FIFO queue the job messages come from). */
  internalReportQueueArn: string;
  /** Complete ARN of ORCA's database secret (`host`, `port`, `user_database`, `user_username`, `user_password`). */
  dbConnectInfoSecretArn: string;
  /** ARN of the secret's customer-managed KMS key, if it has one. */
  dbSecretKmsKeyArn?: string;
  /** The VPC of the ORCA database, with the subnets the function runs in and their availability zones. */
  vpcId: string;
  subnetIds: string[];
  availabilityZones: string[];
  /** A security group the database accepts connections from. */
  securityGroupId: string;
}

export class OrcaReconcileStack extends Stack {
  readonly function: NodejsFunction;

  constructor(scope: Construct, id: string, props: OrcaReconcileStackProps) {
    super(scope, id, props);

    const vpc = ec2.Vpc.fromVpcAttributes(this, 'OrcaVpc', {
      vpcId: props.vpcId,
      availabilityZones: props.availabilityZones,
      privateSubnetIds: props.subnetIds,
    });
    // The subnets are only handed to Lambda; their route tables are never read.
    Annotations.of(this).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'the function only needs the subnet ids');
    const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(this, 'DatabaseClient', props.securityGroupId, { mutable: false });

    // The queue URL from the queue ARN: https://sqs.<region>.<url suffix>/<account>/<name>.
    const queue = Arn.split(props.internalReportQueueArn, ArnFormat.NO_RESOURCE_NAME);
    const queueUrl = `https://sqs.${queue.region}.${this.urlSuffix}/${queue.account}/${queue.resource}`;

    this.function = new NodejsFunction(this, 'Reconcile', {
      functionName: `${props.prefix}_orca_reconcile`,
      description: 'ORCA internal reconciliation: phantom, orphan and mismatch reports (orca-reconcile)',
      entry: fileURLToPath(new URL('../../lambda-handler.ts', import.meta.url)),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      // ORCA's defaults for its Lambdas. The comparison runs in PostgreSQL, so memory does not
      // grow with the bucket; the handler stops the database work 10 s before the timeout.
      timeout: Duration.seconds(720),
      memorySize: 128,
      environment: {
        INTERNAL_REPORT_QUEUE_URL: queueUrl,
        DB_CONNECT_INFO_SECRET_ARN: props.dbConnectInfoSecretArn,
        POWERTOOLS_SERVICE_NAME: 'orca-reconcile',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
      // In the database's VPC. The function also reaches SQS and Secrets Manager: through VPC
      // endpoints (com.amazonaws.<region>.sqs and .secretsmanager) or a NAT gateway.
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [securityGroup],
      logGroup: new logs.LogGroup(this, 'Logs', {
        logGroupName: `/aws/lambda/${props.prefix}_orca_reconcile`,
        retention: logs.RetentionDays.ONE_MONTH,
      }),
      bundling: {
        // esbuild from the project's node_modules; Docker is never used.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // pg is CommonJS and calls require() for Node.js built-ins, which an ES module bundle
        // lacks: give the bundle one.
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        // The Lambda Node.js runtimes include the AWS SDK for JavaScript v3.
        externalModules: ['@aws-sdk/*'],
        minify: true,
        // Error classes keep their names (DatabaseError, TimeoutError, ...), which Step Functions matches.
        keepNames: true,
      },
      // Where the bundling runs: the project that holds the handler and its package-lock.json.
      projectRoot: fileURLToPath(new URL('../../..', import.meta.url)),
      depsLockFilePath: fileURLToPath(new URL('../../../package-lock.json', import.meta.url)),
    });

    // Exactly what the step needs (plus what NodejsFunction adds for logs and the VPC).
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['sqs:DeleteMessage'], resources: [props.internalReportQueueArn] }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [props.dbConnectInfoSecretArn] }),
    );
    if (props.dbSecretKmsKeyArn) {
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [props.dbSecretKmsKeyArn],
          conditions: { StringEquals: { 'kms:ViaService': Fn.sub('secretsmanager.${AWS::Region}.amazonaws.com') } },
        }),
      );
    }

    new CfnOutput(this, 'FunctionArn', { value: this.function.functionArn, description: 'Use as the Resource of the reconcile task state' });
  }
}

const app = new App();
const context = (key: string): string => {
  const value: unknown = app.node.tryGetContext(key);
  if (typeof value !== 'string' || value === '') throw new Error(`set the context value ${key} (cdk.json or -c ${key}=...)`);
  return value;
};
const list = (key: string): string[] => context(key).split(',').map((item) => item.trim());
const kmsKey: unknown = app.node.tryGetContext('dbSecretKmsKeyArn');

new OrcaReconcileStack(app, 'OrcaReconcile', {
  prefix: context('prefix'),
  internalReportQueueArn: context('internalReportQueueArn'),
  dbConnectInfoSecretArn: context('dbConnectInfoSecretArn'),
  ...(typeof kmsKey === 'string' && kmsKey !== '' ? { dbSecretKmsKeyArn: kmsKey } : {}),
  vpcId: context('vpcId'),
  subnetIds: list('subnetIds'),
  availabilityZones: list('availabilityZones'),
  securityGroupId: context('securityGroupId'),
});
app.synth();
