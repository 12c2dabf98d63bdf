// Bundles examples/lambda-handler.ts with esbuild the ways a Lambda deployment does, then loads
// and invokes each bundle in a fresh Node.js process, as the Lambda runtime would, against a real
// PostgreSQL (DATABASE_URL) and an SQS emulator (fauxqs):
//
// - ES module and CommonJS bundles, each with the AWS SDK left out (the Lambda Node.js runtimes
//   provide it; the CDK NodejsFunction's default) and with everything bundled;
// - the package alone as an ES module bundle with its dependencies left out, which must load with
//   no `require` shim: the package's own code has no `require`.
//
// Each bundle resolves `orca-reconcile` to the built package (dist/, through the package's own
// "exports"), so run `npm run build` first. For each bundle the script creates the ORCA tables
// with the package's DDL (`orca-reconcile schema`), stages a job whose listing has one phantom,
// one orphan and one mismatch, puts its message in flight on the emulator, invokes `handler` with
// a Lambda-like context, and checks the output, the job's status, the log line and that the
// message was deleted. The handler reads its database secret the default way, with the AWS SDK's
// Secrets Manager client; no Secrets Manager emulator is available offline, so a stand-in on
// 127.0.0.1 answers GetSecretValue. The SDK clients reach both endpoints through
// AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_SECRETS_MANAGER: the bundles are not changed.
//
//   DATABASE_URL=postgres://user@host:5432/db npm run check:bundles
//
// The example handler uses the default schema, `orca`: the check creates it in DATABASE_URL's
// database, refuses to run when that database already has one, and drops it at the end.
import { ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Format } from 'esbuild';
import { startFauxqs } from 'fauxqs';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = join(ROOT, 'examples/lambda-handler.ts');
// In an ES module bundle, CommonJS dependencies (pg, parts of the AWS SDK) call require() for
// Node.js built-ins; esbuild's ES module output has no require of its own, so the bundle gets one.
const ESM_REQUIRE_BANNER = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

interface Variant {
  name: string;
  format: Format;
  external: string[];
  /** Invoke the handler (true) or only load the bundle and check its exports. */
  invoke: boolean;
  banner: boolean;
  entry?: string;
}

const VARIANTS: Variant[] = [
  { name: 'esm, AWS SDK external', format: 'esm', external: ['@aws-sdk/*'], invoke: true, banner: true },
  { name: 'cjs, AWS SDK external', format: 'cjs', external: ['@aws-sdk/*'], invoke: true, banner: false },
  { name: 'esm, all bundled', format: 'esm', external: [], invoke: true, banner: true },
  { name: 'cjs, all bundled', format: 'cjs', external: [], invoke: true, banner: false },
  {
    name: 'esm, the package alone, no require shim',
    format: 'esm',
    external: ['@aws-sdk/*', 'pg'],
    invoke: false,
    banner: false,
    entry: join(ROOT, 'dist/index.js'),
  },
];

