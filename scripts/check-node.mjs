// Exits 1 with one line when this Node.js is outside "engines" in package.json, so that `npm test`
// on an old Node says so instead of failing inside the test runner. Understands the forms
// "engines" uses: alternatives joined by "||", each "^X.Y.Z" or ">=X[.Y[.Z]]".
import console from 'node:console';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const range = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node;
const version = process.versions.node.split('.').map(Number);

function compare(a, b) {
  for (let i = 0; i < 3; i += 1) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

function satisfies(part) {
  const match = /^(\^|>=)\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(part.trim());
  if (!match) throw new Error(`scripts/check-node.mjs does not understand "${part.trim()}" in engines.node`);
  const floor = [Number(match[2]), Number(match[3] ?? 0), Number(match[4] ?? 0)];
  return compare(version, floor) >= 0 && (match[1] === '>=' || version[0] === floor[0]);
}

if (!range.split('||').some(satisfies)) {
  console.error(`orca-reconcile: Node.js ${process.versions.node} is not supported (package.json engines: "${range}"); see .nvmrc and the README`);
  process.exit(1);
}
