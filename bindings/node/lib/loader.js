'use strict';
// Finds the native addon for this platform.
//
// Order: $X0X_NODE_ADDON (an explicit path, for development), the
// per-platform npm package @x0x/core-<platform> (an optionalDependency of
// `x0x`; npm installs only the one whose os/cpu/libc match), then a local
// development build in ../npm/<platform>/x0x.node (scripts/build.sh).
// Otherwise it throws an Error naming the platform and the package it
// looked for.

const fs = require('node:fs');
const path = require('node:path');

/** Platforms with a declared @x0x/core-* package (see package.json). */
const SUPPORTED = ['linux-x64-gnu', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc'];

/**
 * Detects the C library on Linux: 'gnu' (glibc) or 'musl'.
 * @param {object} [proc] process-like object (for tests)
 * @param {(p: string) => boolean} [exists] file test (for tests)
 */
function detectLibc(proc = process, exists = fs.existsSync) {
  try {
    const report = proc.report && typeof proc.report.getReport === 'function' ? proc.report.getReport() : null;
    const header = report && (typeof report === 'string' ? JSON.parse(report).header : report.header);
    if (header && header.glibcVersionRuntime) return 'gnu';
    if (header && Array.isArray(report.sharedObjects) &&
        report.sharedObjects.some((s) => /ld-musl|libc\.musl/.test(s))) return 'musl';
  } catch {
    // fall through to the file test
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
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/**
 * Loads the addon. All parameters exist for tests; callers pass none.
 * @param {{platform?: string, arch?: string, libc?: string, env?: object,
 *          requireFn?: (id: string) => any, localDir?: string,
 *          exists?: (p: string) => boolean}} [o]
 */
function loadAddon(o = {}) {
  const platform = o.platform || process.platform;
  const arch = o.arch || process.arch;
  const libc = platform === 'linux' ? (o.libc || detectLibc()) : undefined;
  const env = o.env || process.env;
  const req = o.requireFn || require;
  const exists = o.exists || fs.existsSync;
  const key = platformKey(platform, arch, libc);
  const pkg = `@x0x/core-${key}`;

  if (env.X0X_NODE_ADDON) {
    return req(path.resolve(env.X0X_NODE_ADDON));
  }
  try {
    return req(pkg);
  } catch (err) {
    // A package that is there but fails to load is a real error: say so.
    if (!err || err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(pkg)) {
      throw new Error(`x0x: the native package ${pkg} was found but failed to load: ${err && err.message}`,
        { cause: err });
    }
  }
  const local = path.join(o.localDir || path.join(__dirname, '..', 'npm'), key, 'x0x.node');
  if (exists(local)) {
    return req(local);
  }
  const hint = SUPPORTED.includes(key)
    ? `install it (npm installs it automatically as an optional dependency of x0x unless optional dependencies were omitted)`
    : `no prebuilt package exists for this platform; supported: ${SUPPORTED.join(', ')}`;
  const e = new Error(`x0x: no native addon for platform ${key}: could not load ${pkg} (${hint}), ` +
    `and there is no local build at ${local} (bindings/node/scripts/build.sh)`);
  e.code = 'X0X_ERR_NO_ADDON';
  throw e;
}

module.exports = { loadAddon, platformKey, detectLibc, SUPPORTED };
