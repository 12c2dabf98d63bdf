// Checks the deployment recipes in examples/deploy/ offline, with no AWS account:
//
// - the CDK app (examples/deploy/cdk): type-checks it, runs `cdk synth --strict` (the real CDK
//   CLI; local esbuild bundles the handler, Docker is never used), then checks the template: the
//   function's runtime, handler, 720 s timeout, 128 MB, environment, VPC settings, and that its
//   inline policy allows exactly sqs:DeleteMessage on the queue and secretsmanager:GetSecretValue
//   on the secret; and loads the bundled handler in a fresh Node.js process;
// - the Terraform module (examples/deploy/terraform): parses every .tf file with @cdktf/hcl2json
//   (Terraform's HCL parser compiled to WebAssembly), checks that every reference names a declared
//   variable, local, data source or resource, and checks the function's and the policy's
//   settings. There is no terraform binary offline: `terraform validate` (provider schemas) and
//   `plan` are not run.
//
//   npm ci --prefix examples/deploy && npm run check:deploy
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'examples/deploy');
const CDK_APP = join(DEPLOY, 'cdk');
const TERRAFORM = join(DEPLOY, 'terraform');

const problems: string[] = [];
const expect = (ok: boolean, message: string): void => {
  if (!ok) problems.push(message);
};

