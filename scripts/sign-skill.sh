#!/usr/bin/env bash
# Makes SKILL.md.asc, a detached ASCII-armoured OpenPGP signature of SKILL.md
# (or of FILE, into FILE.asc), with the release key or any key you name.
#
#   scripts/sign-skill.sh [-k KEY] [-o OUT] [FILE]
#
# The key, one of:
#   -k KEY or $X0X_SKILL_KEY    a key ID, fingerprint or user ID of a secret
#                               key in the keyring of $GNUPGHOME (default
#                               ~/.gnupg);
#   $X0X_SKILL_KEY_FILE         an armoured secret key file (the release key,
#                               e.g. written from a CI secret): it is imported
#                               into a throwaway keyring, deleted afterwards
#                               (-k then picks one of its keys if it has several).
# A passphrase-protected key takes its passphrase from $X0X_SKILL_PASSPHRASE
# (otherwise gpg asks for it). The signature is checked with the same key
# before the script returns; check it against the key shipped in keys/ with
# scripts/verify-skill.sh. The project's release key is the one whose public
# half is keys/x0x-release.asc (keys/README.md). Needs gpg (GnuPG 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() { echo "usage: $0 [-k KEY] [-o OUT] [FILE]  (FILE defaults to SKILL.md; KEY also from \$X0X_SKILL_KEY or \$X0X_SKILL_KEY_FILE)" >&2; exit 2; }
key=${X0X_SKILL_KEY:-}
out=
while getopts "k:o:h" opt; do
  case $opt in
    k) key=$OPTARG ;;
    o) out=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
file=${1:-$root/SKILL.md}
out=${out:-$file.asc}
[ -f "$file" ] || { echo "sign-skill.sh: no file $file" >&2; exit 1; }
command -v gpg >/dev/null || { echo "sign-skill.sh: gpg is required (Debian: apt-get install gnupg)" >&2; exit 1; }

home=
cleanup() {
  if [ -n "$home" ]; then
    GNUPGHOME=$home gpgconf --kill all 2>/dev/null || true
    rm -rf "$home"
  fi
}
trap cleanup EXIT
if [ -n "${X0X_SKILL_KEY_FILE:-}" ]; then
  [ -f "$X0X_SKILL_KEY_FILE" ] || { echo "sign-skill.sh: no key file $X0X_SKILL_KEY_FILE" >&2; exit 1; }
  home=$(mktemp -d /tmp/x0x-sign.XXXXXX)
  chmod 700 "$home"
  export GNUPGHOME=$home
  gpg --batch --quiet --import "$X0X_SKILL_KEY_FILE"
  secret=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "sec" { getline; print $10 }')
  if [ -z "$key" ]; then
    { [ "$(wc -l <<<"$secret")" = 1 ] && [ -n "$secret" ]; } ||
      { echo "sign-skill.sh: $X0X_SKILL_KEY_FILE holds $(grep -c . <<<"$secret") secret keys; name one with -k" >&2; exit 1; }
    key=$secret
  fi
fi
[ -n "$key" ] || { echo "sign-skill.sh: no key: give -k KEY, \$X0X_SKILL_KEY or \$X0X_SKILL_KEY_FILE" >&2; usage; }
fpr=$(gpg --batch --with-colons --list-secret-keys -- "$key" 2>/dev/null | awk -F: '$1 == "sec" { getline; print $10; exit }')
[ -n "$fpr" ] || { echo "sign-skill.sh: no secret key '$key' in ${GNUPGHOME:-~/.gnupg}" >&2; exit 1; }

args=(--batch --yes --armor --detach-sign --digest-algo SHA512 --local-user "$fpr" --output "$out")
if [ -n "${X0X_SKILL_PASSPHRASE:-}" ]; then
  gpg "${args[@]}" --pinentry-mode loopback --passphrase-fd 3 "$file" 3<<<"$X0X_SKILL_PASSPHRASE"
else
  gpg "${args[@]}" "$file"
fi
if ! gpg --batch --quiet --verify "$out" "$file" 2>/dev/null; then
  echo "sign-skill.sh: the new signature $out does not verify" >&2
  exit 1
fi
echo "signed $file -> $out with key $fpr"
