// Checks README.md, docs/*.md and examples/deploy/README.md:
//
// - every TypeScript sample (```ts blocks) type-checks, each as a module of its own, with the
//   project's compiler options and `orca-reconcile` mapped to src/index.ts; errors are reported at
//   the sample's line in the Markdown file;
// - README.md links to files of this repository absolutely (the npm registry shows the README
//   without the repository around it, so a relative link would not resolve there), to files that
//   exist, and to headings that exist; relative links in the other files point at files and
//   headings that exist.
//
//   npm run check:docs
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Sample {
  markdown: string;
  /** 1-based line of the sample's first code line in the Markdown file. */
  line: number;
  code: string;
}

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);
  return ['README.md', ...docs.sort(), 'examples/deploy/README.md'];
}

function samplesOf(markdown: string, text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index += 1) {
    const fence = /^(\s*)(`{3,})(ts|typescript)\s*$/.exec(lines[index]!);
    if (!fence) continue;
    const [, indent = '', ticks = '```'] = fence;
    const start = index + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== ticks) end += 1;
    const code = lines
      .slice(start, end)
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join('\n');
    samples.push({ markdown, line: start + 1, code });
    index = end;
  }
  return samples;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

async function anchorsOf(file: string): Promise<Set<string>> {
  const text = (await readFile(file, 'utf8')).replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((match) => slug(match[1]!.replace(/`/g, ''))));
}

/** Problems with the links of one Markdown file. */
async function checkLinks(markdown: string, text: string, repositoryBlob: string): Promise<string[]> {
  const problems: string[] = [];
  const prose = text.replace(/^```[\s\S]*?^```/gm, (block) => block.replace(/[^\n]/g, ' '));
  for (const match of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = match[1]!;
    const line = prose.slice(0, match.index).split('\n').length;
    const where = `${markdown}:${line}`;
    let path: string;
    if (target.startsWith(repositoryBlob)) {
      path = target.slice(repositoryBlob.length);
    } else if (/^[a-z]+:/i.test(target) || target.startsWith('#')) {
      continue;
    } else if (markdown === 'README.md') {
      problems.push(`${where}: relative link ${target}: the npm registry page cannot resolve it; link ${repositoryBlob}${target}`);
      continue;
    } else {
      path = relative(ROOT, join(ROOT, dirname(markdown), target));
    }
    const [file = '', anchor] = path.split('#');
    if (!existsSync(join(ROOT, file))) {
      problems.push(`${where}: ${target}: ${file} does not exist`);
    } else if (anchor !== undefined && file.endsWith('.md') && !(await anchorsOf(join(ROOT, file))).has(anchor)) {
      problems.push(`${where}: ${target}: ${file} has no heading #${anchor}`);
    }
  }
  return problems;
}

async function main(): Promise<void> {
  const samples: Sample[] = [];
  const linkProblems: string[] = [];
  const { repository } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { repository: { url: string } };
  const repositoryBlob = `${repository.url.replace(/^git\+/, '').replace(/\.git$/, '')}/blob/main/`;
  for (const markdown of await markdownFiles()) {
    const text = await readFile(join(ROOT, markdown), 'utf8');
    samples.push(...samplesOf(markdown, text));
    linkProblems.push(...(await checkLinks(markdown, text, repositoryBlob)));
  }
  if (linkProblems.length > 0) {
    console.error(linkProblems.join('\n'));
    console.error(`check-docs: ${linkProblems.length} broken or relative link(s)`);
    process.exitCode = 1;
  }

  const configFile = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (path) => ts.sys.readFile(path));
  if (configFile.error) throw new Error(ts.flattenDiagnosticMessageText(configFile.error.messageText, '\n'));
  const { options } = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT);

  // Under node_modules/.cache: module resolution finds the project's packages from there, and the
  // project's package.json ("type": "module") makes each sample an ES module (top-level await).
  await mkdir(join(ROOT, 'node_modules/.cache'), { recursive: true });
  const work = await mkdtemp(join(ROOT, 'node_modules/.cache/orca-reconcile-samples-'));
  try {
    const files = new Map<string, Sample>();
    for (const [index, sample] of samples.entries()) {
      const file = join(work, `sample-${index}.ts`);
      // `export {}` keeps a sample without imports a module of its own.
      await writeFile(file, `${sample.code}\nexport {};\n`);
      files.set(file, sample);
    }
    const program = ts.createProgram([...files.keys()], {
      ...options,
      noEmit: true,
      rootDir: undefined,
      paths: { 'orca-reconcile': [join(ROOT, 'src/index.ts')] },
    });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .filter((diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error)
      .map((diagnostic) => {
        const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ');
        const sample = diagnostic.file && files.get(diagnostic.file.fileName);
        if (!diagnostic.file || !sample) {
          const where = diagnostic.file ? `${relative(ROOT, diagnostic.file.fileName)}: ` : '';
          return `${where}TS${diagnostic.code}: ${message}`;
        }
        const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        return `${sample.markdown}:${sample.line + line}:${character + 1}: TS${diagnostic.code}: ${message}`;
      });
    if (errors.length > 0) {
      console.error(errors.join('\n'));
      console.error(`check-docs: ${errors.length} error(s) in the TypeScript samples of README.md and docs/*.md`);
      process.exitCode = 1;
      return;
    }
    if (process.exitCode) return;
    const perFile = new Map<string, number>();
    for (const sample of samples) perFile.set(sample.markdown, (perFile.get(sample.markdown) ?? 0) + 1);
    console.log(
      `check-docs: ${samples.length} TypeScript samples compile (${[...perFile].map(([file, count]) => `${file} ${count}`).join(', ')}); links resolve`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
