'use strict';
// The loader picks @x0x/core-<platform> for the platform, arch and libc,
// falls back to a local build, and otherwise names the platform and the
// package it looked for.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { loadAddon, platformKey, detectLibc, unsupportedReason, SUPPORTED } = require('../lib/loader');

// The published package is the repository's top-level package.json.
const published = require(path.join(__dirname, '..', '..', '..', 'package.json'));

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
  assert.equal(platformKey('win32', 'x64'), 'win32-x64');
  // Every supported platform is an exact-version optional dependency of x0x
  // and has its package folder, and nothing else is declared.
  const deps = published.optionalDependencies;
  assert.deepEqual(Object.keys(deps).sort(), SUPPORTED.map((k) => `@x0x/core-${k}`).sort());
  for (const k of SUPPORTED) {
    assert.equal(deps[`@x0x/core-${k}`], published.version, k);
    const meta = require(`../npm/${k}/package.json`);
    assert.equal(meta.name, `@x0x/core-${k}`);
    assert.equal(meta.version, published.version);
    const [os, cpu] = k.split('-');
    assert.deepEqual([meta.os, meta.cpu], [[os], [cpu]], k);
    if (os === 'linux') assert.deepEqual(meta.libc, ['glibc'], k);
  }
});

test('libc detection: glibc from the process report, musl otherwise', () => {
  const report = (header, sharedObjects = []) => ({ report: { getReport: () => ({ header, sharedObjects }) } });
  const noLib = () => [];
  assert.equal(detectLibc(report({ glibcVersionRuntime: '2.36' }), () => true, () => ['ld-musl-x86_64.so.1']), 'gnu',
    'a glibc Node on a system that also has musl installed');
  assert.equal(detectLibc(report({}, ['/lib/ld-musl-x86_64.so.1']), () => false, noLib), 'musl');
  assert.equal(detectLibc(report({}), () => false, noLib), 'musl', 'a report without glibcVersionRuntime');
  // No report: the musl loader in /lib decides.
  assert.equal(detectLibc({}, () => false, () => ['ld-musl-riscv64.so.1', 'libc.musl-riscv64.so.1']), 'musl');
  assert.equal(detectLibc({}, (p) => p === '/lib/ld-musl-aarch64.so.1', () => { throw new Error('EACCES'); }), 'musl');
  assert.equal(detectLibc({ report: { getReport: () => { throw new Error('no report'); } } }, () => false, noLib), 'gnu');
  assert.equal(detectLibc({}, () => false, () => ['ld-linux-x86-64.so.2']), 'gnu');
  if (process.platform === 'linux') assert.equal(detectLibc(), 'gnu', 'this test machine runs glibc');
});

test('unsupported platforms: musl and WebAssembly', () => {
  assert.equal(unsupportedReason({ platform: 'linux', arch: 'x64', libc: 'musl' }), 'musl');
  assert.equal(unsupportedReason({ platform: 'linux', arch: 'arm64', libc: 'gnu' }), null);
  assert.equal(unsupportedReason({ platform: 'wasi', arch: 'wasm32' }), 'wasm');
  assert.equal(unsupportedReason({ platform: 'linux', arch: 'wasm32', libc: 'gnu' }), 'wasm');
  assert.equal(unsupportedReason({ platform: 'linux', arch: 'x64', libc: 'gnu', versions: { webcontainer: '1.0' } }), 'wasm');
  assert.equal(unsupportedReason({ platform: 'darwin', arch: 'arm64', versions: process.versions }), null);
});

test('musl: the error says that musl cannot dlopen a Go library', () => {
  const req = fakeRequire({});
  // Detected, not given: the report of a musl Node has no glibcVersionRuntime.
  const facts = { platform: 'linux', arch: 'x64', env: {}, requireFn: req, localDir: '/none', exists: () => false };
  for (const libc of ['musl', undefined]) {
    const o = libc ? { ...facts, libc } : { ...facts, libc: detectLibc({ report: { getReport: () => ({ header: {} }) } }, () => false, () => []) };
    assert.throws(() => loadAddon(o), (e) => {
      assert.equal(e.code, 'X0X_ERR_NO_ADDON');
      assert.equal(e.unsupported, 'musl');
      assert.equal(e.platform, 'linux-x64-musl');
      assert.match(e.message, /platform linux-x64-musl/);
      assert.match(e.message, /musl libc \(e\.g\. Alpine Linux\) is not supported/);
      assert.match(e.message, /Go's c-shared and c-archive libraries cannot be loaded by musl's dlopen/);
      assert.match(e.message, /golang\/go#13492/);
      assert.match(e.message, /glibc/);
      return true;
    });
  }
  // A gnu package forced onto a musl system fails to load: the error says why.
  const broken = new Error('Error relocating x0x.node: __vfprintf_chk: symbol not found');
  broken.code = 'ERR_DLOPEN_FAILED';
  assert.throws(() => loadAddon({ ...facts, libc: 'musl', requireFn: fakeRequire({ '@x0x/core-linux-x64-musl': broken }) }),
    (e) => /failed to load: Error relocating/.test(e.message) && /musl's dlopen/.test(e.message));
});

test('WebAssembly/WASI: the error says that wasip1 has no UDP sockets', () => {
  const req = fakeRequire({});
  for (const facts of [{ platform: 'wasi', arch: 'wasm32' }, { platform: 'linux', arch: 'x64', libc: 'gnu', versions: { webcontainer: '1' } }]) {
    assert.throws(() => loadAddon({ ...facts, env: {}, requireFn: req, localDir: '/none', exists: () => false }), (e) => {
      assert.equal(e.code, 'X0X_ERR_NO_ADDON');
      assert.equal(e.unsupported, 'wasm');
      assert.match(e.message, /WebAssembly\/WASI is not supported/);
      assert.match(e.message, /wasip1 \(WASI preview 1, the WASI target Go builds\) has no UDP sockets/);
      assert.match(e.message, /linux-x64-gnu, linux-arm64-gnu, darwin-x64, darwin-arm64, win32-x64/);
      return true;
    });
  }
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
  assert.throws(() => loadAddon({ platform: 'freebsd', arch: 'x64', env: {}, requireFn: req, localDir: '/none', exists: () => false }),
    (e) => e.code === 'X0X_ERR_NO_ADDON' && /platform freebsd-x64/.test(e.message) && e.unsupported === undefined &&
      /@x0x\/core-freebsd-x64/.test(e.message) && /no prebuilt package exists/.test(e.message));
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
