import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  createProgressTables,
  InvalidInputError,
  RunNotReadyError,
  type RunProgress,
  StaleInventoryError,
  SupersededJobError,
  generateReports,
} from '../../src/index.js';
import { finishRunIn } from '../../src/pieces.js';
import { quoteSchema } from '../../src/sql/schema.js';
import { archiveCounts, seedArchive } from '../helpers/archive.js';
import { libraryPool, usingPostgres, useOrcaSchema } from '../helpers/database.js';
import {
  type HeldLock,
  holdAdvisoryLock,
  installPausePoint,
  jobLockKey,
  newPauseKey,
  track,
  waitForLockWait,
  waitForLockWaiters,
} from '../helpers/faults.js';
import { REPORT_TABLES, asMultisets } from '../helpers/load-dataset.js';
import { insertJob, readReports } from '../helpers/rows.js';

const BUCKET = 'lp-daac-orca-primary';

/** Collects the info lines a run logs. */
function infoLog() {
  const lines: { message: string; fields: Record<string, unknown> }[] = [];
  const logger = {
    warn: (message: string, fields?: Record<string, unknown>) => lines.push({ message: `warn: ${message}`, fields: fields ?? {} }),
    info: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields: fields ?? {} }),
  };
  const pieces = () => lines.filter((line) => line.message === 'piece finished').map((line) => Number(line.fields['piece']));
  return { lines, logger, pieces };
}

