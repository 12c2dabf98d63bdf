import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One build, in ES modules. `import` loads it directly; `require` loads the same files through
// Node's require(esm) (Node 22.12 and later, below "engines"), so there is one copy of every
// class whichever way a host loads the package, and bundlers (esbuild, the CDK NodejsFunction)
// get ES modules in both of their output formats. Whitespace is minified (names are kept) to keep
// the package small.
export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/bin.ts' },
  format: ['esm'],
  target: 'node22',
  platform: 'node',
  dts: { entry: { index: 'src/index.ts' } },
  tsconfig: 'tsconfig.build.json',
  sourcemap: false,
  minifyWhitespace: true,
  keepNames: true,
  clean: true,
  // The CLI and the library share one chunk: one copy of every class, whichever entry loads it.
  splitting: true,
  treeshake: true,
  define: { __PACKAGE_VERSION__: JSON.stringify(version) },
});
