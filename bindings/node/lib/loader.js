'use strict';
// Finds the native addon for this platform.
//
// Order: $X0X_NODE_ADDON (an explicit path, for development), the
// per-platform npm package @x0x/core-<platform> (an optionalDependency of
// `x0x`; npm installs only the one whose os/cpu/libc match), then a local
// development build in ../npm/<platform>/x0x.node (scripts/build.sh).
// Otherwise it throws an Error (code X0X_ERR_NO_ADDON) naming the platform
// and the package it looked for; on the platforms x0x cannot support (musl
// libc, WebAssembly) the error says why.

const fs = require('node:fs');
const path = require('node:path');

/** Platforms with a declared @x0x/core-* package (the optionalDependencies of the top-level package.json). */
const SUPPORTED = ['linux-x64-gnu', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64'];

/** Why x0x cannot run on a platform, by the `unsupported` value of the error. */
const UNSUPPORTED = {
  musl: 'musl libc (e.g. Alpine Linux) is not supported: the addon carries libx0x, a Go library built as a ' +
    'c-archive/c-shared object, and Go\'s c-shared and c-archive libraries cannot be loaded by musl\'s dlopen ' +
    '(the Go runtime uses initial-exec TLS and expects glibc\'s argc/argv in its initializers; ' +
    'golang/go#13492, golang/go#54805). Use a glibc-based system or image (e.g. node:20-bookworm-slim ' +
    'instead of node:20-alpine), or the Go library or the x0xd daemon directly',
  wasm: 'WebAssembly/WASI is not supported: x0x speaks QUIC over UDP, and wasip1 (WASI preview 1, the WASI ' +
    'target Go builds) has no UDP sockets, so there is no @x0x/core-wasm32-wasi package; native addons ' +
    'cannot load in a WebContainer either. Run Node.js natively on Linux (glibc), macOS or Windows',
};

/**
 * Detects the C library on Linux: 'gnu' (glibc) or 'musl'. Node's
 * diagnostic report names glibc's runtime version on glibc and nothing on
 * musl; without a report, a musl dynamic loader /lib/ld-musl-<arch>.so.1
 * means musl.
 * @param {object} [proc] process-like object (for tests)
 * @param {(p: string) => boolean} [exists] file test (for tests)
 * @param {() => string[]} [listLib] lists /lib (for tests)
 */
function detectLibc(proc = process, exists = fs.existsSync, listLib = () => fs.readdirSync('/lib')) {
  try {
    const report = proc.report && typeof proc.report.getReport === 'function' ? proc.report.getReport() : null;
    const r = typeof report === 'string' ? JSON.parse(report) : report;
    // A report without glibcVersionRuntime comes from a Node linked
    // against another libc: on Linux, musl.
    if (r && r.header) return r.header.glibcVersionRuntime ? 'gnu' : 'musl';
  } catch {
    // fall through to the file test
  }
  try {
    if (listLib().some((f) => /^ld-musl-.*\.so\.1$/.test(f))) return 'musl';
  } catch {
    // no /lib: fall through
  }
  for (const p of ['/lib/ld-musl-x86_64.so.1', '/lib/ld-musl-aarch64.so.1']) {
    if (exists(p)) return 'musl';
  }
  return 'gnu';
}

/**
 * Returns the platform key (e.g. 'linux-x64-gnu') for a platform/arch/libc.
 * @param {string} platform process.platform
 * @param {string} arch process.arch
 * @param {string} [libc] 'gnu' | 'musl' (Linux only)
 */
function platformKey(platform, arch, libc) {
  if (platform === 'linux') return `linux-${arch}-${libc || 'gnu'}`;
  return `${platform}-${arch}`;
}

/**
 * Why this platform cannot be supported ('musl' or 'wasm'; see
 * UNSUPPORTED), or null.
 * @param {{platform: string, arch: string, libc?: string, versions?: object}} f
 */
function unsupportedReason(f) {
  if (f.platform === 'wasi' || /^wasm/.test(f.arch) || (f.versions && f.versions.webcontainer)) return 'wasm';
  if (f.platform === 'linux' && f.libc === 'musl') return 'musl';
  return null;
}

/**
 * Loads the addon. All parameters exist for tests; callers pass none.
 * @param {{platform?: string, arch?: string, libc?: string, versions?: object, env?: object,
 *          requireFn?: (id: string) => any, localDir?: string,
 *          exists?: (p: string) => boolean}} [o]
 */
function loadAddon(o = {}) {
  const platform = o.platform || process.platform;
  const arch = o.arch || process.arch;
  const libc = platform === 'linux' ? (o.libc || detectLibc()) : undefined;
  const versions = o.versions || process.versions;
  const env = o.env || process.env;
  const req = o.requireFn || require;
  const exists = o.exists || fs.existsSync;
  const key = platformKey(platform, arch, libc);
  const pkg = `@x0x/core-${key}`;

  if (env.X0X_NODE_ADDON) {
    return req(path.resolve(env.X0X_NODE_ADDON));
  }
  const unsupported = unsupportedReason({ platform, arch, libc, versions });
  try {
    return req(pkg);
  } catch (err) {
    // A package that is there but fails to load is a real error: say so.
    if (!err || err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(pkg)) {
      const why = unsupported ? ` (${UNSUPPORTED[unsupported]})` : '';
      throw new Error(`x0x: the native package ${pkg} was found but failed to load: ${err && err.message}${why}`,
        { cause: err });
    }
  }
  const local = path.join(o.localDir || path.join(__dirname, '..', 'npm'), key, 'x0x.node');
  if (exists(local)) {
    return req(local);
  }
  let e;
  if (unsupported) {
    e = new Error(`x0x: no native addon for platform ${key}: ${UNSUPPORTED[unsupported]}. ` +
      `Supported: ${SUPPORTED.join(', ')}`);
    e.unsupported = unsupported;
  } else {
    const hint = SUPPORTED.includes(key)
      ? `install it (npm installs it automatically as an optional dependency of x0x unless optional dependencies were omitted)`
      : `no prebuilt package exists for this platform; supported: ${SUPPORTED.join(', ')}`;
    e = new Error(`x0x: no native addon for platform ${key}: could not load ${pkg} (${hint}), ` +
      `and there is no local build at ${local} (bindings/node/scripts/build.sh)`);
  }
  e.code = 'X0X_ERR_NO_ADDON';
  e.platform = key;
  throw e;
}

module.exports = { loadAddon, platformKey, detectLibc, unsupportedReason, SUPPORTED, UNSUPPORTED };
