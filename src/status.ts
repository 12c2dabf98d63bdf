/**
 * Status ids of `reconcile_status`, as stored in `reconcile_job.status_id`.
 *
 * @example
 * ```ts
 * import { OrcaStatus, updateJob } from 'orca-reconcile';
 *
 * await updateJob(pool, { jobId: 42, status: OrcaStatus.GeneratingReports });
 * ```
 * @category Jobs
 */
export const OrcaStatus = {
  GettingS3List: 1,
  Staged: 2,
  GeneratingReports: 3,
  Error: 4,
  Success: 5,
} as const;

/**
 * One of the {@link OrcaStatus} values.
 *
 * @example
 * ```ts
 * import { OrcaStatus } from 'orca-reconcile';
 *
 * const finished = (status: OrcaStatus) => status === OrcaStatus.Error || status === OrcaStatus.Success;
 * ```
 * @category Jobs
 */
export type OrcaStatus = (typeof OrcaStatus)[keyof typeof OrcaStatus];
