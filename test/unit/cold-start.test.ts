import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');

// Packages that cost tens of milliseconds to load, which a caller of generateReports or
// readReport on its own pool never needs: they are loaded where they are first used.
const LAZY_PACKAGES = ['@aws-sdk/client-sqs', '@aws-sdk/client-secrets-manager', 'pg'];

function libraryFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    // The command line is an entry of its own, which the library never loads.
    if (entry.isDirectory()) return entry.name === 'cli' ? [] : libraryFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('loading the library', () => {
  it('has no top-level value import of the AWS SDK or pg in src/ (type imports are erased)', () => {
    // Prepare
    const valueImport = new RegExp(`^(?:import|export)\\s+(?!type\\b)[^;]*?from\\s+'(${LAZY_PACKAGES.join('|')})'`, 'gms');
    expect("import { SQSClient } from '@aws-sdk/client-sqs';".match(valueImport)).not.toBeNull();
    expect("import type { SQSClient } from '@aws-sdk/client-sqs';".match(valueImport)).toBeNull();

    // Act
    const found = libraryFiles(SRC).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(valueImport)].map((match) => `${relative(SRC, file)}: ${match[1]}`),
    );

    // Assess
    expect(found).toEqual([]);
  });

  it('importing the entry in a fresh process loads neither the AWS SDK nor pg', () => {
    // Prepare: what Node's CommonJS loader holds after the import (the SDK and pg are CommonJS).
    const probe = `
      import { createRequire } from 'node:module';
      const api = await import(${JSON.stringify(join(SRC, 'index.ts'))});
      if (typeof api.createHandler !== 'function') throw new Error('no createHandler');
      api.createHandler({ env: { AWS_REGION: 'us-east-1' } });
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      process.stdout.write(JSON.stringify(loaded.filter((path) => /node_modules[\\\\/](?:@aws-sdk|@smithy|pg)[\\\\/]/.test(path))));
    `;

    // Act
    const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });

    // Assess
    expect(JSON.parse(output)).toEqual([]);
  });
});