describe('a pieced run records its progress and resumes', () => {
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_pieces_resume', buckets: [BUCKET], emptyTablesBeforeEach: true });
  const s = `"${schema}"`;
  const target = (jobId: number) => ({ jobId, orcaArchiveLocation: BUCKET });

  it('logs one info line per piece: job, piece, total, rows and duration', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 600);
    const log = infoLog();
    const counts = await generateReports(t.db, target(jobId), { schema, pieces: 4, logger: log.logger });
    expect(counts).toEqual(archiveCounts(600));
    expect(log.pieces().sort()).toEqual([1, 2, 3, 4]);
    const lines = log.lines.filter((line) => line.message === 'piece finished');
    for (const { fields } of lines) {
      expect(Object.keys(fields).sort()).toEqual(['durationMs', 'jobId', 'piece', 'pieces', 'rows', 'runId']);
      expect(fields).toMatchObject({ jobId, pieces: 4 });
    }
    expect(lines.reduce((sum, { fields }) => sum + Number(fields['rows']), 0)).toBe(counts.phantoms + counts.orphans + counts.mismatches);
    expect(log.lines[0]).toMatchObject({ message: 'run planned', fields: { jobId, pieces: 4, piecesDone: 0, files: 588 + 588 } });
  });

  it('a stopped run leaves the earlier reports in place, and the next call does only the pieces left', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 900);
    const expected = archiveCounts(900);
    // Earlier reports of the job: a reader sees them, not a part of the new run, until it finishes.
    await generateReports(t.db, target(jobId), { schema });
    const before = asMultisets(await readReports(t, schema, jobId));
    const controller = new AbortController();
    const first = infoLog();
    const seen: RunProgress[] = [];
    const stopped = generateReports(t.db, target(jobId), {
      schema,
      pieces: 6,
      logger: first.logger,
      signal: controller.signal,
      onProgress: (progress) => {
        seen.push(progress);
        if (progress.piecesDone === 2) controller.abort(new Error('stop after two pieces'));
      },
    });
    await expect(stopped).rejects.toMatchObject({ name: 'AbortError' });
    expect(first.pieces()).toHaveLength(2);
    expect(asMultisets(await readReports(t, schema, jobId))).toEqual(before);
    const [progress] = await t.query<{ done: number; finished_at: Date | null }>(
      `SELECT (SELECT count(*) FROM ${s}.orca_reconcile_piece p WHERE p.run_id = r.id)::int AS done, r.finished_at
       FROM ${s}.orca_reconcile_run r WHERE r.job_id = $1`,
      [jobId],
    );
    expect(progress).toEqual({ done: 2, finished_at: null });

    const second = infoLog();
    const resumedProgress: RunProgress[] = [];
    const counts = await generateReports(t.db, target(jobId), {
      schema,
      pieces: 6,
      logger: second.logger,
      onProgress: (p) => resumedProgress.push(p),
    });
    expect(counts).toEqual(expected);
    expect(second.lines[0]).toMatchObject({ message: 'run resumed', fields: { piecesDone: 2, pieces: 6 } });
    expect(second.pieces().sort()).toEqual([1, 2, 3, 4, 5, 6].filter((piece) => !first.pieces().includes(piece)));
    expect(resumedProgress[0]).toMatchObject({ resumed: true, piecesDone: 2, pieces: 6 });
    expect(resumedProgress.at(-1)).toMatchObject({ piecesDone: 6, filesDone: resumedProgress.at(-1)!.files });
    expect(asMultisets(await readReports(t, schema, jobId))).toEqual(before);
    const runs = await t.query(`SELECT id FROM ${s}.orca_reconcile_run WHERE job_id = $1`, [jobId]);
    expect(runs).toHaveLength(1);
  });

  it('a call after a finished run computes every piece afresh, and drops the staging tables', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 300);
    await generateReports(t.db, target(jobId), { schema, pieces: 3 });
    const again = infoLog();
    await generateReports(t.db, target(jobId), { schema, pieces: 3, logger: again.logger });
    expect(again.lines.filter((line) => line.message.startsWith('warn'))).toEqual([]);
    expect(again.lines[0]?.message).toBe('run planned');
    expect(again.pieces().sort()).toEqual([1, 2, 3]);
    const runs = await t.query<{ finished: boolean }>(
      `SELECT finished_at IS NOT NULL AS finished FROM ${s}.orca_reconcile_run WHERE job_id = $1 ORDER BY id`,
      [jobId],
    );
    expect(runs).toEqual([{ finished: true }, { finished: true }]);
    const staging = await t.query(
      `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND relname ~ '^orca_reconcile_[0-9]+_'`,
      [schema],
    );
    expect(staging).toEqual([]);
  });

  it('a run lost to a server restart is planned again from the start', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 300);
    const controller = new AbortController();
    await expect(
      generateReports(t.db, target(jobId), {
        schema,
        pieces: 3,
        signal: controller.signal,
        onProgress: (p) => p.piecesDone === 1 && controller.abort(),
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    // What a restart leaves: the run began under another postmaster, and its unlogged tables are empty.
    await t.query(`UPDATE ${s}.orca_reconcile_run SET server_started_at = server_started_at - interval '1 hour' WHERE job_id = $1`, [jobId]);
    const log = infoLog();
    expect(await generateReports(t.db, target(jobId), { schema, pieces: 3, logger: log.logger })).toEqual(archiveCounts(300));
    expect(log.lines[0]).toMatchObject({ message: 'warn: starting the run again' });
    expect(log.pieces().sort()).toEqual([1, 2, 3]);
    const runs = await t.query<{ state: string }>(
      `SELECT CASE WHEN discarded_at IS NOT NULL THEN 'discarded' WHEN finished_at IS NOT NULL THEN 'finished' ELSE 'open' END AS state
       FROM ${s}.orca_reconcile_run WHERE job_id = $1 ORDER BY id`,
      [jobId],
    );
    expect(runs.map((run) => run.state)).toEqual(['discarded', 'finished']);
  });

  it('a newer job of the bucket stops the resumed run: the reports stay as they were', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 400);
    // A run stopped after its first piece; then the loader makes a newer job (before it reloads).
    const controller = new AbortController();
    const stopped = generateReports(t.db, target(jobId), {
      schema,
      pieces: 4,
      signal: controller.signal,
      onProgress: (p) => p.piecesDone === 1 && controller.abort(),
    });
    await expect(stopped).rejects.toMatchObject({ name: 'AbortError' });
    const before = asMultisets(await readReports(t, schema, jobId));
    const newer = await insertJob(t, schema, BUCKET);
    const refused = generateReports(t.db, target(jobId), { schema, pieces: 4 });
    await expect(refused).rejects.toBeInstanceOf(SupersededJobError);
    await expect(refused).rejects.toMatchObject({ newerJobId: newer });
    expect(asMultisets(await readReports(t, schema, jobId))).toEqual(before);
  });

  it('staging tables of a run id that has no run row (the progress tables made again) are dropped, not an error', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 200);
    const controller = new AbortController();
    await expect(
      generateReports(t.db, target(jobId), { schema, pieces: 2, signal: controller.signal, onProgress: () => controller.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    // The progress tables are dropped and made again: run ids start over, the old tables stay.
    await t.exec(`DROP TABLE ${s}.orca_reconcile_piece, ${s}.orca_reconcile_run`);
    await createProgressTables(t.db, { schema });
    expect(await generateReports(t.db, target(jobId), { schema, pieces: 3 })).toEqual(archiveCounts(200));
  });

  it('foreign rows in the listing are refused by the piece that holds them', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 200);
    const other = await insertJob(t, schema, 'x9-deep-orca');
    await t.query(`UPDATE ${s}.reconcile_s3_object SET job_id = $1 WHERE key_path = $2`, [other, `job-${jobId}/dir-5/file-5.h5`]);
    await expect(generateReports(t.db, target(jobId), { schema, pieces: 5 })).rejects.toBeInstanceOf(StaleInventoryError);
    expect(await readReports(t, schema, jobId)).toEqual({ phantoms: [], orphans: [], mismatches: [] });
  });

  it("'auto' keeps the single statement for a small bucket: no run is recorded", async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 500);
    await t.query(`ANALYZE ${s}.reconcile_s3_object`);
    expect(await generateReports(t.db, target(jobId), { schema, pieces: 'auto', concurrency: 2 })).toEqual(archiveCounts(500));
    expect(await t.query(`SELECT 1 FROM ${s}.orca_reconcile_run`)).toEqual([]);
  });

  it('bad pieces and concurrency are refused before any statement', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 10);
    for (const pieces of [0, 1025, 2.5, 'all', null]) {
      const call = generateReports(t.db, target(jobId), { schema, pieces: pieces as never });
      await expect(call, String(pieces)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(call, String(pieces)).rejects.toThrow(/pieces must be 'auto' or a whole number from 1 to 1024/);
    }
    for (const concurrency of [0, 65, 1.5, '2']) {
      await expect(generateReports(t.db, target(jobId), { schema, pieces: 2, concurrency: concurrency as never })).rejects.toThrow(
        /concurrency must be a whole number from 1 to 64/,
      );
    }
    await expect(generateReports(t.db, target(jobId), { schema, pieces: 2, onProgress: 'yes' as never })).rejects.toThrow(
      /onProgress must be a function/,
    );
    expect(await t.query(`SELECT 1 FROM ${s}.orca_reconcile_run`)).toEqual([]);
  });

  it('a schema without the progress tables gets an error that says how to add them', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 10);
    await t.exec(`ALTER TABLE ${s}.orca_reconcile_piece RENAME TO orca_reconcile_piece_away`);
    try {
      const call = generateReports(t.db, target(jobId), { schema, pieces: 2 });
      await expect(call).rejects.toBeInstanceOf(ConfigurationError);
      await expect(call).rejects.toThrow(/createProgressTables/);
    } finally {
      await t.exec(`ALTER TABLE ${s}.orca_reconcile_piece_away RENAME TO orca_reconcile_piece`);
    }
  });

  it('the finish refuses a run with pieces left, naming how many', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 100);
    const controller = new AbortController();
    await expect(
      generateReports(t.db, target(jobId), { schema, pieces: 3, signal: controller.signal, onProgress: () => controller.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const [run] = await t.query<{ id: string }>(`SELECT id FROM ${s}.orca_reconcile_run WHERE job_id = $1`, [jobId]);
    const scope = { database: t.db, jobId, orcaArchiveLocation: BUCKET, schema: quoteSchema(schema) };
    const finishing = t.db.query('SELECT 1').then(() => finishRunIn(t.db, scope, Number(run!.id)));
    await expect(finishing).rejects.toBeInstanceOf(RunNotReadyError);
    await expect(finishing).rejects.toThrow(/has 0 of 3 pieces finished/);
  });
});

