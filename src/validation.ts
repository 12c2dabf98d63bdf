import { InvalidInputError } from './errors.js';

/** A PostgreSQL identifier that needs no quoting rules beyond double quotes. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
// S3 bucket names, with the legacy us-east-1 rules that ORCA accepts: 3 to 255 characters of
// letters (either case), digits, ".", "-" and "_", beginning and ending with a letter or digit,
// not an IPv4 address. Today's stricter rules (lower case, at most 63) are a subset.
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;
const IPV4_ADDRESS = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const MAX_RECEIPT_HANDLE_LENGTH = 8192;
const MAX_QUEUE_URL_LENGTH = 2048;

/** A short description of a bad value for an error message: never a long or secret string. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (!isInspectable(value)) return 'an unreadable object (a revoked proxy)';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Reads an own property only, so inherited or `__proto__` keys never count as fields. A getter or
 * proxy trap that throws makes the field invalid rather than escaping as an untyped error.
 */
function own(record: Record<string, unknown>, key: string, field: string): unknown {
  try {
    return Object.hasOwn(record, key) ? record[key] : undefined;
  } catch (error) {
    throw new InvalidInputError(field, `${field} could not be read`, { cause: error });
  }
}

/** False for a revoked proxy, which throws on every operation, `Array.isArray` included. */
function isInspectable(value: unknown): boolean {
  try {
    Array.isArray(value);
    return true;
  } catch {
    return false;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && isInspectable(value) && !Array.isArray(value);
}

/**
 * Reads `key` of an argument object, own or inherited (options objects may be class instances).
 * A getter or proxy trap that throws, or an argument that is not an object at all, is an
 * {@link InvalidInputError} naming `field`, never an untyped error.
 */
export function readArgument(record: unknown, key: string, field: string): unknown {
  if (record === undefined || record === null) return undefined;
  try {
    return (record as Record<string, unknown>)[key];
  } catch (error) {
    throw new InvalidInputError(field, `${field} could not be read`, { cause: error });
  }
}

/** An argument that must be an object: `undefined` and `null` are refused with `field` named. */
export function requireObject(value: unknown, field: string, what: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw new InvalidInputError(field, `${field} must be ${what}, got ${describe(value)}`);
  return value;
}

/** A reconcile_job id: a positive safe integer (bigserial values beyond 2^53 are not representable). */
export function validateJobId(value: unknown, field = 'jobId'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidInputError(
      field,
      `${field} must be a positive integer no greater than ${Number.MAX_SAFE_INTEGER}, got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * An ORCA archive bucket name, as S3 allows it, legacy names included: 3 to 255 characters of
 * letters, digits, `.`, `-` and `_`, starting and ending with a letter or digit, not an IP
 * address. It is only ever a bound value.
 */
export function validateArchiveLocation(value: unknown, field = 'orcaArchiveLocation'): string {
  if (typeof value !== 'string' || !BUCKET_NAME.test(value) || IPV4_ADDRESS.test(value)) {
    throw new InvalidInputError(
      field,
      `${field} must be an S3 bucket name (3 to 255 characters: letters, digits, ".", "-" and "_", starting and ending with a letter or digit, not an IP address), got ${describe(value)}`,
    );
  }
  return value;
}

export function validateReceiptHandle(value: unknown, field = 'messageReceiptHandle'): string {
  return validateText(value, field, MAX_RECEIPT_HANDLE_LENGTH);
}

// SQS hosts: regional (sqs.<region>.amazonaws.com, .amazonaws.com.cn in China), FIPS, dual-stack,
// the legacy queue.amazonaws.com and <region>.queue.amazonaws.com, interface VPC endpoints
// (vpce-<id>[-<az>].sqs.<region>.vpce.amazonaws.com) and the ISO partitions.
const REGION = '[a-z]{2,4}(?:-[a-z]+)+-\\d{1,2}';
const SQS_HOST = new RegExp(
  '^(?:' +
    [
      `sqs(?:-fips)?\\.${REGION}\\.amazonaws\\.com(?:\\.cn)?`,
      `sqs\\.${REGION}\\.api\\.aws`,
      `(?:${REGION}\\.)?queue\\.amazonaws\\.com`,
      `vpce-[a-z0-9]+(?:-[a-z0-9]+)*\\.sqs\\.${REGION}\\.vpce\\.amazonaws\\.com(?:\\.cn)?`,
      `sqs\\.${REGION}\\.(?:c2s\\.ic\\.gov|sc2s\\.sgov\\.gov)`,
    ].join('|') +
    ')$',
);
// /<12-digit account id>/<queue name>: 1 to 80 characters of letters, digits, "-" and "_", a FIFO
// queue's ".fifo" suffix included.
const QUEUE_PATH = /^\/(\d{12})\/([A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$/;
const QUEUE_URL_EXAMPLE = 'https://sqs.us-west-2.amazonaws.com/123456789012/queue-name';

/**
 * Where an SQS client sends its requests: to AWS, to an endpoint it is configured with (a local
 * emulator, say), or somewhere the library cannot tell (a sender that is not an `SQSClient`).
 */
export type SqsTarget = 'aws' | { endpoint: string } | 'unknown';

/**
 * An SQS queue URL: `http://` or `https://`, the path `/<12-digit account id>/<queue name>` (1 to
 * 80 letters, digits, `-` and `_`, a FIFO queue's `.fifo` included), and a host that fits the
 * client's `target`:
 *
 * - `'aws'` (the default): `https://` on an SQS host: `sqs.<region>.amazonaws.com`,
 *   `.amazonaws.com.cn`, `queue.amazonaws.com`, FIPS, dual-stack and VPC endpoint hosts.
 * - `{ endpoint }`: an SQS host as above, or the endpoint's scheme and host. The port is not
 *   compared (a client with its own endpoint sends every request there, whatever the URL's
 *   port), and every loopback name is one host: `127.0.0.1`, `[::1]`, `localhost` and
 *   `*.localhost` (fauxqs names its queues `http://sqs.<region>.localhost:<port>/...`).
 * - `'unknown'`: any host; the scheme and path are still checked.
 */
export function validateQueueUrl(value: unknown, field = 'queueUrl', target: SqsTarget = 'aws'): string {
  const text = validateText(value, field, MAX_QUEUE_URL_LENGTH);
  const configured = typeof target === 'object' ? endpointUrl(target.endpoint) : undefined;
  const refuse = (reason: string): never => {
    throw new InvalidInputError(
      field,
      `${field} must be an SQS queue URL such as ${QUEUE_URL_EXAMPLE}${configured ? ` or one on the SQS endpoint ${configured.origin}` : ''}: ${reason}; got ${describe(text)}`,
    );
  };
  if (text.trim() !== text) refuse('it must not have spaces around it');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return refuse('it is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') refuse('it must start with https://');
  if (url.username || url.password) refuse('it must not hold credentials');
  if (url.search || url.hash || text.includes('?') || text.includes('#')) refuse('it must have no query or fragment');
  if (!QUEUE_PATH.test(url.pathname)) {
    refuse('its path must be /<12-digit account id>/<queue name of 1 to 80 letters, digits, "-" or "_", with an optional ".fifo">');
  }
  if (target === 'unknown') return text;
  const onEndpoint =
    configured !== undefined &&
    url.protocol === configured.protocol &&
    (url.hostname === configured.hostname || (isLoopback(url.hostname) && isLoopback(configured.hostname)));
  if (onEndpoint) return text;
  if (!SQS_HOST.test(url.hostname)) {
    refuse(
      configured
        ? `its host "${url.hostname}" is neither an SQS host nor the SQS endpoint's host "${configured.hostname}"`
        : `its host "${url.hostname}" is not an SQS host (configure the SQS endpoint to use another one)`,
    );
  }
  if (url.protocol !== 'https:') refuse('an SQS host is reached over https://');
  return text;
}

/** Whether a URL's host name is the loopback interface (RFC 6761 reserves `localhost` names for it). */
function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    /^127(?:\.\d{1,3}){3}$/.test(hostname)
  );
}

/** The endpoint a client is configured with, as a URL; undefined when it has none. */
function endpointUrl(endpoint: string | undefined): URL | undefined {
  if (endpoint === undefined) return undefined;
  try {
    const url = new URL(endpoint);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function validateText(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > maxLength) {
    throw new InvalidInputError(
      field,
      `${field} must be a non-empty string of at most ${maxLength} characters, got ${describe(value)}`,
    );
  }
  return value;
}

/** Checks an optional callback option. */
export function validateCallback<T extends (...args: never[]) => unknown>(value: T | undefined, field: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new InvalidInputError(field, `${field} must be a function, got ${describe(value)}`);
  return value;
}

/** A deadline in epoch milliseconds. */
export function validateDeadline(value: unknown, field = 'deadline'): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidInputError(field, `${field} must be a finite number of epoch milliseconds, got ${describe(value)}`);
  }
  return value;
}

