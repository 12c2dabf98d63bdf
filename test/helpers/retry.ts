/** Retry settings that neither wait nor jitter: for runs where a retry would only hide a failure. */
export const noWait = { sleep: async () => undefined, random: () => 0 };

/**
 * Retry settings that record each backoff instead of waiting it out. `random` is the jitter's
 * draw in [0, 1): each backoff gets that many seconds of jitter (none by default).
 */
export function recordedBackoff(random = 0) {
  const waits: number[] = [];
  return { waits, retry: { sleep: async (ms: number) => void waits.push(ms), random: () => random } };
}