describe('pieces of one run share the work across workers (real server)', () => {
  const { database: t, schema, addPool } = useOrcaSchema({
    prefix: 'orca_pieces_workers',
    buckets: [BUCKET],
    emptyTablesBeforeEach: true,
    serverOnly: true,
  });
  const s = `"${schema}"`;
  const target = (jobId: number) => ({ jobId, orcaArchiveLocation: BUCKET });

  it.runIf(usingPostgres)('two whole runs of one job at once share one run: every piece is done once, both return the reports', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 2000);
    const [a, b] = [infoLog(), infoLog()];
    const poolA = addPool(libraryPool('orca-reconcile-pieces-a'));
    const poolB = addPool(libraryPool('orca-reconcile-pieces-b'));
    const results = await Promise.all([
      generateReports(poolA, target(jobId), { schema, pieces: 8, concurrency: 2, logger: a.logger }),
      generateReports(poolB, target(jobId), { schema, pieces: 8, concurrency: 2, logger: b.logger }),
    ]);
    expect(results).toEqual([archiveCounts(2000), archiveCounts(2000)]);
    expect([...a.pieces(), ...b.pieces()].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The copy's block ranges ran on several connections at once: their rows add up exactly.
    const runs = await t.query<{ pieces: number; catalog_files: string; listing_files: string }>(
      `SELECT pieces, catalog_files, listing_files FROM ${s}.orca_reconcile_run WHERE job_id = $1`,
      [jobId],
    );
    expect(runs).toEqual([{ pieces: 8, catalog_files: '1960', listing_files: '1960' }]);
  });

  it.runIf(usingPostgres)('a worker killed mid-piece loses only that piece: it is done again, the others are not', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 3000);
    const pause = newPauseKey();
    const dropPause = await installPausePoint(t, schema, 'piece_3', { table: 'orca_reconcile_piece', event: 'INSERT', when: 'NEW.piece = 3' }, pause);
    const held = await holdAdvisoryLock(pause);
    const log = infoLog();
    const pool = addPool(libraryPool('orca-reconcile-pieces-kill'));
    const retried: number[] = [];
    const run = generateReports(pool, target(jobId), {
      schema,
      pieces: 6,
      concurrency: 3,
      logger: { ...log.logger, warn: (message, fields) => (retried.push(1), log.logger.warn(message, fields)) },
      retry: { maxRetries: 3, backoffInSeconds: 0.05 },
    });
    try {
      // Piece 3's worker has written its rows and waits, inside its transaction, before commit.
      const waiting = await waitForLockWait(t, 'orca-reconcile-pieces-kill', pause, { timeoutMs: 30_000 });
      const [killed] = await t.query<{ killed: boolean }>('SELECT pg_terminate_backend($1, 5000) AS killed', [waiting.pid]);
      expect(killed).toEqual({ killed: true });
    } finally {
      // The retried piece passes the pause point once the lock is free; the trigger goes after.
      await held.release();
      await dropPause();
    }
    expect(await run).toEqual(archiveCounts(3000));
    expect(log.pieces().sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(retried.length).toBeGreaterThanOrEqual(1);
    const pieces = await t.query<{ piece: number }>(
      `SELECT piece FROM ${s}.orca_reconcile_piece p JOIN ${s}.orca_reconcile_run r ON r.id = p.run_id WHERE r.job_id = $1 ORDER BY piece`,
      [jobId],
    );
    expect(pieces.map((row) => row.piece)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('the plan copies the catalog in block ranges from one snapshot (real server)', () => {
  const { database: t, schema, addPool } = useOrcaSchema({ prefix: 'orca_pieces_snapshot', buckets: [BUCKET], emptyTablesBeforeEach: true, serverOnly: true });
  const s = `"${schema}"`;

  /**
   * Starts `begin` on a pool of its own (application `application`) and stops the copy's ranges
   * at the job's lock: the planner is paused inside its transaction, which holds the lock; a
   * session queues for the lock behind it and gets it when the plan commits; `ranges` ranges,
   * which take it in shared mode after importing the snapshot, then wait for it. `release()` lets
   * everything go.
   */
  async function stopRangesAtJobLock<T>(jobId: number, application: string, ranges: number, begin: (pool: pg.Pool) => Promise<T>) {
    const pause = newPauseKey();
    const dropPause = await installPausePoint(t, schema, application.replaceAll('-', '_'), { table: 'orca_reconcile_run', event: 'INSERT' }, pause);
    const paused = await holdAdvisoryLock(pause);
    const pool = addPool(libraryPool(application));
    const run = begin(pool);
    run.catch(() => undefined);
    let blocker: HeldLock | undefined;
    const release = async () => {
      await paused.release();
      await blocker?.release();
      await dropPause();
    };
    try {
      await waitForLockWait(t, application, pause);
      const job = jobLockKey(schema, jobId);
      const blocking = holdAdvisoryLock(job);
      await waitForLockWaiters(t, job, 1);
      await paused.release();
      blocker = await blocking;
      await waitForLockWaiters(t, job, ranges);
    } catch (error) {
      await release();
      throw error;
    }
    return { run, pool, release };
  }

  it.runIf(usingPostgres)('catalog changes made while the ranges are copied are not seen: the reports are those of the catalog when the copy began', async () => {
    // Prepare: the reports of the catalog as it is now.
    const jobId = await seedArchive(t, schema, BUCKET, 3000);
    await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });
    const before = asMultisets(await readReports(t, schema, jobId));
    for (const table of REPORT_TABLES) await t.query(`DELETE FROM ${s}.${table} WHERE job_id = $1`, [jobId]);

    // Three ranges wait for the job's lock, inside transactions that imported the snapshot.
    const stopped = await stopRangesAtJobLock(jobId, 'orca-reconcile-snapshot', 3, (pool) =>
      generateReports(pool, { jobId, orcaArchiveLocation: BUCKET }, { schema, pieces: 4, concurrency: 3 }),
    );
    const run = track(stopped.run);
    try {
      // ORCA changes the catalog meanwhile: a match becomes an etag mismatch (a new tuple at the
      // end of the table), a phantom's file goes, a new file arrives.
      await t.query(`UPDATE ${s}.files SET etag = '"rewritten"' WHERE key_path = $1`, [`job-${jobId}/dir-5/file-5.h5`]);
      await t.query(`DELETE FROM ${s}.files WHERE key_path = $1`, [`job-${jobId}/dir-0/file-0.h5`]);
      await t.query(
        `INSERT INTO ${s}.files (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag, version, size_in_bytes, storage_class_id)
         SELECT granule_id, 'late.h5', orca_archive_location, cumulus_archive_location, 'late/arrival.h5', ingest_time, etag, version, 1, 1
         FROM ${s}.files LIMIT 1`,
      );
      expect(run.settled()).toBe(false);
    } finally {
      await stopped.release();
    }

    // Assess
    await run.promise;
    expect(asMultisets(await readReports(t, schema, jobId))).toEqual(before);
  });

  it.runIf(usingPostgres)('an abort while the ranges are copied stops them on the server; the next call copies again and finishes', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 2000);
    const controller = new AbortController();
    // Two ranges wait for the job's lock, inside transactions that imported the snapshot.
    const stopped = await stopRangesAtJobLock(jobId, 'orca-reconcile-copy-abort', 2, (pool) =>
      generateReports(pool, { jobId, orcaArchiveLocation: BUCKET }, { schema, pieces: 4, concurrency: 2, signal: controller.signal }),
    );
    try {
      controller.abort(new Error('operator stop'));
      await expect(stopped.run).rejects.toMatchObject({ name: 'AbortError', message: expect.stringContaining('copy the catalog was aborted: operator stop') });
      const waiting = await t.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'orca-reconcile-copy-abort' AND state <> 'idle'`);
      expect(waiting).toEqual([]);
    } finally {
      await stopped.release();
    }
    const [copied] = await t.query<{ catalog_files: string | null }>(`SELECT catalog_files FROM ${s}.orca_reconcile_run WHERE job_id = $1`, [jobId]);
    expect(copied).toEqual({ catalog_files: null });
    expect(await generateReports(stopped.pool, { jobId, orcaArchiveLocation: BUCKET }, { schema, pieces: 4, concurrency: 2 })).toEqual(archiveCounts(2000));
  });
});
