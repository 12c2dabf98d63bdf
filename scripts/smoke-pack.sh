#!/usr/bin/env bash
# Packs the package as npm would publish it, checks what the tarball holds, installs it into a
# fresh project and uses it there the ways a consumer would: `import`, `require` (Node's
# require(esm) of the one ES module build), both at once, TypeScript from an ES module and from a
# CommonJS file, and the `orca-reconcile` command. Run `npm run build` first; this script builds
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
started=$SECONDS

fail() {
  echo "smoke-pack: $*" >&2
  exit 1
}

[ -f dist/index.js ] && [ -f dist/cli.js ] || fail "dist/ is missing or incomplete: run npm run build first"

work="$(mktemp -d "${TMPDIR:-/tmp}/orca-reconcile-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- the tarball ---------------------------------------------------------------------------------
tarball_name="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
tarball="$work/$tarball_name"
[ -f "$tarball" ] || fail "npm pack did not write $tarball"
echo "packed $tarball_name ($(du -k "$tarball" | cut -f1) KiB)"

contents="$(tar -tzf "$tarball" | sort)"
unexpected="$(grep -Ev '^package/(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist/.+)$' <<<"$contents" || true)"
if [ -n "$unexpected" ]; then
  fail "the tarball holds files it should not (only package.json, README.md, LICENSE, CHANGELOG.md and dist/ belong):
$unexpected"
fi
missing=""
for required in package.json README.md LICENSE CHANGELOG.md dist/index.js dist/index.d.ts dist/cli.js; do
  grep -qx "package/$required" <<<"$contents" || missing+="  package/$required"$'\n'
done
[ -z "$missing" ] || fail "the tarball lacks:
$missing"
echo "tarball contents: $(wc -l <<<"$contents") files, all expected"

# --- a consumer project ------------------------------------------------------------------------
project="$work/project"
mkdir "$project"
cd "$project"
npm init -y >/dev/null
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tarball" >/dev/null
echo "installed into a new project"

cat >esm.mjs <<'EOF'
import { createHandler, generateReports, OrcaStatus } from 'orca-reconcile';

if (typeof createHandler !== 'function') throw new Error('createHandler is not a function');
if (typeof generateReports !== 'function') throw new Error('generateReports is not a function');
if (OrcaStatus.Success !== 5) throw new Error(`OrcaStatus.Success is ${OrcaStatus.Success}, not 5`);
const handler = createHandler({ env: {} });
if (typeof handler.close !== 'function') throw new Error('the handler has no close()');
await handler.close();
console.log('ESM import: ok');
EOF
node esm.mjs

cat >cjs.cjs <<'EOF'
const library = require('orca-reconcile');

for (const name of ['createHandler', 'generateReports', 'task', 'InvalidInputError']) {
  if (typeof library[name] !== 'function') throw new Error(`require('orca-reconcile').${name} is not a function`);
}
const error = new library.InvalidInputError('jobId', 'jobId must be a positive integer');
if (!(error instanceof library.OrcaReconcileError) || error.code !== 'INVALID_INPUT') {
  throw new Error('InvalidInputError from require() is not an OrcaReconcileError with code INVALID_INPUT');
}
console.log('CJS require: ok');
EOF
node cjs.cjs

cat >dual.mjs <<'EOF'
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const esm = await import('orca-reconcile');
const cjs = require('orca-reconcile');
if (esm.InvalidInputError !== cjs.InvalidInputError) {
  throw new Error('import and require load two different InvalidInputError classes');
}
const fromEsm = new esm.InvalidInputError('jobId', 'bad');
if (!(fromEsm instanceof cjs.OrcaReconcileError)) throw new Error('instanceof fails across import and require');
const missing = Object.keys(cjs).filter((name) => !(name in esm));
if (missing.length > 0) throw new Error(`the ES module entry lacks ${missing.join(', ')}`);
console.log('import and require share one set of classes: ok');
EOF
node dual.mjs

# TypeScript consumers: an ES module, and a CommonJS file that requires the package (TypeScript
# allows require of an ES module under "module": "nodenext" from TypeScript 5.8 on).
cat >esm.mts <<'EOF'
import { createHandler, InvalidInputError, OrcaReconcileError, type ReconcileOutput } from 'orca-reconcile';

const handler = createHandler({ env: {} });
const error: OrcaReconcileError = new InvalidInputError('jobId', 'bad');
export const output: () => Promise<ReconcileOutput> = () => handler({ event: {} });
export const code: string = error.code;
EOF
cat >cjs.cts <<'EOF'
import orca = require('orca-reconcile');

const error: orca.OrcaReconcileError = new orca.InvalidInputError('jobId', 'bad');
export const code: string = error.code;
export const output: () => Promise<orca.ReconcileOutput> = () => orca.createHandler({ env: {} })({ event: {} });
EOF
cat >tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": true,
    "types": []
  },
  "files": ["esm.mts", "cjs.cts"]
}
EOF
"$repo/node_modules/.bin/tsc" -p . || fail "TypeScript could not use the package from esm.mts or cjs.cts"
echo "TypeScript (nodenext) from an ES module and from CommonJS: ok"

help="$(npx --no -- orca-reconcile --help)" || fail "npx orca-reconcile --help exited with $?"
grep -q '^Usage: orca-reconcile' <<<"$help" || fail "npx orca-reconcile --help printed no usage line:
$help"
expected_version="$(node -p "require('orca-reconcile/package.json').version")"
version="$(npx --no -- orca-reconcile --version)"
[ "$version" = "$expected_version" ] || fail "orca-reconcile --version printed '$version', expected '$expected_version'"
echo "npx orca-reconcile --help and --version: ok"

echo "smoke-pack: passed in $((SECONDS - started)) s"
