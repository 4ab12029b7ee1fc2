'use strict';
// The loader picks @x0x/core-<platform> for the platform, arch and libc,
// falls back to a local build, and otherwise names the platform and the
// package it looked for.
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadAddon, platformKey, detectLibc, SUPPORTED } = require('../lib/loader');

function fakeRequire(available) {
  const calls = [];
  const fn = (id) => {
    calls.push(id);
    if (id in available) {
      if (available[id] instanceof Error) throw available[id];
      return available[id];
    }
    const e = new Error(`Cannot find module '${id}'`);
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  };
  fn.calls = calls;
  return fn;
}

test('platform keys', () => {
  assert.equal(platformKey('linux', 'x64', 'gnu'), 'linux-x64-gnu');
  assert.equal(platformKey('linux', 'arm64', 'musl'), 'linux-arm64-musl');
  assert.equal(platformKey('darwin', 'arm64'), 'darwin-arm64');
  assert.equal(platformKey('win32', 'x64'), 'win32-x64-msvc');
  for (const k of SUPPORTED) assert.ok(require('../package.json').optionalDependencies[`@x0x/core-${k}`], k);
});

test('libc detection: glibc from the process report, musl otherwise', () => {
  const report = (header, sharedObjects = []) => ({ report: { getReport: () => ({ header, sharedObjects }) } });
  assert.equal(detectLibc(report({ glibcVersionRuntime: '2.36' }), () => false), 'gnu');
  assert.equal(detectLibc(report({}, ['/lib/ld-musl-x86_64.so.1']), () => false), 'musl');
  assert.equal(detectLibc(report({}), (p) => p.includes('ld-musl')), 'musl');
  assert.equal(detectLibc({}, () => false), 'gnu');
  if (process.platform === 'linux') assert.equal(detectLibc(), 'gnu', 'this test machine runs glibc');
});

test('picks the per-platform package first', () => {
  const addon = { name: 'pkg' };
  const req = fakeRequire({ '@x0x/core-darwin-arm64': addon });
  assert.equal(loadAddon({ platform: 'darwin', arch: 'arm64', env: {}, requireFn: req, exists: () => true }), addon);
  assert.deepEqual(req.calls, ['@x0x/core-darwin-arm64']);
  const req2 = fakeRequire({ '@x0x/core-linux-arm64-musl': addon });
  assert.equal(loadAddon({ platform: 'linux', arch: 'arm64', libc: 'musl', env: {}, requireFn: req2 }), addon);
});

test('falls back to the local development build', () => {
  const local = { name: 'local' };
  const req = fakeRequire({ '/dev/npm/linux-x64-gnu/x0x.node': local });
  const got = loadAddon({ platform: 'linux', arch: 'x64', libc: 'gnu', env: {}, requireFn: req, localDir: '/dev/npm', exists: (p) => p === '/dev/npm/linux-x64-gnu/x0x.node' });
  assert.equal(got, local);
  assert.deepEqual(req.calls, ['@x0x/core-linux-x64-gnu', '/dev/npm/linux-x64-gnu/x0x.node']);
});

test('X0X_NODE_ADDON overrides the search', () => {
  const addon = {};
  const req = fakeRequire({ '/opt/x.node': addon });
  assert.equal(loadAddon({ platform: 'linux', arch: 'x64', libc: 'gnu', env: { X0X_NODE_ADDON: '/opt/x.node' }, requireFn: req }), addon);
});

test('no addon: a clear error naming the platform and the package', () => {
  const req = fakeRequire({});
  assert.throws(() => loadAddon({ platform: 'linux', arch: 'x64', libc: 'musl', env: {}, requireFn: req, localDir: '/none', exists: () => false }),
    (e) => e.code === 'X0X_ERR_NO_ADDON' && /platform linux-x64-musl/.test(e.message) &&
      /@x0x\/core-linux-x64-musl/.test(e.message) && /no prebuilt package exists/.test(e.message));
  assert.throws(() => loadAddon({ platform: 'darwin', arch: 'x64', env: {}, requireFn: req, localDir: '/none', exists: () => false }),
    (e) => /platform darwin-x64/.test(e.message) && /@x0x\/core-darwin-x64 \(install it/.test(e.message));
});

test('a package that exists but fails to load is reported as such', () => {
  const broken = new Error('invalid ELF header');
  broken.code = 'ERR_DLOPEN_FAILED';
  const req = fakeRequire({ '@x0x/core-linux-x64-gnu': broken });
  assert.throws(() => loadAddon({ platform: 'linux', arch: 'x64', libc: 'gnu', env: {}, requireFn: req }),
    (e) => /@x0x\/core-linux-x64-gnu was found but failed to load: invalid ELF header/.test(e.message) && e.cause === broken);
});
