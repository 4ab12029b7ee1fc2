#!/usr/bin/env node
'use strict';
// The command of the npm package x0x:
//
//   npx x0x skill install [DIR] [--no-verify] [--force]
//   npx x0x skill verify [DIR]
//
// `skill install` copies the x0x Agent Skill shipped in this package
// (SKILL.md, its signature SKILL.md.asc, and the folder skill/ that SKILL.md
// links to) into DIR, by default ./.claude/skills/x0x (a project skill of
// Claude Code; ~/.claude/skills/x0x makes it a personal one). A DIR named
// `skills` gets an x0x/ folder inside, as the Agent Skills format names a
// skill's folder after the skill. Before it copies anything it verifies
// SKILL.md against SKILL.md.asc with the x0x release key shipped in this
// package (keys/x0x-release.asc), by the rules of the repository's
// scripts/verify-skill.sh: gpg, in a throwaway keyring that holds only that
// key (your keyring is never read, no key is fetched); exactly one good
// signature, by a key of that file, neither expired nor revoked. Without
// gpg it refuses unless --no-verify is given. `skill verify DIR` checks an
// installed copy (DIR/SKILL.md against DIR/SKILL.md.asc) the same way.
//
// Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 bad
// usage. This file uses nothing but Node's standard library and gpg.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

// This file is <package>/bindings/node/bin/x0x.js, in the repository and in
// the npm package alike.
const PKG_ROOT = path.resolve(__dirname, '..', '..', '..');
const KEY_FILE = path.join('keys', 'x0x-release.asc');
const DEFAULT_DIR = path.join('.claude', 'skills', 'x0x');

const USAGE = `usage: x0x skill install [DIR] [--no-verify] [--force]
       x0x skill verify [DIR]

  skill install  verify SKILL.md (the x0x Agent Skill in this package) against
                 SKILL.md.asc with the x0x release key, then copy SKILL.md,
                 SKILL.md.asc and skill/ into DIR (default ${DEFAULT_DIR};
                 ~/.claude/skills/x0x for every project; a DIR named "skills"
                 gets an x0x/ folder inside)
      --no-verify  install without checking the signature (when gpg is missing)
      --force      install into a non-empty DIR that holds no x0x skill
  skill verify   verify DIR/SKILL.md against DIR/SKILL.md.asc (default: the
                 copy in this package) with the x0x release key

The x0x command-line tool for agents and people is another program:
  go install github.com/saorsa-labs/x0x-go/cmd/x0x@latest`;

class Refusal extends Error {}

/** Runs gpg; returns { status, stdout, stderr } or throws Refusal if gpg is missing. */
function gpg(args, home) {
  const r = spawnSync('gpg', ['--homedir', home, '--batch', ...args],
    { encoding: 'utf8', env: { ...process.env, GNUPGHOME: home }, windowsHide: true });
  if (r.error) {
    if (r.error.code === 'ENOENT') throw new GpgMissing();
    throw new Refusal(`cannot run gpg: ${r.error.message}`);
  }
  return r;
}

class GpgMissing extends Refusal {
  constructor() {
    super('gpg (GnuPG 2) is needed to verify SKILL.md against the x0x release key and was not found on PATH; ' +
      'install it (Debian/Ubuntu: apt-get install gnupg; macOS: brew install gnupg; Windows: Gpg4win) and run ' +
      'this again, or pass --no-verify to install without checking the signature (not recommended)');
  }
}

/**
 * Verifies file against the detached signature sig with the public key(s)
 * in keyFile only. Returns { fingerprint, uid }; throws Refusal with the
 * reason otherwise.
 */
