'use strict';
// index.d.ts compiles under `tsc --strict` when used as an application
// would (test/types/check.ts), and rejects misuse (@ts-expect-error lines).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const tsc = path.join(__dirname, '..', 'tools', 'node_modules', 'typescript', 'bin', 'tsc');
const missing = !fs.existsSync(tsc) && !process.env.X0X_REQUIRE_TOOLS
  ? 'typescript is not installed in bindings/node/tools (scripts/test-node.sh installs it)' : false;

test('tsc --noEmit accepts the typed usage and rejects the misuse', { skip: missing }, () => {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
