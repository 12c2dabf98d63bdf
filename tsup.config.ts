import { defineConfig } from 'tsup';

// One implementation, in CommonJS; scripts/esm-entry.ts then writes the ES module entry that
// re-exports it. Whitespace is minified (names are kept) to keep the package small.
export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['cjs'],
  target: 'node22',
  platform: 'node',
  dts: true,
  tsconfig: 'tsconfig.build.json',
  sourcemap: false,
  minifyWhitespace: true,
  keepNames: true,
  clean: true,
  splitting: false,
  treeshake: true,
});