/**
 * Fields of the Step Functions event, after validation.
 *
 * @example
 * ```ts
 * import { parseReconcileEvent, type ReconcileEventInput } from 'orca-reconcile';
 *
 * const { jobId, orcaArchiveLocation, messageReceiptHandle }: ReconcileEventInput = parseReconcileEvent(event);
 * ```
 * @category Reconcile
 */
export interface ReconcileEventInput {
  jobId: number;
  orcaArchiveLocation: string;
  messageReceiptHandle: string;
}

/**
 * Validates the handler's event, `{ event: { jobId, orcaArchiveLocation, messageReceiptHandle } }`,
 * and returns its fields. Throws {@link InvalidInputError} naming the first bad field.
 *
 * @example
 * ```ts
 * import { InvalidInputError, parseReconcileEvent } from 'orca-reconcile';
 *
 * parseReconcileEvent({ event: { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', messageReceiptHandle: 'AQEB...' } });
 * // => { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', messageReceiptHandle: 'AQEB...' }
 *
 * try {
 *   parseReconcileEvent({ event: { jobId: '42' } });
 * } catch (error) {
 *   if (error instanceof InvalidInputError) console.error(error.field); // 'event.jobId'
 * }
 * ```
 * @category Reconcile
 */
export function parseReconcileEvent(value: unknown): ReconcileEventInput {
  if (!isPlainObject(value)) {
    throw new InvalidInputError('event', `the handler's input must be an object with an "event" property, got ${describe(value)}`);
  }
  const inner = own(value, 'event', 'event');
  if (!isPlainObject(inner)) {
    throw new InvalidInputError('event', `event must be an object holding jobId, orcaArchiveLocation and messageReceiptHandle, got ${describe(inner)}`);
  }
  return {
    jobId: validateJobId(own(inner, 'jobId', 'event.jobId'), 'event.jobId'),
    orcaArchiveLocation: validateArchiveLocation(
      own(inner, 'orcaArchiveLocation', 'event.orcaArchiveLocation'),
      'event.orcaArchiveLocation',
    ),
    messageReceiptHandle: validateReceiptHandle(
      own(inner, 'messageReceiptHandle', 'event.messageReceiptHandle'),
      'event.messageReceiptHandle',
    ),
  };
}
