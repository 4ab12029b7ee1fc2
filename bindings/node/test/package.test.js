'use strict';
// `npm pack` both packages (x0x and @x0x/core-<platform>), install the
// tarballs offline into an empty directory, load the package from there
// (through the per-platform package, not the development fallback) and
// run an example.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { platformKey, detectLibc } = require('../lib/loader');

const root = path.join(__dirname, '..');
const key = platformKey(process.platform, process.arch, process.platform === 'linux' ? detectLibc() : undefined);
const platformDir = path.join(root, 'npm', key);
const skip = fs.existsSync(path.join(platformDir, 'x0x.node')) ? false : `no build in npm/${key} (run scripts/build.sh)`;

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180000, ...opts });
  assert.equal(r.error, undefined, `${cmd} ${args.join(' ')}: ${r.error}`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('npm pack, offline install into an empty directory, run an example', { skip }, (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'x0x-node-pack-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const tgz = path.join(work, 'tgz');
  const app = path.join(work, 'app');
  fs.mkdirSync(tgz);
  fs.mkdirSync(app);
  // A private npm cache keeps the test independent of the user's.
  const env = { ...process.env, npm_config_cache: path.join(work, 'cache'), npm_config_update_notifier: 'false' };
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const pack = (dir) => JSON.parse(run(npm, ['pack', '--json', '--pack-destination', tgz], { cwd: dir, env }))[0];
  const main = pack(root);
  const native = pack(platformDir);

  // What the tarballs contain.
  const mainFiles = main.files.map((f) => f.path).sort();
  for (const f of ['package.json', 'index.d.ts', 'lib/index.js', 'lib/loader.js', 'lib/errors.js', 'README.md', 'examples/loopback.js']) {
    assert.ok(mainFiles.includes(f), `x0x tarball lacks ${f}`);
  }
  assert.ok(!mainFiles.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.node') || f.startsWith('tools/')),
    `x0x tarball has development files: ${mainFiles.join(', ')}`);
  const nativeFiles = native.files.map((f) => f.path);
  assert.ok(nativeFiles.includes('x0x.node'), 'the platform tarball carries x0x.node');
  assert.ok(nativeFiles.every((f) => ['README.md', 'package.json', 'x0x.node'].includes(f)), nativeFiles.join(', '));
  assert.equal(native.name, `@x0x/core-${key}`);

  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'x0x-pack-test', private: true }));
  run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts',
    path.join(tgz, main.filename), path.join(tgz, native.filename)], { cwd: app, env });

  // The installed package loads its addon from @x0x/core-<platform>.
  const probe = run(process.execPath, ['-e', `
    const x0x = require('x0x');
    const resolved = require.resolve('@x0x/core-${key}');
    console.log(JSON.stringify({ abi: x0x.abiVersion(), resolved, loaded: Object.keys(require.cache).filter((k) => k.endsWith('.node')) }));
  `], { cwd: app, env: { ...env, X0X_NODE_ADDON: '' } });
  const info = JSON.parse(probe);
  assert.equal(info.abi >>> 16, 0);
  assert.equal(info.loaded.length, 1);
  assert.ok(info.loaded[0].startsWith(path.join(app, 'node_modules', '@x0x', `core-${key}`)), info.loaded[0]);

  // Run the shipped example from the installed package.
  fs.copyFileSync(path.join(app, 'node_modules', 'x0x', 'examples', 'loopback.js'), path.join(app, 'loopback.js'));
  const out = run(process.execPath, ['loopback.js'], { cwd: app, env: { ...env, X0X_NODE_ADDON: '' } });
  assert.match(out, /bob heard on example\/chat: "hello bob"/);
  assert.match(out, /alice heard on example\/chat: "hello alice"/);
  assert.match(out, /bob got a direct message: "a direct hello"/);
  assert.match(out, /example finished/);
});