function fail(message: string): never {
  throw new Error(`check-bundles: ${message}`);
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd: ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A stand-in for Secrets Manager's GetSecretValue (AWS JSON 1.1), for one secret, on 127.0.0.1. */
async function startSecretsManager(secretArn: string, secretString: string): Promise<{ url: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      requests.push(target);
      const reply = (status: number, payload: object) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(payload));
      };
      if (target !== 'secretsmanager.GetSecretValue') {
        reply(400, { __type: 'InvalidRequestException', message: `unsupported action ${target}` });
        return;
      }
      const { SecretId } = JSON.parse(body) as { SecretId?: string };
      if (SecretId !== secretArn) {
        reply(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
        return;
      }
      reply(200, { ARN: secretArn, Name: 'orca-db', VersionId: 'v1', SecretString: secretString, CreatedDate: Date.now() / 1000 });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

/** Loads a bundle as the Lambda runtime does (import for .mjs, require for .cjs) and invokes its handler. */
const INVOKER = `
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bundle, resultFile, mode] = process.argv.slice(2);
const module = bundle.endsWith('.cjs') ? createRequire(import.meta.url)(bundle) : await import(pathToFileURL(bundle).href);
if (mode === 'load') {
  if (typeof module.createHandler !== 'function') throw new Error('the bundle exports no createHandler');
  writeFileSync(resultFile, JSON.stringify({ loaded: true }));
  process.exit(0);
}
if (typeof module.handler !== 'function') throw new Error('the bundle exports no handler');
const started = Date.now();
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'orca-reconcile',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:orca-reconcile',
  memoryLimitInMB: '128',
  awsRequestId: 'bundle-check-request',
  logGroupName: '/aws/lambda/orca-reconcile',
  logStreamName: 'bundle-check',
  getRemainingTimeInMillis: () => 720_000 - (Date.now() - started),
  done() {},
  fail() {},
  succeed() {},
};
const output = await module.handler(JSON.parse(process.env.BUNDLE_CHECK_EVENT), context);
writeFileSync(resultFile, JSON.stringify(output));
// A Lambda container is frozen between invocations; this process just ends.
process.exit(0);
`;

async function main(): Promise<void> {
  const started = Date.now();
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) fail('set DATABASE_URL to a PostgreSQL server (postgres://user@host:port/db)');
  if (!existsSync(join(ROOT, 'dist/index.js')) || !existsSync(join(ROOT, 'dist/cli.js'))) fail('dist/ is missing: run npm run build first');

  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const existing = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = 'orca'");
  if (existing.rowCount !== 0) {
    await client.end();
    fail('the database in DATABASE_URL already has a schema "orca"; point DATABASE_URL at a database without one');
  }
  let createdSchema = false;
  // Inside node_modules, so that bundles with the AWS SDK left out find it as they would in Lambda.
  await mkdir(join(ROOT, 'node_modules/.cache'), { recursive: true });
  const work = await mkdtemp(join(ROOT, 'node_modules/.cache/orca-reconcile-bundles-'));
  const fauxqs = await startFauxqs({ port: 0, logger: false });
  const sqs = new SQSClient({
    endpoint: `http://127.0.0.1:${fauxqs.port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  let secrets: Awaited<ReturnType<typeof startSecretsManager>> | undefined;
  try {
    const url = new URL(databaseUrl);
    const buckets = VARIANTS.map((_, index) => `bundle-check-${index}`);
    createdSchema = true;
    const schema = await run(process.execPath, ['dist/cli.js', 'schema', ...buckets.flatMap((bucket) => ['--bucket', bucket])], {
      PATH: process.env['PATH'],
      DATABASE_URL: url.href,
    });
    if (schema.code !== 0) fail(`orca-reconcile schema failed: ${schema.stderr}`);

    const secretArn = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:orca-db-AbCdEf';
    secrets = await startSecretsManager(
      secretArn,
      JSON.stringify({
        host: url.hostname,
        port: Number(url.port || 5432),
        user_database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
        user_username: decodeURIComponent(url.username) || 'postgres',
        // The handler requires a password; a server with trust authentication ignores it.
        user_password: decodeURIComponent(url.password) || 'unused-with-trust-authentication',
        admin_database: 'postgres',
        admin_username: 'unused',
        admin_password: 'unused',
      }),
    );
    const invoker = join(work, 'invoke.mjs');
    await writeFile(invoker, INVOKER);

    for (const [index, variant] of VARIANTS.entries()) {
      const bucket = buckets[index]!;
      const outfile = join(work, `handler-${index}.${variant.format === 'esm' ? 'mjs' : 'cjs'}`);
      const result = await build({
        entryPoints: [variant.entry ?? ENTRY],
        outfile,
        bundle: true,
        platform: 'node',
        target: 'node22',
        format: variant.format,
        external: variant.external,
        banner: variant.banner ? { js: ESM_REQUIRE_BANNER } : {},
        // No tsconfig "paths": orca-reconcile resolves as a host resolves it, to the built package.
        tsconfigRaw: '{}',
        metafile: true,
        logLevel: 'warning',
      });
      const inputs = Object.keys(result.metafile?.inputs ?? {});
      if (inputs.some((input) => input.startsWith('src/'))) fail(`${variant.name}: the bundle holds src/ files, not the built package`);
      if (!inputs.includes('dist/index.js')) fail(`${variant.name}: the bundle does not hold dist/index.js`);
      const size = (await readFile(outfile)).length;

      if (!variant.invoke) {
        const loaded = await run(process.execPath, [invoker, outfile, join(work, `result-${index}.json`), 'load'], { PATH: process.env['PATH'] });
        if (loaded.code !== 0) fail(`${variant.name}: loading ${relative(ROOT, outfile)} failed:\n${loaded.stderr}`);
        console.log(`ok  ${variant.name}: ${(size / 1024).toFixed(0)} KiB, loads with no require shim`);
        continue;
      }

      // A staged job, as ORCA's loader leaves it: catalog a, b, c; listing a, b (another etag), d.
      const { rows } = await client.query<{ id: string }>(
        `WITH provider AS (INSERT INTO orca.providers VALUES ('LPDAAC', 'LP DAAC') ON CONFLICT DO NOTHING),
              collection AS (INSERT INTO orca.collections VALUES ('MOD09GQ___061', 'MOD09GQ', '061') ON CONFLICT DO NOTHING)
         INSERT INTO orca.reconcile_job (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
         VALUES ($1, 2, now(), now(), now()) RETURNING id`,
        [bucket],
      );
      const jobId = Number(rows[0]!.id);
      await client.query(
        `WITH granule AS (
           INSERT INTO orca.granules (provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
           VALUES ('LPDAAC', 'MOD09GQ___061', $1 || '-granule', 'execution', now(), now(), now()) RETURNING id)
         INSERT INTO orca.files (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag, version, size_in_bytes, storage_class_id)
         SELECT granule.id, f.name, $1, 'cumulus-protected', $1 || '/' || f.name, now(), f.etag, 'v1', f.size, 1
         FROM granule, (VALUES ('a.hdf', '"etag-a"', 100), ('b.hdf', '"etag-b"', 200), ('c.hdf', '"etag-c"', 300)) AS f(name, etag, size)`,
        [bucket],
      );
      await client.query(
        `INSERT INTO orca.reconcile_s3_object (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
         SELECT $2, $1, $1 || '/' || o.name, o.etag, now(), o.size, 'GLACIER'
         FROM (VALUES ('a.hdf', '"etag-a"', 100), ('b.hdf', '"etag-b2"', 200), ('d.hdf', '"etag-d"', 400)) AS o(name, etag, size)`,
        [bucket, jobId],
      );

      const queueName = `orca-internal-report-${index}.fifo`;
      fauxqs.createQueue(queueName, { attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } });
      // The emulator names its queues http://sqs.<region>.localhost:<port>/...; in AWS a queue URL's
      // host is the SQS endpoint's, so the URL the function gets points at the emulator's address.
      const queueUrl = `http://127.0.0.1:${fauxqs.port}/000000000000/${queueName}`;
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ jobId, orcaArchiveLocation: bucket }), MessageGroupId: 'reconcile' }),
      );
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 }));
      const receiptHandle = Messages?.[0]?.ReceiptHandle ?? fail(`${variant.name}: no message received from ${queueName}`);

      const secretReadsBefore = secrets.requests.length;
      const resultFile = join(work, `result-${index}.json`);
      const invoked = await run(process.execPath, [invoker, outfile, resultFile], {
        PATH: process.env['PATH'],
        HOME: work,
        AWS_CONFIG_FILE: join(work, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_ENDPOINT_URL_SQS: `http://127.0.0.1:${fauxqs.port}`,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        INTERNAL_REPORT_QUEUE_URL: queueUrl,
        DB_CONNECT_INFO_SECRET_ARN: secretArn,
        POWERTOOLS_SERVICE_NAME: 'orca-reconcile',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        BUNDLE_CHECK_EVENT: JSON.stringify({ event: { jobId, orcaArchiveLocation: bucket, messageReceiptHandle: receiptHandle } }),
      });
      if (invoked.code !== 0) {
        fail(`${variant.name}: invoking ${relative(ROOT, outfile)} exited ${invoked.code}:\n${invoked.stderr}${invoked.stdout}`);
      }

      const output = JSON.parse(await readFile(resultFile, 'utf8')) as unknown;
      const expected = { jobId, phantoms: 1, orphans: 1, mismatches: 1 };
      if (JSON.stringify(output) !== JSON.stringify(expected)) {
        fail(`${variant.name}: the handler returned ${JSON.stringify(output)}, expected ${JSON.stringify(expected)}`);
      }
      const job = await client.query<{ status_id: number }>('SELECT status_id FROM orca.reconcile_job WHERE id = $1', [jobId]);
      if (job.rows[0]?.status_id !== 5) fail(`${variant.name}: job ${jobId} has status ${job.rows[0]?.status_id}, expected 5 (success)`);
      const queue = fauxqs.inspectQueue(queueName) ?? fail(`${variant.name}: queue ${queueName} is gone`);
      const left = queue.messages.ready.length + queue.messages.inflight.length + queue.messages.delayed.length;
      if (left !== 0) fail(`${variant.name}: ${left} message(s) left in ${queueName}: the job message was not deleted`);
      const secretReads = secrets.requests.slice(secretReadsBefore);
      if (secretReads.length !== 1) fail(`${variant.name}: the secret was read ${secretReads.length} times, expected once`);
      const summary = invoked.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line['message'] === 'reconciliation finished');
      if (!summary || summary['jobId'] !== jobId || summary['function_request_id'] !== 'bundle-check-request') {
        fail(`${variant.name}: no Powertools "reconciliation finished" line with the job and request id:\n${invoked.stdout}`);
      }
      console.log(`ok  ${variant.name}: ${(size / 1024).toFixed(0)} KiB, job ${jobId} success 1/1/1, message deleted`);
    }
  } finally {
    secrets?.server.close();
    sqs.destroy();
    await fauxqs.stop();
    if (createdSchema) await client.query('DROP SCHEMA IF EXISTS orca CASCADE');
    await client.end();
    await rm(work, { recursive: true, force: true });
  }
  console.log(`check-bundles: ${VARIANTS.length} bundles passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

await main();