function verify(file, sig, keyFile) {
  for (const f of [file, sig, keyFile]) {
    if (!fs.existsSync(f)) throw new Refusal(`no file ${f}`);
  }
  // A detached armoured signature, not a signed message carrying its own
  // copy of the text (gpg would verify that copy instead of the file).
  const first = fs.readFileSync(sig, 'utf8').split('\n', 1)[0].replace(/\r$/, '');
  if (first !== '-----BEGIN PGP SIGNATURE-----') throw new Refusal(`${sig} is not a detached ASCII-armoured signature`);

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'x0x-verify-'));
  try {
    fs.chmodSync(home, 0o700);
    const imp = gpg(['--quiet', '--import', keyFile], home);
    if (imp.status !== 0) throw new Refusal(`cannot import ${keyFile}: ${imp.stderr.trim()}`);
    // Fingerprints of the primary keys in the key file (the fpr line after each pub line).
    const trusted = [];
    const lines = gpg(['--with-colons', '--list-keys'], home).stdout.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].startsWith('pub:') && lines[i + 1] && lines[i + 1].startsWith('fpr:')) {
        trusted.push(lines[i + 1].split(':')[9]);
      }
    }
    if (trusted.length === 0) throw new Refusal(`${keyFile} holds no public key`);

    const v = gpg(['--no-auto-key-retrieve', '--status-fd', '1', '--verify', sig, file], home);
    const status = v.stdout.split('\n').filter((l) => l.startsWith('[GNUPG:] '));
    const count = (kw) => status.filter((l) => l.split(' ')[1] === kw).length;
    const reasons = [];
    if (v.status !== 0) reasons.push(`gpg --verify exited with status ${v.status}`);
    for (const bad of ['BADSIG', 'ERRSIG', 'EXPSIG', 'EXPKEYSIG', 'REVKEYSIG', 'NO_PUBKEY']) {
      if (count(bad) > 0) reasons.push(`gpg reports ${bad}`);
    }
    if (count('NEWSIG') !== 1) reasons.push(`${count('NEWSIG')} signatures instead of one`);
    if (count('GOODSIG') !== 1) reasons.push('no good signature');
    // VALIDSIG's 10th argument is the fingerprint of the signing key's primary key.
    const valid = status.find((l) => l.split(' ')[1] === 'VALIDSIG');
    const signer = valid ? valid.split(' ')[11] : '';
    if (reasons.length === 0 && !trusted.includes(signer)) reasons.push(`signed by ${signer}, not by a key of ${keyFile}`);
    if (reasons.length > 0) {
      const log = v.stderr.trim().split('\n').filter(Boolean).map((l) => `  ${l}`).join('\n');
      throw new Refusal(`${file} does not match ${sig} under ${keyFile}: ${reasons.join('; ')}${log ? `\n${log}` : ''}`);
    }
    const uidLine = gpg(['--with-colons', '--list-keys', signer], home).stdout.split('\n').find((l) => l.startsWith('uid:'));
    return { fingerprint: signer, uid: uidLine ? uidLine.split(':')[9] : '' };
  } finally {
    spawnSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore', env: { ...process.env, GNUPGHOME: home } });
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** Every file under dir, as paths relative to dir (sorted). */
function listFiles(dir, rel = '') {
  const out = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, ent.name);
    if (ent.isDirectory()) out.push(...listFiles(dir, r));
    else if (ent.isFile()) out.push(r);
  }
  return out.sort();
}