function run(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, timeout: 300_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

type Json = Record<string, unknown>;
const record = (value: unknown): Json => (value !== null && typeof value === 'object' ? (value as Json) : {});

async function checkCdk(): Promise<void> {
  const started = Date.now();
  const before = problems.length;
  const typecheck = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(CDK_APP, 'tsconfig.json')], { cwd: ROOT });
  if (typecheck.code !== 0) throw new Error(`the CDK app does not type-check:\n${typecheck.output}`);

  const context = record(JSON.parse(await readFile(join(CDK_APP, 'cdk.json'), 'utf8'))['context']);
  // Under node_modules: the bundle leaves the AWS SDK out, as the Lambda runtime provides it; here
  // the project's copy stands in for the runtime's when the bundle is loaded.
  await mkdir(join(ROOT, 'node_modules/.cache'), { recursive: true });
  const out = await mkdtemp(join(ROOT, 'node_modules/.cache/orca-reconcile-cdk-'));
  try {
    const synth = await run(
      join(DEPLOY, 'node_modules/.bin/cdk'),
      ['synth', '--strict', '--quiet', '--no-notices', '--no-version-reporting', '--output', out],
      { cwd: CDK_APP, env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true', CI: 'true' } },
    );
    if (synth.code !== 0) throw new Error(`cdk synth failed:\n${synth.output}`);

    const template = JSON.parse(await readFile(join(out, 'OrcaReconcile.template.json'), 'utf8')) as { Resources: Record<string, Json> };
    const resources = Object.entries(template.Resources);
    const functions = resources.filter(([, resource]) => resource['Type'] === 'AWS::Lambda::Function');
    expect(functions.length === 1, `cdk: expected one Lambda function, found ${functions.length}`);
    const [functionId, fn] = functions[0] ?? ['', {}];
    const properties = record(fn['Properties']);
    expect(properties['Runtime'] === 'nodejs22.x' || properties['Runtime'] === 'nodejs24.x', `cdk: Runtime is ${String(properties['Runtime'])}`);
    expect(properties['Handler'] === 'index.handler', `cdk: Handler is ${String(properties['Handler'])}`);
    expect(properties['Timeout'] === 720, `cdk: Timeout is ${String(properties['Timeout'])}, expected 720`);
    expect(properties['MemorySize'] === 128, `cdk: MemorySize is ${String(properties['MemorySize'])}, expected 128`);
    const variables = record(record(properties['Environment'])['Variables']);
    expect(
      variables['DB_CONNECT_INFO_SECRET_ARN'] === context['dbConnectInfoSecretArn'],
      'cdk: DB_CONNECT_INFO_SECRET_ARN is not the secret of cdk.json',
    );
    const queueName = String(context['internalReportQueueArn']).split(':').pop() ?? '';
    expect(
      JSON.stringify(variables['INTERNAL_REPORT_QUEUE_URL'] ?? '').includes(`/${queueName}`),
      `cdk: INTERNAL_REPORT_QUEUE_URL does not name the queue ${queueName}`,
    );
    const vpc = record(properties['VpcConfig']);
    expect(
      JSON.stringify(vpc['SubnetIds']) === JSON.stringify(String(context['subnetIds']).split(',')),
      `cdk: VpcConfig.SubnetIds is ${JSON.stringify(vpc['SubnetIds'])}`,
    );
    expect(
      JSON.stringify(vpc['SecurityGroupIds']) === JSON.stringify([context['securityGroupId']]),
      `cdk: VpcConfig.SecurityGroupIds is ${JSON.stringify(vpc['SecurityGroupIds'])}`,
    );

    // The role's inline policy: exactly the two statements the step needs.
    const roleId = (record(properties['Role'])['Fn::GetAtt'] as string[] | undefined)?.[0] ?? '';
    const statements = resources
      .filter(([, resource]) => resource['Type'] === 'AWS::IAM::Policy')
      .filter(([, resource]) => JSON.stringify(record(resource['Properties'])['Roles']).includes(`"${roleId}"`))
      .flatMap(([, resource]) => record(record(resource['Properties'])['PolicyDocument'])['Statement'] as Json[]);
    const allowed = statements.map((statement) => `${String(statement['Effect'])} ${JSON.stringify(statement['Action'])} ${JSON.stringify(statement['Resource'])}`);
    const wanted = [
      `Allow "sqs:DeleteMessage" ${JSON.stringify(context['internalReportQueueArn'])}`,
      `Allow "secretsmanager:GetSecretValue" ${JSON.stringify(context['dbConnectInfoSecretArn'])}`,
    ];
    expect(JSON.stringify(allowed) === JSON.stringify(wanted), `cdk: the function's policy allows\n  ${allowed.join('\n  ')}\nexpected\n  ${wanted.join('\n  ')}`);
    const role = record(template.Resources[roleId]);
    const managed = JSON.stringify(record(role['Properties'])['ManagedPolicyArns']);
    expect(managed.includes('AWSLambdaVPCAccessExecutionRole'), 'cdk: the role lacks AWSLambdaVPCAccessExecutionRole');

    // The bundle cdk synth built: loads in a fresh Node.js process and exports the handler.
    const assets = record(JSON.parse(await readFile(join(out, 'OrcaReconcile.assets.json'), 'utf8'))['files']);
    const asset = Object.values(assets)
      .map((entry) => String(record(record(entry)['source'])['path']))
      .find((path) => JSON.stringify(properties['Code']).includes(path.replace(/^asset\./, '')));
    if (!asset) throw new Error(`cdk: no asset holds the code of ${functionId}`);
    const files = await readdir(join(out, asset));
    expect(JSON.stringify(files) === JSON.stringify(['index.mjs']), `cdk: the function's asset holds ${files.join(', ')}, expected index.mjs`);
    const loaded = await run(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(join(out, asset, 'index.mjs'))}); if (typeof m.handler !== 'function') throw new Error('no handler export'); console.log('loaded')`],
      { cwd: out, env: { PATH: process.env['PATH'], AWS_REGION: 'us-west-2' } },
    );
    expect(loaded.code === 0 && loaded.output.includes('loaded'), `cdk: the bundled handler does not load:\n${loaded.output}`);
    if (problems.length === before) console.log(`cdk: the app type-checks; cdk synth --strict: ${resources.length} resources; function, policy and bundle as expected (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** Every `${...}` expression in a parsed HCL document, with where it is. */
function expressions(value: unknown, path: string, found: { path: string; expression: string }[] = []): { path: string; expression: string }[] {
  if (typeof value === 'string') {
    for (const match of value.matchAll(/\$\{([^}]*)\}/g)) found.push({ path, expression: match[1]! });
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => expressions(item, `${path}[${index}]`, found));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) expressions(item, `${path}.${key}`, found);
  }
  return found;
}

