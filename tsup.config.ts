import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One implementation, in CommonJS; scripts/esm-entry.ts then writes the ES module entry that
// re-exports it. Whitespace is minified (names are kept) to keep the package small.
export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/bin.ts' },
  format: ['cjs'],
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
