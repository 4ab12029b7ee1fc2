'use strict';
// `npm pack` both packages (x0x, whose package.json is the repository's
// top-level one, and @x0x/core-<platform>), install the tarballs offline
// into an empty directory outside the repository, load the package from
// there (through the per-platform package, not the development fallback),
// run an example, and `npx x0x skill install` from the installed package.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { platformKey, detectLibc } = require('../lib/loader');

const root = path.join(__dirname, '..');
const repo = path.join(root, '..', '..');
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
  const main = pack(repo);
  const native = pack(platformDir);

  // What the tarballs contain.
  assert.equal(main.name, 'x0x');
  assert.equal(main.filename, `x0x-${main.version}.tgz`);
  const mainFiles = main.files.map((f) => f.path).sort();
  for (const f of ['package.json', 'README.md', 'bindings/node/index.d.ts', 'bindings/node/lib/index.js',
    'bindings/node/lib/loader.js', 'bindings/node/lib/errors.js', 'bindings/node/README.md',
    'bindings/node/examples/loopback.js', 'bindings/node/bin/x0x.js',
    'SKILL.md', 'SKILL.md.asc', 'skill/install.md', 'keys/x0x-release.asc']) {
    assert.ok(mainFiles.includes(f), `x0x tarball lacks ${f}`);
  }
  const allowed = /^(package\.json|README\.md|LICEN[CS]E[-.\w]*|SKILL\.md|SKILL\.md\.asc|keys\/x0x-release\.asc|skill\/[^/]+\.md|bindings\/node\/(README\.md|index\.d\.ts|(lib|bin|examples)\/.+\.js))$/;
  const extra = mainFiles.filter((f) => !allowed.test(f));
  assert.deepEqual(extra, [], `x0x tarball has other files than the package's: ${extra.join(', ')}`);
  assert.ok(main.size < 512 * 1024, `x0x tarball is ${main.size} bytes`);
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
  fs.copyFileSync(path.join(app, 'node_modules', 'x0x', 'bindings', 'node', 'examples', 'loopback.js'), path.join(app, 'loopback.js'));
  const out = run(process.execPath, ['loopback.js'], { cwd: app, env: { ...env, X0X_NODE_ADDON: '' } });
  assert.match(out, /bob heard on example\/chat: "hello bob"/);
  assert.match(out, /alice heard on example\/chat: "hello alice"/);
  assert.match(out, /bob got a direct message: "a direct hello"/);
  assert.match(out, /example finished/);

  // The package's command: npx x0x skill install (verified when gpg is there).
  const hasGpg = !spawnSync('gpg', ['--version']).error;
  const verified = hasGpg && spawnSync(process.execPath, [path.join(repo, 'bindings', 'node', 'bin', 'x0x.js'), 'skill', 'verify']).status === 0;
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
  const skillArgs = ['--offline', '--no', 'x0x', 'skill', 'install', ...(verified ? [] : ['--no-verify'])];
  const inst = run(npx, skillArgs, { cwd: app, env });
  const dest = path.join(app, '.claude', 'skills', 'x0x');
  assert.match(inst, verified ? /SKILL\.md verified: signed by/ : /not verified/);
  assert.deepEqual(fs.readFileSync(path.join(dest, 'SKILL.md')), fs.readFileSync(path.join(repo, 'SKILL.md')));
  assert.ok(fs.existsSync(path.join(dest, 'skill', 'install.md')));
  if (verified) {
    // The installed package refuses a tampered copy of its SKILL.md.
    fs.appendFileSync(path.join(app, 'node_modules', 'x0x', 'SKILL.md'), '\n');
    const r = spawnSync(npx, ['--offline', '--no', 'x0x', 'skill', 'install', 'tampered'], { cwd: app, env, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /REFUSED: .*does not match/);
    assert.ok(!fs.existsSync(path.join(app, 'tampered')));
  }
});
