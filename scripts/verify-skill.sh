#!/usr/bin/env bash
# Verifies SKILL.md against its detached signature SKILL.md.asc with the
# project's public key shipped in this repository, keys/x0x-release.asc,
# and nothing else: the key is imported into a throwaway keyring (your own
# keyring and $GNUPGHOME are never read), no key is fetched from anywhere.
#
#   scripts/verify-skill.sh [-k PUBLIC_KEY_FILE] [FILE [SIGNATURE]]
#
# FILE defaults to SKILL.md, SIGNATURE to FILE.asc, the key file to
# keys/x0x-release.asc. It exits 0 only if SIGNATURE is one detached
# armoured signature, good, over FILE exactly as it is, made by a key of
# the key file that is neither expired nor revoked; otherwise it says why
# and exits 1 (2 for bad usage). Needs gpg (GnuPG 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() { echo "usage: $0 [-k PUBLIC_KEY_FILE] [FILE [SIGNATURE]]" >&2; exit 2; }
keyfile=$root/keys/x0x-release.asc
while getopts "k:h" opt; do
  case $opt in
    k) keyfile=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 2 ] || usage
file=${1:-$root/SKILL.md}
sig=${2:-$file.asc}
fail() { echo "verify-skill.sh: FAILED: $*" >&2; exit 1; }
command -v gpg >/dev/null || fail "gpg is required (Debian: apt-get install gnupg)"
for f in "$file" "$sig" "$keyfile"; do
  [ -f "$f" ] || fail "no file $f"
done
# A detached armoured signature, not a signed message that carries its
# own copy of the text (gpg would verify that copy instead of FILE).
[ "$(head -n1 "$sig" | tr -d '\r')" = "-----BEGIN PGP SIGNATURE-----" ] ||
  fail "$sig is not a detached ASCII-armoured signature"

home=$(mktemp -d /tmp/x0x-verify.XXXXXX)
cleanup() {
  GNUPGHOME=$home gpgconf --kill all 2>/dev/null || true
  rm -rf "$home"
}
trap cleanup EXIT
chmod 700 "$home"
export GNUPGHOME=$home
gpg --batch --quiet --import "$keyfile" 2>"$home/import.log" || { cat "$home/import.log" >&2; fail "cannot import $keyfile"; }
trusted=$(gpg --batch --with-colons --list-keys | awk -F: '$1 == "pub" { getline; print $10 }')
[ -n "$trusted" ] || fail "$keyfile holds no public key"

status=0
gpg --batch --no-auto-key-retrieve --status-fd 3 --verify "$sig" "$file" 3>"$home/status" 2>"$home/log" || status=$?
count() { grep -cE "^\[GNUPG:\] $1( |\$)" "$home/status" || true; }
reason=
if [ "$status" != 0 ]; then
  reason="gpg --verify exited with status $status"
fi
for bad in BADSIG ERRSIG EXPSIG EXPKEYSIG REVKEYSIG NO_PUBKEY; do
  [ "$(count "$bad")" = 0 ] || reason="${reason:+$reason; }gpg reports $bad"
done
[ "$(count NEWSIG)" = 1 ] || reason="${reason:+$reason; }$(count NEWSIG) signatures instead of one"
[ "$(count GOODSIG)" = 1 ] || reason="${reason:+$reason; }no good signature"
# VALIDSIG's 10th field is the fingerprint of the signing key's primary key.
signer=$(awk '$1 == "[GNUPG:]" && $2 == "VALIDSIG" { print $12 }' "$home/status")
if [ -z "$reason" ] && ! grep -qxF "$signer" <<<"$trusted"; then
  reason="signed by $signer, not by a key of $keyfile"
fi
if [ -n "$reason" ]; then
  sed 's/^/  gpg: /' "$home/log" >&2
  fail "$file does not match $sig under $keyfile: $reason"
fi
uid=$(gpg --batch --with-colons --list-keys "$signer" | awk -F: '$1 == "uid" { print $10; exit }')
echo "ok: $(basename "$file") is signed by $signer ($uid)"
