// Writes dist/index.js and dist/index.d.ts: the ES module entry re-exports the CommonJS build,
// so `import` and `require` share one copy of the code (and of each error class, so that
// `instanceof` holds whichever way a host loaded the package) and one copy of the types.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const names = Object.keys(require('../dist/index.cjs') as object).sort();
writeFileSync(
  new URL('../dist/index.js', import.meta.url),
  `import entry from './index.cjs';\n\nexport const {\n${names.map((name) => `  ${name},`).join('\n')}\n} = entry;\n`,
);
writeFileSync(new URL('../dist/index.d.ts', import.meta.url), `export * from './index.cjs';\n`);