/** True if dir/SKILL.md is an x0x skill (front matter `name: x0x`). */
function holdsX0xSkill(dir) {
  try {
    const text = fs.readFileSync(path.join(dir, 'SKILL.md'), 'utf8');
    const m = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text);
    return Boolean(m && /^name:\s*["']?x0x["']?\s*$/m.test(m[1]));
  } catch {
    return false;
  }
}

function install(dirArg, { noVerify, force }, out) {
  let dest = path.resolve(dirArg || DEFAULT_DIR);
  if (path.basename(dest) === 'skills') dest = path.join(dest, 'x0x');

  // Read everything first; verify the bytes that will be written.
  const src = (p) => path.join(PKG_ROOT, p);
  for (const p of ['SKILL.md', 'SKILL.md.asc', 'skill']) {
    if (!fs.existsSync(src(p))) throw new Refusal(`this x0x package lacks ${p} (looked in ${PKG_ROOT})`);
  }
  const files = new Map();
  files.set('SKILL.md', fs.readFileSync(src('SKILL.md')));
  files.set('SKILL.md.asc', fs.readFileSync(src('SKILL.md.asc')));
  for (const f of listFiles(src('skill'))) files.set(path.join('skill', f), fs.readFileSync(src(path.join('skill', f))));

  let verified = null;
  if (noVerify) {
    out.err('x0x skill install: WARNING: --no-verify: SKILL.md is installed without checking its signature');
  } else {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'x0x-skill-'));
    try {
      fs.writeFileSync(path.join(stage, 'SKILL.md'), files.get('SKILL.md'));
      fs.writeFileSync(path.join(stage, 'SKILL.md.asc'), files.get('SKILL.md.asc'));
      verified = verify(path.join(stage, 'SKILL.md'), path.join(stage, 'SKILL.md.asc'), src(KEY_FILE));
    } catch (err) {
      if (err instanceof Refusal && !(err instanceof GpgMissing)) {
        throw new Refusal(`${err.message.split(path.join(stage, 'SKILL.md')).join(src('SKILL.md'))}; nothing installed`);
      }
      throw err;
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }

  if (fs.existsSync(dest)) {
    if (!fs.statSync(dest).isDirectory()) throw new Refusal(`${dest} exists and is not a directory`);
    const present = fs.readdirSync(dest);
    if (present.length > 0 && !holdsX0xSkill(dest) && !force) {
      throw new Refusal(`${dest} is not empty and holds no x0x skill; choose another DIR or pass --force`);
    }
    // An earlier x0x skill here: its skill/ folder is replaced, not merged.
    if (holdsX0xSkill(dest)) fs.rmSync(path.join(dest, 'skill'), { recursive: true, force: true });
  }
  for (const [rel, data] of files) {
    const target = path.join(dest, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, data);
  }
  const how = verified ? `SKILL.md verified: signed by ${verified.fingerprint}${verified.uid ? ` (${verified.uid})` : ''}` : 'not verified';
  out.log(`installed the x0x skill into ${dest} (${files.size} files; ${how})`);
}

function verifyCopy(dirArg, out) {
  const dir = path.resolve(dirArg || PKG_ROOT);
  const v = verify(path.join(dir, 'SKILL.md'), path.join(dir, 'SKILL.md.asc'), path.join(PKG_ROOT, KEY_FILE));
  out.log(`ok: ${path.join(dir, 'SKILL.md')} is signed by ${v.fingerprint}${v.uid ? ` (${v.uid})` : ''}`);
}

/** Runs the command; returns the exit status. */
function main(argv, out = { log: (s) => console.log(s), err: (s) => console.error(s) }) {
  const flags = new Set(argv.filter((a) => a.startsWith('-')));
  const args = argv.filter((a) => !a.startsWith('-'));
  if (flags.has('-h') || flags.has('--help') || argv.length === 0) {
    (argv.length === 0 ? out.err : out.log)(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  if (flags.has('--version')) {
    out.log(JSON.parse(fs.readFileSync(path.join(PKG_ROOT, 'package.json'), 'utf8')).version);
    return 0;
  }
  const known = args[0] === 'skill' && ['install', 'verify'].includes(args[1]);
  const allowed = args[1] === 'install' ? ['--no-verify', '--force'] : [];
  const unknown = [...flags].filter((f) => !allowed.includes(f));
  if (!known || args.length > 3 || unknown.length > 0) {
    out.err(unknown.length > 0 ? `x0x: unknown option ${unknown[0]}\n${USAGE}` : USAGE);
    return 2;
  }
  try {
    if (args[1] === 'install') install(args[2], { noVerify: flags.has('--no-verify'), force: flags.has('--force') }, out);
    else verifyCopy(args[2], out);
    return 0;
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    out.err(`x0x skill ${args[1]}: REFUSED: ${err.message}`);
    return 1;
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

module.exports = { main, verify };
