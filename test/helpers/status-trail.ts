import type { TestDatabase } from './database.js';

/** One committed write to a reconcile_job row, as the trigger saw it. */
export interface StatusTrailEntry {
  status_id: number;
  end_time: Date | null;
  error_message: string | null;
}

/**
 * Adds to the test schema a trigger that copies every committed update of reconcile_job into a
 * side table, so a test sees the statuses a job went through without mocking anything: a write
 * inside a transaction that rolls back leaves no entry, as it leaves no trace for other readers.
 */
export async function installStatusTrail(t: TestDatabase, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await t.exec(`
CREATE TABLE ${s}.job_status_trail (
  seq bigserial PRIMARY KEY,
  job_id int8 NOT NULL,
  status_id int2 NOT NULL,
  end_time timestamptz NULL,
  error_message text NULL
);
CREATE FUNCTION ${s}.record_job_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ${s}.job_status_trail (job_id, status_id, end_time, error_message)
  VALUES (NEW.id, NEW.status_id, NEW.end_time, NEW.error_message);
  RETURN NULL;
END
$$;
CREATE TRIGGER record_job_status AFTER UPDATE ON ${s}.reconcile_job
  FOR EACH ROW EXECUTE FUNCTION ${s}.record_job_status();`);
}

/** The writes recorded for one job, oldest first. */
export async function readStatusTrail(t: TestDatabase, schema: string, jobId: number): Promise<StatusTrailEntry[]> {
  return t.query<StatusTrailEntry>(
    `SELECT status_id, end_time, error_message FROM "${schema}".job_status_trail WHERE job_id = $1 ORDER BY seq`,
    [jobId],
  );
}
