// Turns benchmark samples into the printed table and the docs/performance.md section.
import { readFileSync, writeFileSync } from 'node:fs';

export interface BenchResults {
  files: number;
  runs: number;
  rate: number;
  seedMs: number | undefined;
  samples: Record<'baseline' | 'ours' | 'floor', number[]>;
  identical: boolean;
  seeded: boolean | undefined;
  counts: { phantoms: number; orphans: number; mismatches: number };
  peakRssBytes: number;
  libraryPeakRssBytes: number;
  settings: string[];
  machine: string;
  command: string;
  plans: Record<string, string>;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(2);

const DOC = new URL('../docs/performance.md', import.meta.url);

/** Renders the results as Markdown; with `write`, replaces this size's section of docs/performance.md. */
export function writeResults(results: BenchResults, write: boolean): string {
  const { samples } = results;
  const m = { baseline: median(samples.baseline), ours: median(samples.ours), floor: median(samples.floor) };
  const row = (name: string, key: keyof typeof samples) =>
    `| ${name} | ${seconds(m[key])} | ${seconds(Math.min(...samples[key]))} | ${seconds(Math.max(...samples[key]))} |`;
  const lines = [
    `### ${results.files.toLocaleString('en-US')} files per bucket`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${results.command}\` on ${results.machine}.`,
    `Two buckets of ${results.files.toLocaleString('en-US')} catalog files each (10 per granule); discrepancy rate ${results.rate * 100}% per kind;`,
    `${results.runs} rounds of baseline, ours, floor in turn.${results.seedMs ? ` Seeding took ${seconds(results.seedMs)} s.` : ''}`,
    '',
    '| variant | median (s) | min (s) | max (s) |',
    '| --- | ---: | ---: | ---: |',
    row('baseline: three INSERT ... SELECT statements', 'baseline'),
    row('ours: `generateReports`', 'ours'),
    row('floor: FULL JOIN of the keys, count only', 'floor'),
    '',
    `- baseline / ours: **${(m.baseline / m.ours).toFixed(2)}x**; ours / floor: **${(m.ours / m.floor).toFixed(2)}x**`,
    `- reports identical to the baseline's: ${results.identical ? 'yes' : '**NO**'}; counts ${JSON.stringify(results.counts)}${
      results.seeded === undefined ? '' : `, equal to the seeded discrepancies: ${results.seeded ? 'yes' : '**NO**'}`
    }`,
    `- Node peak RSS: ${(results.libraryPeakRssBytes / 2 ** 20).toFixed(0)} MiB for a process that imports the package and runs \`generateReports\` once; ${(results.peakRssBytes / 2 ** 20).toFixed(0)} MiB for the whole benchmark process`,
    `- PostgreSQL: ${results.settings.join(', ')}`,
  ];
  for (const [name, plan] of Object.entries(results.plans)) {
    lines.push('', `<details><summary>EXPLAIN (ANALYZE, BUFFERS): ${name}</summary>`, '', '```', plan, '```', '', '</details>');
  }
  const section = lines.join('\n');
  if (write) writeDocSection(`bench:${results.files}`, section, '<!-- bench:results -->');
  return section;
}

/**
 * Replaces the section between `<!-- key -->` and `<!-- /key -->` of docs/performance.md, or
 * adds it before `anchor` when the page has none yet.
 */
export function writeDocSection(key: string, section: string, anchor: string): void {
  const begin = `<!-- ${key} -->`;
  const end = `<!-- /${key} -->`;
  let doc = readFileSync(DOC, 'utf8');
  const block = `${begin}\n${section}\n${end}`;
  const start = doc.indexOf(begin);
  if (start >= 0) doc = doc.slice(0, start) + block + doc.slice(doc.indexOf(end) + end.length);
  else doc = doc.replace(anchor, `${block}\n\n${anchor}`);
  writeFileSync(DOC, doc);
}
