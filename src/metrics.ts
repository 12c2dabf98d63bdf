import { OrcaReconcileError, messageOf } from './errors.js';
import type { Logger } from './types.js';

/**
 * Where a run publishes its numbers. A Powertools `Metrics` instance fits as it is; anything else
 * with these three methods does too.
 *
 * Each run adds the dimension `orcaArchiveLocation` and, on success, the metrics `phantoms`,
 * `orphans` and `mismatches` (Count) and `duration` (Milliseconds); on failure `failures`
 * (Count, 1) with the dimension `errorCode` (the {@link OrcaReconcileError} code, or `UNKNOWN`).
 * It then calls `publishStoredMetrics()`, so that the bucket's dimension never carries over to
 * another run.
 *
 * @example
 * ```ts
 * import { Metrics } from '@aws-lambda-powertools/metrics';
 * import { createHandler } from 'orca-reconcile';
 *
 * const metrics = new Metrics({ namespace: 'orca', serviceName: 'reconcile' });
 * export const handler = createHandler({ metrics });
 * ```
 * @category Reconcile
 */
export interface MetricsSink {
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: 'Count' | 'Milliseconds', value: number): unknown;
  publishStoredMetrics(): unknown;
}

/** What one run tells its metrics sink. */
export type RunMetrics =
  | { outcome: 'success'; orcaArchiveLocation: string; phantoms: number; orphans: number; mismatches: number; durationMs: number }
  | { outcome: 'failure'; orcaArchiveLocation: string; error: unknown; durationMs: number };

/**
 * Publishes one run's numbers. A sink that throws never changes the run's outcome: its failure
 * is logged at `warn`, and whatever it buffered is its own business.
 */
export function publishRunMetrics(sink: MetricsSink | undefined, logger: Logger, run: RunMetrics): void {
  if (!sink) return;
  try {
    sink.addDimension('orcaArchiveLocation', run.orcaArchiveLocation);
    if (run.outcome === 'success') {
      sink.addMetric('phantoms', 'Count', run.phantoms);
      sink.addMetric('orphans', 'Count', run.orphans);
      sink.addMetric('mismatches', 'Count', run.mismatches);
    } else {
      sink.addDimension('errorCode', run.error instanceof OrcaReconcileError ? run.error.code : 'UNKNOWN');
      sink.addMetric('failures', 'Count', 1);
    }
    sink.addMetric('duration', 'Milliseconds', run.durationMs);
    sink.publishStoredMetrics();
  } catch (error) {
    logger.warn('publishing the run metrics failed', { error: messageOf(error) });
  }
}
