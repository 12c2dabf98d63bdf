import { describe, expect, it } from 'vitest';
import { InvalidInputError, OrcaStatus, createHandler, type LambdaContextLike } from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { noWait } from '../helpers/faults.js';
import { recordCalls } from '../helpers/recording.js';
import { readJob, snapshotJobs, stageJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const FIELD = 'context.getRemainingTimeInMillis';

describe('the Lambda context of the handler', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_context',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });

  /** A handler over spies of the test database and the emulator's client, for one queue. */
  const spiedHandler = (queueUrl: string) => {
    const database = recordCalls(t.db);
    const client = recordCalls(sqs.sqs);
    let databaseFactoryCalls = 0;
    const handler = createHandler({
      database: () => {
        databaseFactoryCalls += 1;
        return database.spy;
      },
      sqs: client.spy,
      queueUrl,
      env: {},
      schema,
      retry: noWait,
    });
    return { handler, databaseCalls: database.calls, sqsCalls: client.calls, databaseFactoryCalls: () => databaseFactoryCalls };
  };

  describe('without getRemainingTimeInMillis the run has no deadline, and succeeds', () => {
    it.each([
      ['no context', undefined],
      ['an empty context', {}],
      ['a context with only a request id', { awsRequestId: 'request-7' }],
    ])('%s', async (_label, context) => {
      // Prepare
      const queue = await sqs.createQueue({ fifo: true });
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const { handler } = spiedHandler(queue.url);

      // Act
      const output = await handler(event, context as LambdaContextLike | undefined);

      // Assess
      expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
      expect(await queue.messagesLeft()).toBe(0);
    });
  });

  describe(`refuses a context that cannot tell the remaining time: InvalidInputError naming ${FIELD}, before any database or queue call`, () => {
    const throwingGetter = Object.defineProperty({}, 'getRemainingTimeInMillis', {
      get() {
        throw new Error('context revoked');
      },
    });
    const cases: Array<[string, unknown, RegExp]> = [
      ['a number', { getRemainingTimeInMillis: 300_000 }, /^context\.getRemainingTimeInMillis must be a function, got number 300000$/],
      ['a string', { getRemainingTimeInMillis: '300000' }, /must be a function, got "300000"$/],
      ['null', { getRemainingTimeInMillis: null }, /must be a function, got null$/],
      ['an object', { getRemainingTimeInMillis: { ms: 1 } }, /must be a function, got an object$/],
      [
        'a function that throws',
        {
          getRemainingTimeInMillis: () => {
            throw new Error('no invocation in progress');
          },
        },
        /^context\.getRemainingTimeInMillis\(\) failed: no invocation in progress$/,
      ],
      ['a function that returns a string', { getRemainingTimeInMillis: () => '300000' }, /must return a finite number of milliseconds, got "300000"$/],
      ['a function that returns NaN', { getRemainingTimeInMillis: () => Number.NaN }, /must return a finite number of milliseconds, got NaN$/],
      ['a function that returns Infinity', { getRemainingTimeInMillis: () => Number.POSITIVE_INFINITY }, /got Infinity$/],
      ['a getter that throws', throwingGetter, /^context\.getRemainingTimeInMillis could not be read: context revoked$/],
    ];

    it.each(cases)('%s', async (_label, context, message) => {
      // Prepare
      const queue = await sqs.createQueue();
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const { handler, databaseCalls, sqsCalls, databaseFactoryCalls } = spiedHandler(queue.url);
      const before = await snapshotJobs(t, schema);

      // Act
      const failure = handler(event, context as LambdaContextLike);

      // Assess
      await expect(failure).rejects.toBeInstanceOf(InvalidInputError);
      await expect(failure).rejects.toMatchObject({ code: 'INVALID_INPUT', field: FIELD });
      await expect(failure).rejects.toThrow(message);
      expect(databaseFactoryCalls()).toBe(0);
      expect(databaseCalls).toEqual([]);
      expect(sqsCalls).toEqual([]);
      expect(await snapshotJobs(t, schema)).toEqual(before);
      expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
      expect(await queue.messagesLeft()).toBe(1);
    });

    it('keeps what the failing context threw as the cause', async () => {
      // Prepare
      const queue = await sqs.createQueue();
      const { event } = await stageJob(t, schema, BUCKET, queue);
      const { handler } = spiedHandler(queue.url);
      const thrown = new RangeError('clock unavailable');

      // Act
      const error = await handler(event, {
        getRemainingTimeInMillis: () => {
          throw thrown;
        },
      }).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).cause).toBe(thrown);
    });

    it.each([
      ['a string', 'context'],
      ['a number', 42],
    ])('refuses %s as the context, naming context', async (_label, context) => {
      // Prepare
      const queue = await sqs.createQueue();
      const { event } = await stageJob(t, schema, BUCKET, queue);
      const { handler, databaseCalls } = spiedHandler(queue.url);

      // Act
      const failure = handler(event, context as unknown as LambdaContextLike);

      // Assess
      await expect(failure).rejects.toMatchObject({ code: 'INVALID_INPUT', field: 'context' });
      expect(databaseCalls).toEqual([]);
    });
  });

  it('leaves an unreadable request id out of the log line and runs the job', async () => {
    // Prepare
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const { handler } = spiedHandler(queue.url);
    const context = Object.defineProperty({ getRemainingTimeInMillis: () => 600_000 }, 'awsRequestId', {
      get() {
        throw new Error('revoked');
      },
    });

    // Act
    const output = await handler(event, context as LambdaContextLike);

    // Assess
    expect(output).toMatchObject({ jobId });
  });
});
