import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file, type-only ones included: a cycle of types is a cycle all the same. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const imports = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)];
  return imports.map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
}

/** Every cycle of imports, each as the list of files around it. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

describe('the shape of src/', () => {
  const files = sourceFiles(SRC);

  it('finds a cycle when there is one (the check itself)', () => {
    // Prepare
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    // Act / Assess
    expect(findCycles(graph)).toEqual([['a', 'b', 'c', 'a']]);
    expect(findCycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('has no import cycles', () => {
    // Prepare
    const graph = new Map(files.map((file) => [file, localImports(file)]));
    // Act
    const cycles = findCycles(graph).map((cycle) => cycle.map((file) => relative(SRC, file)).join(' -> '));
    // Assess
    expect(cycles).toEqual([]);
  });

  it('names the report tables in code only in src/sql/', () => {
    // Prepare: a table name in SQL (after FROM, INTO, JOIN, UPDATE, TABLE or a schema) or as a
    // string of its own; prose in comments and descriptions does not count.
    const table = /(?:\}\.|\b(?:FROM|INTO|JOIN|UPDATE|TABLE)\s+\S*|['"`])reconcile_(?:phantom|orphan|catalog_mismatch)_report\b(?!\.)/i;
    const code = (file: string) => readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    expect(table.test("DELETE FROM ${s}.reconcile_orphan_report WHERE")).toBe(true);
    expect(table.test("for (const t of ['reconcile_phantom_report'])")).toBe(true);
    expect(table.test("description: 'Rows written to reconcile_phantom_report.'")).toBe(false);
    // Act
    const outside = files.filter((file) => !relative(SRC, file).startsWith('sql/') && table.test(code(file)));
    // Assess
    expect(outside.map((file) => relative(SRC, file))).toEqual([]);
  });
});
