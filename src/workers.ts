/**
 * Runs `workers` loops that each take the next item until none is left or one of them fails.
 * Resolves only once every loop has stopped, so that no work of the call is still running on
 * the caller's connections when it returns; rejects with the first failure.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  workers: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(workers, items.length)) }, async () => {
      while (!failure && next < items.length) {
        const item = items[next++] as T;
        try {
          await work(item);
        } catch (error) {
          failure ??= { error };
        }
      }
    }),
  );
  if (failure) throw failure.error;
}
