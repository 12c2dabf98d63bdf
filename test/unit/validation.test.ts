import { describe, expect, it } from 'vitest';
import { InvalidInputError, parseReconcileEvent } from '../../src/index.js';
import { quoteSchema } from '../../src/sql/schema.js';

const valid = { jobId: 7, orcaArchiveLocation: 'prefix-orca-primary', messageReceiptHandle: 'AQEB-handle' };

describe('parseReconcileEvent', () => {
  it('returns the fields of a valid event', () => {
    expect(parseReconcileEvent({ event: valid })).toEqual(valid);
  });

  it.each(['abc', 'my.bucket-1', '1.2.3', '192.168.10.1x', 'a'.repeat(63), 'Upper-Case', 'Legacy_Bucket', 'a..b', 'a'.repeat(255)])('accepts the bucket name %s', (name) => {
    expect(parseReconcileEvent({ event: { ...valid, orcaArchiveLocation: name } }).orcaArchiveLocation).toBe(name);
  });

  it('ignores extra fields but never reads inherited ones', () => {
    const inner = Object.create({ jobId: 7 }) as Record<string, unknown>;
    inner['orcaArchiveLocation'] = 'bucket-a';
    inner['messageReceiptHandle'] = 'h';
    expect(() => parseReconcileEvent({ event: inner })).toThrow(expect.objectContaining({ field: 'event.jobId' }));
    expect(parseReconcileEvent({ event: { ...valid, extra: true } })).toEqual(valid);
  });

  it.each([
    ['event', undefined],
    ['event', null],
    ['event', []],
    ['event', 'text'],
    ['event', {}],
    ['event', { event: null }],
    ['event', { event: [valid] }],
    ['event', { jobId: 7, orcaArchiveLocation: 'b', messageReceiptHandle: 'h' }],
    ['event.jobId', { event: { ...valid, jobId: undefined } }],
    ['event.jobId', { event: { ...valid, jobId: '7' } }],
    ['event.jobId', { event: { ...valid, jobId: 0 } }],
    ['event.jobId', { event: { ...valid, jobId: -3 } }],
    ['event.jobId', { event: { ...valid, jobId: 1.5 } }],
    ['event.jobId', { event: { ...valid, jobId: Number.NaN } }],
    ['event.jobId', { event: { ...valid, jobId: 2 ** 53 } }],
    ['event.jobId', { event: { ...valid, jobId: null } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: undefined } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: '' } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: '_leading-underscore' } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: 'trailing-dash-' } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: "'; DROP TABLE files; --" } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: 'ab' } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: 'a'.repeat(256) } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: 42 } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: 'has space' } }],
    ['event.orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: '192.168.10.1' } }],
    ['event.messageReceiptHandle', { event: { ...valid, messageReceiptHandle: undefined } }],
    ['event.messageReceiptHandle', { event: { ...valid, messageReceiptHandle: '' } }],
    ['event.messageReceiptHandle', { event: { ...valid, messageReceiptHandle: '   ' } }],
    ['event.messageReceiptHandle', { event: { ...valid, messageReceiptHandle: { h: 1 } } }],
    ['event.messageReceiptHandle', { event: { ...valid, messageReceiptHandle: 'x'.repeat(8193) } }],
  ])('rejects a bad %s: %j', (field, event) => {
    let thrown: unknown;
    try {
      parseReconcileEvent(event);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidInputError);
    expect(thrown).toMatchObject({ code: 'INVALID_INPUT', field });
    expect((thrown as Error).message).toContain(field);
  });
});

describe('quoteSchema', () => {
  it.each(['orca', 'Orca_2', '_x', 'a$b', 'x'.repeat(63)])('quotes the identifier %s', (name) => {
    expect(quoteSchema(name)).toBe(`"${name}"`);
  });

  it.each(['', '1orca', 'orca-x', 'or"ca', 'orca; DROP', 'x'.repeat(64), 'ünï'])('rejects %j', (name) => {
    expect(() => quoteSchema(name)).toThrow(expect.objectContaining({ name: 'InvalidInputError', field: 'schema' }));
  });
});
