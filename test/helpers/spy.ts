/**
 * Wraps a real object (a database, an SQS client) so that every method call is recorded by name
 * and then forwarded to the object itself. Not a double: the real object does all the work.
 */
export function recordCalls<T extends object>(target: T): { spy: T; calls: string[] } {
  const calls: string[] = [];
  const spy = new Proxy(target, {
    get(object, property) {
      // Read with the real object as receiver, and call with it as `this`: PGlite keeps
      // private fields that a proxy as `this` could not reach.
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return (value as (...a: unknown[]) => unknown).apply(object, args);
      };
    },
  });
  return { spy, calls };
}

/** A logger that keeps every line it is given, fields included, as text. */
export function captureLogger(): {
  logger: Record<'debug' | 'info' | 'warn' | 'error', (message: string, fields?: Record<string, unknown>) => void>;
  lines: string[];
} {
  const lines: string[] = [];
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  };
  return { logger: { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }, lines };
}
