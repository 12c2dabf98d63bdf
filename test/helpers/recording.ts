/**
 * Watching the code under test without replacing it: a recorder of the method calls made on a
 * real object, a logger that keeps what it is given, and a scan for a secret in every rendering
 * and property of a value (errors, log fields).
 */
import { inspect } from 'node:util';

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

/** One log call as the library made it, fields kept as objects (not flattened to JSON). */
export interface LogCall {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown> | undefined;
}

/**
 * A logger of every level, debug included, that keeps each call twice: as it was made
 * (`calls`), and as one line of text, `level message {fields as JSON}` (`lines`).
 */
export function captureLogger(): {
  logger: Record<LogCall['level'], (message: string, fields?: Record<string, unknown>) => void>;
  calls: LogCall[];
  lines: string[];
} {
  const calls: LogCall[] = [];
  const lines: string[] = [];
  const write = (level: LogCall['level']) => (message: string, fields?: Record<string, unknown>) => {
    calls.push({ level, message, fields });
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  };
  return { logger: { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }, calls, lines };
}

/**
 * Paths (like `$.cause.errors.0.message`) of every place under `root` where `secret` appears:
 * string values, property keys and byte buffers, reached through every own property, enumerable
 * or not, symbols included, plus Map and Set contents. Getters are read; one that throws is skipped.
 */
export function secretPaths(root: unknown, secret: string, maxDepth = 10): string[] {
  const found: string[] = [];
  const seen = new WeakSet<object>();
  const visit = (value: unknown, path: string, depth: number): void => {
    if (typeof value === 'string') {
      if (value.includes(secret)) found.push(path);
      return;
    }
    if (typeof value !== 'object' || value === null || depth > maxDepth || seen.has(value)) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      if (Buffer.from(value.buffer, value.byteOffset, value.byteLength).includes(secret)) found.push(path);
      return;
    }
    if (value instanceof Map) {
      for (const [key, entry] of value) {
        visit(key, `${path}<map key>`, depth + 1);
        visit(entry, `${path}<map ${String(key)}>`, depth + 1);
      }
    }
    if (value instanceof Set) {
      for (const entry of value) visit(entry, `${path}<set>`, depth + 1);
    }
    for (const key of Reflect.ownKeys(value)) {
      const name = String(key);
      if (name.includes(secret)) found.push(`${path}[key ${name}]`);
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      let child: unknown;
      if (descriptor && 'value' in descriptor) {
        child = descriptor.value;
      } else if (descriptor?.get) {
        try {
          child = descriptor.get.call(value);
        } catch {
          continue;
        }
      }
      visit(child, `${path}.${name}`, depth + 1);
    }
  };
  visit(root, '$', 0);
  return found;
}

/**
 * JSON of `value` in which every object is replaced by all of its own property names, enumerable
 * or not, so an Error's message, stack and cause (which plain JSON.stringify drops) are written out.
 */
export function ownPropertyJson(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, current: unknown) => {
    if (typeof current === 'bigint' || typeof current === 'symbol' || typeof current === 'function') {
      return String(current);
    }
    if (typeof current !== 'object' || current === null) return current;
    if (seen.has(current)) return '[seen]';
    seen.add(current);
    if (Array.isArray(current)) return current;
    const copy: Record<string, unknown> = {};
    for (const name of Object.getOwnPropertyNames(current)) {
      try {
        copy[name] = (current as Record<string, unknown>)[name];
      } catch (error) {
        copy[name] = `[getter threw ${String(error)}]`;
      }
    }
    return copy;
  });
}

/** Every rendering of `value` a log pipeline or an error reporter might produce. */
function renderings(value: unknown): Record<string, string> {
  const renderings: Record<string, string> = {
    inspect: inspect(value, { depth: 10, showHidden: true, maxStringLength: null, maxArrayLength: null }),
    ownPropertyJson: ownPropertyJson(value) ?? '',
    string: String(value),
  };
  if (value instanceof Error) {
    renderings['message'] = value.message;
    renderings['stack'] = value.stack ?? '';
  }
  return renderings;
}

/** Where `secret` shows in `value`: the renderings that contain it and the property paths that hold it. */
export function whereSecretShows(value: unknown, secret: string): string[] {
  const inRenderings = Object.entries(renderings(value))
    .filter(([, text]) => text.includes(secret))
    .map(([name]) => `rendering ${name}`);
  return [...inRenderings, ...secretPaths(value, secret)];
}

