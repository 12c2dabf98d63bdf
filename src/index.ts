export { generateReports } from './reports.js';
export type { GenerateReportsOptions, PieceOptions, ReportCounts, ReportTarget } from './reports.js';
export type { RunProgress } from './run.js';
export { updateJob } from './job.js';
export { createOrcaTables, createProgressTables, progressTablesSql } from './sql/ddl.js';
export type { CreateOrcaTablesOptions } from './sql/ddl.js';
export { OrcaStatus } from './status.js';
export type { JobUpdate, UpdateJobOptions } from './job.js';
export { isTransientDatabaseError, retryError } from './retry.js';
export type { Backoff, RetryOptions } from './retry.js';
export { removeJobFromQueue } from './queue.js';
export type { QueueMessage, RemoveJobOptions, SqsSender } from './queue.js';
export { task } from './task.js';
export { taskStep } from './steps.js';
export type {
  FailStepOutput,
  FinishStepOutput,
  PieceStepOutput,
  PlanStepOutput,
  TaskStep,
  TaskStepInput,
  TaskStepOutput,
} from './steps.js';
export type { TaskDependencies, TaskInput, TaskOutput } from './task.js';
export { createHandler } from './handler.js';
export type { DbConnectInfo, HandlerOptions, LambdaContextLike, ReconcileHandler, ReconcileStepEvent } from './handler.js';
export { readReport, readReportPage } from './read-report.js';
export type {
  MismatchReportRow,
  OrphanReportRow,
  PhantomReportRow,
  ReadReportOptions,
  ReadReportPageOptions,
  ReportKind,
  ReportPage,
  ReportQuery,
  ReportRows,
} from './read-report.js';
export { compareJobs, summarizeJobChanges } from './compare.js';
export type {
  ChangeCounts,
  ChangeType,
  CompareJobsOptions,
  ComparedJobs,
  JobChangeSummary,
  JobComparison,
  NewDiscrepancy,
  PersistingDiscrepancy,
  ReportChange,
  ResolvedDiscrepancy,
  SummarizeJobChangesOptions,
} from './compare.js';
export { inputSchema, outputSchema } from './schemas.js';
export type { ReconcileEvent, ReconcileOutput } from './schemas.js';
export { parseReconcileEvent } from './validation.js';
export type { ReconcileEventInput } from './validation.js';
export {
  AbortError,
  ConfigurationError,
  DatabaseError,
  DifferentLocationsError,
  InvalidInputError,
  InventoryNotLoadedError,
  JobNotFoundError,
  JobNotSuccessfulError,
  LocationMismatchError,
  NoPreviousJobError,
  OrcaReconcileError,
  QueueError,
  RunLostError,
  RunNotReadyError,
  StaleInventoryError,
  SupersededJobError,
  TimeoutError,
  isRefusal,
} from './errors.js';
export type { OrcaReconcileErrorCode } from './errors.js';
export type { Database, PoolLike, Queryable, TransactionRunner } from './database.js';
export type { Logger, SchemaOptions } from './types.js';
export type { MetricsSink } from './metrics.js';