async function checkTerraform(): Promise<void> {
  const before = problems.length;
  const { parse } = createRequire(join(DEPLOY, 'package.json'))('@cdktf/hcl2json') as {
    parse: (filename: string, contents: string) => Promise<Json>;
  };
  const names = (await readdir(TERRAFORM)).filter((name) => name.endsWith('.tf'));
  expect(names.length > 0, 'terraform: no .tf files');
  const documents: Json[] = [];
  for (const name of names) {
    try {
      documents.push(await parse(name, await readFile(join(TERRAFORM, name), 'utf8')));
    } catch (error) {
      throw new Error(`terraform: ${name} does not parse: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  const merged = (key: string): Json => Object.assign({}, ...documents.map((document) => record(document[key])));
  const variables = new Set(Object.keys(merged('variable')));
  const locals = new Set(documents.flatMap((document) => ((document['locals'] as Json[] | undefined) ?? []).flatMap((block) => Object.keys(block))));
  const resources = new Set(Object.entries(merged('resource')).flatMap(([type, byName]) => Object.keys(record(byName)).map((name) => `${type}.${name}`)));
  const data = new Set(Object.entries(merged('data')).flatMap(([type, byName]) => Object.keys(record(byName)).map((name) => `data.${type}.${name}`)));
  const providers = Object.assign({}, ...documents.flatMap((document) => (record(document)['terraform'] as Json[] | undefined) ?? []).flatMap((block) => (block['required_providers'] as Json[] | undefined) ?? [])) as Json;

  // References: var.X, local.X, data.T.N, T.N (resources); path., each., count., self. and the
  // iterators of dynamic blocks are Terraform's own.
  const iterators = new Set(['path', 'each', 'count', 'self', 'terraform', 'statement']);
  let references = 0;
  for (const [index, document] of documents.entries()) {
    for (const { path, expression } of expressions(document, names[index]!)) {
      for (const match of expression.matchAll(/(?<![\w.])([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?/g)) {
        const [, head = '', second = '', third] = match;
        references += 1;
        if (head === 'var') expect(variables.has(second), `terraform: ${path}: var.${second} is not declared`);
        else if (head === 'local') expect(locals.has(second), `terraform: ${path}: local.${second} is not declared`);
        else if (head === 'data') expect(data.has(`data.${second}.${third ?? ''}`), `terraform: ${path}: data.${second}.${third ?? ''} is not declared`);
        else if (iterators.has(head)) continue;
        else if (head.includes('_')) expect(resources.has(`${head}.${second}`), `terraform: ${path}: ${head}.${second} is not declared`);
      }
    }
  }
  for (const provider of ['aws', 'archive']) expect(provider in providers, `terraform: required_providers lacks ${provider}`);
  for (const used of variables) {
    const usedSomewhere = documents.some((document) => JSON.stringify(document).includes(`var.${used}`));
    expect(usedSomewhere, `terraform: variable ${used} is declared but never used`);
  }

  const fn = record((record(merged('resource')['aws_lambda_function'])['orca_reconcile'] as Json[] | undefined)?.[0]);
  expect(fn['runtime'] === 'nodejs22.x' || fn['runtime'] === 'nodejs24.x', `terraform: runtime is ${String(fn['runtime'])}`);
  expect(fn['handler'] === 'index.handler', `terraform: handler is ${String(fn['handler'])}`);
  expect(fn['timeout'] === 720, `terraform: timeout is ${String(fn['timeout'])}, expected 720`);
  expect(fn['memory_size'] === 128, `terraform: memory_size is ${String(fn['memory_size'])}, expected 128`);
  const variablesSet = record(record((fn['environment'] as Json[] | undefined)?.[0])['variables']);
  expect(variablesSet['INTERNAL_REPORT_QUEUE_URL'] === '${var.internal_report_queue_url}', 'terraform: INTERNAL_REPORT_QUEUE_URL is not var.internal_report_queue_url');
  expect(variablesSet['DB_CONNECT_INFO_SECRET_ARN'] === '${var.db_connect_info_secret_arn}', 'terraform: DB_CONNECT_INFO_SECRET_ARN is not var.db_connect_info_secret_arn');
  expect(Array.isArray(fn['vpc_config']), 'terraform: the function has no vpc_config');
  const policy = record((record(merged('data')['aws_iam_policy_document'])['orca_reconcile'] as Json[] | undefined)?.[0]);
  const statements = ((policy['statement'] as Json[] | undefined) ?? []).map((statement) => `${JSON.stringify(statement['actions'])} ${JSON.stringify(statement['resources'])}`);
  const wanted = ['["sqs:DeleteMessage"] ["${var.internal_report_queue_arn}"]', '["secretsmanager:GetSecretValue"] ["${var.db_connect_info_secret_arn}"]'];
  expect(JSON.stringify(statements) === JSON.stringify(wanted), `terraform: the policy allows\n  ${statements.join('\n  ')}\nexpected\n  ${wanted.join('\n  ')}`);
  if (problems.length > before) return;
  console.log(
    `terraform: ${names.join(', ')} parse; ${references} references name declared things (${variables.size} variables, ${resources.size} resources, ${data.size} data sources); function and policy as expected (not run: terraform validate, plan)`,
  );
}

async function main(): Promise<void> {
  if (!existsSync(join(DEPLOY, 'node_modules/aws-cdk-lib')) || !existsSync(join(DEPLOY, 'node_modules/@cdktf/hcl2json'))) {
    throw new Error('check-deploy: run npm ci --prefix examples/deploy first');
  }
  await checkCdk();
  await checkTerraform();
  if (problems.length > 0) {
    console.error(problems.join('\n'));
    console.error(`check-deploy: ${problems.length} problem(s)`);
    process.exitCode = 1;
  }
}

await main();
