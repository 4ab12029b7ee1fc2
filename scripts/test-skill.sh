#!/usr/bin/env bash
# Tests SKILL.md (issue 14), in three parts:
#   1. format: the front matter follows the Agent Skills format
#      (agentskills.io specification: name "x0x", a description of 1-1024
#      characters, only the known fields, plain one-line values), the file
#      stays under 500 lines, every relative link of SKILL.md and skill/*.md
#      names an existing file, and so does every link into this repository on
#      GitHub (theirs, and the agent card's extension URI);
#   2. examples: every fenced code block of SKILL.md and skill/*.md whose
#      info string is "<language> runnable" is extracted and run, and each of
#      go, js, python and c must have at least one:
#        go      main.go of a temporary module that requires this checkout
#                (a replace directive; GOPROXY=off, so nothing is fetched),
#                built with go build and run
#        js      node, with require('x0x') resolving to bindings/node (lib/ and
#                the addon `make node-addon` builds) through a node_modules link
#        python  python3 with PYTHONPATH=bindings/python/src and
#                X0X_LIB=build/lib/libx0x.so.0
#        c       gcc -std=c11 -Wall -Wextra -Werror with ASan + UBSan against
#                include/ and build/lib (rpath), run with an empty directory
#      each within 120 s, exit status 0;
#   3. signatures: SKILL.md.asc verifies against keys/x0x-release.asc
#      (scripts/verify-skill.sh); a throwaway key made here signs a copy
#      (scripts/sign-skill.sh, from a keyring and from a key file), the copy
#      verifies with that key and fails with one byte changed or appended,
#      under another key, with no signature and with a signed message in
#      place of a detached signature.
# Usage: scripts/test-skill.sh [format|examples|signatures]... (default: all)
# Expects `make capi` and `make node-addon` (the Makefile's test-skill target
# builds both). Needs go, node, python3, gcc and gpg; as root on Debian, a
# missing gpg or gcc is installed with apt-get. Only 127.0.0.1 is used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(format examples signatures)

need=()
command -v gpg >/dev/null || need+=(gnupg)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing tools: ${need[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
fi

work=$(mktemp -d /tmp/x0x-skill-test.XXXXXX)
gnupg_homes=()
cleanup() {
  for h in "${gnupg_homes[@]}"; do GNUPGHOME=$h gpgconf --kill all 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
docs=(SKILL.md skill/*.md)

check_format() {
  echo "== SKILL.md: the Agent Skills format"
  [ "$(head -n1 SKILL.md)" = "---" ] || fail "SKILL.md must start with a '---' line (YAML front matter)"
  local end
  end=$(awk 'NR > 1 && $0 == "---" { print NR; exit }' SKILL.md)
  [ -n "$end" ] || fail "SKILL.md: the front matter has no closing '---'"
  sed -n "2,$((end - 1))p" SKILL.md >"$work/front"
  # Plain one-line values only (what this check can read without a YAML
  # parser); "metadata" is a map of such values, indented two spaces.
  local key value
  while IFS= read -r line; do
    if [[ $line =~ ^([a-z-]+):\ (.+)$ ]]; then
      key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
      case $key in name | description | license | compatibility | allowed-tools) ;;
        *) fail "SKILL.md: front matter field '$key' is not one of the Agent Skills fields" ;; esac
    elif [[ $line == "metadata:" ]]; then
      continue
    elif [[ $line =~ ^\ \ ([A-Za-z0-9_.-]+):\ (.+)$ ]]; then
      value=${BASH_REMATCH[2]}
    else
      fail "SKILL.md: front matter line not understood: '$line'"
    fi
    [[ $value != *": "* && $value != *" #"* && $value != [\[\]\{\}\&\*\!\|\>\'\"%@\`,?:-]* ]] ||
      fail "SKILL.md: '$line' is not a plain YAML value"
  done <"$work/front"
  local name description compatibility
  name=$(sed -n 's/^name: //p' "$work/front")
  description=$(sed -n 's/^description: //p' "$work/front")
  compatibility=$(sed -n 's/^compatibility: //p' "$work/front")
  [ "$name" = x0x ] || fail "SKILL.md: name is '$name', want x0x"
  { [[ $name =~ ^[a-z0-9]+(-[a-z0-9]+)*$ ]] && [ ${#name} -le 64 ]; } || fail "SKILL.md: invalid skill name '$name'"
  { [ ${#description} -ge 1 ] && [ ${#description} -le 1024 ]; } || fail "SKILL.md: description has ${#description} characters (1-1024)"
  [[ $description != *[\<\>]* ]] || fail "SKILL.md: the description must not contain < or >"
  [ ${#compatibility} -le 500 ] || fail "SKILL.md: compatibility has ${#compatibility} characters (at most 500)"
  local lines
  lines=$(wc -l <SKILL.md)
  [ "$lines" -lt 500 ] || fail "SKILL.md has $lines lines; keep it under 500 and move detail into skill/"
  echo "ok: front matter (name x0x, description ${#description} characters), $lines lines"

  local doc target n=0
  for doc in "${docs[@]}"; do
    # Links outside code blocks and code spans.
    # shellcheck disable=SC2016
    while IFS= read -r target; do
      target=${target%%#*}
      [ -n "$target" ] || continue
      [ -e "$(dirname "$doc")/$target" ] || fail "$doc links to $target, which does not exist"
      n=$((n + 1))
    done < <(awk '/^```/ { code = !code; next } !code' "$doc" | sed 's/`[^`]*`//g' |
      grep -o '](\([^)]*\))' | sed 's/^](//; s/)$//' | grep -Ev '^[a-z]+:' || true)
  done
  echo "ok: $n relative links resolve"
  # Links into this repository on GitHub (from the docs, and the agent
  # card's extension URI) name files that exist here.
  local url m=0
  while IFS= read -r url; do
    [ -e "${url#https://github.com/saorsa-labs/x0x-go/blob/main/}" ] || fail "$url names a file this repository does not have"
    m=$((m + 1))
  done < <(grep -ohE 'https://github.com/saorsa-labs/x0x-go/blob/main/[^ )"`>]+' "${docs[@]}" core/x0x/agentcard.go | sort -u)
  echo "ok: $m links into the repository name existing files"
}

# extract writes each runnable block of the docs to $work/examples/NN.<lang>
# and prints "<file> <doc>:<line>" per block.
extract() {
  mkdir -p "$work/examples"
  awk -v dir="$work/examples" '
    function unterminated() {
      printf "unterminated code block at %s:%d\n", file, start > "/dev/stderr"
      bad = 1
      exit 1
    }
    FNR == 1 && inblock { unterminated() }
    !inblock && /^```[a-z]+ runnable[ \t]*$/ {
      lang = substr($1, 4); n++; inblock = 1; start = FNR; file = FILENAME
      out = sprintf("%s/%02d.%s", dir, n, lang)
      printf "" > out
      printf "%s %s:%d\n", out, FILENAME, FNR
      next
    }
    inblock && /^```[ \t]*$/ { inblock = 0; close(out); next }
    inblock { print > out }
    END { if (!bad && inblock) unterminated() }
  ' "${docs[@]}"
}

run_example() {
  local file=$1 where=$2 lang=${1##*.} dir
  dir=$work/run-$(basename "$file")
  mkdir -p "$dir"
  echo "== $where ($lang)"
  case $lang in
    go)
      cp "$file" "$dir/main.go" &&
        sed 's#^module .*#module example.com/x0xskill#' go.mod >"$dir/go.mod" &&
        cp go.sum "$dir/go.sum" &&
        (cd "$dir" && go mod edit -require=github.com/saorsa-labs/x0x-go@v0.0.0 -replace=github.com/saorsa-labs/x0x-go="$root" &&
          GOPROXY=off GOFLAGS=-mod=mod go build -o example . && timeout 120 ./example) ;;
    js)
      # The npm package x0x: bindings/node, or the top-level package.json once it is the package.
      local pkg=$root/bindings/node
      grep -Eq '"name": *"x0x"' package.json 2>/dev/null && pkg=$root
      mkdir -p "$dir/node_modules" && ln -s "$pkg" "$dir/node_modules/x0x" &&
        cp "$file" "$dir/example.js" &&
        (cd "$dir" && timeout 120 node example.js) ;;
    python)
      cp "$file" "$dir/example.py" &&
        (cd "$dir" && PYTHONPATH="$root/bindings/python/src" X0X_LIB="$root/build/lib/libx0x.so.0" \
          timeout 120 python3 example.py) ;;
    c)
      # shellcheck disable=SC2054 # commas inside one gcc flag
      local san=(-g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
      echo 'int main(void){return 0;}' | gcc "${san[@]}" -x c - -o "$dir/probe" 2>/dev/null || san=(-g)
      cp "$file" "$dir/example.c" &&
        gcc -std=c11 -Wall -Wextra -Werror "${san[@]}" -I"$root/include" "$dir/example.c" \
          -L"$root/build/lib" -lx0x -Wl,-rpath,"$root/build/lib" -o "$dir/example" &&
        mkdir "$dir/data" &&
        ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 timeout 120 "$dir/example" "$dir/data" ;;
    *) fail "$where: cannot run '$lang'" ;;
  esac || fail "$where: the $lang example failed (exit status $?)"
}

check_examples() {
  echo "== SKILL.md: the runnable examples"
  local tool
  for tool in go node python3; do
    command -v "$tool" >/dev/null || fail "$tool is required"
  done
  [ -f build/lib/libx0x.so.0 ] || fail "build/lib/libx0x.so.0 is missing: run make capi"
  [ -n "${X0X_NODE_ADDON:-}" ] || ls bindings/node/npm/*/x0x.node >/dev/null 2>&1 ||
    fail "the Node addon is missing: run make node-addon"
  local blocks lang
  blocks=$(extract) || fail "extracting the examples"
  for lang in go js python c; do
    grep -q "\.$lang " <<<"$blocks" || fail "no runnable $lang example in ${docs[*]}"
  done
  while read -r file where; do
    case ${file##*.} in go | js | python | c) ;;
      *) fail "$where: a runnable block in '${file##*.}', which this script cannot run (go, js, python, c)" ;; esac
  done <<<"$blocks"
  while read -r file where; do
    local t0=$SECONDS
    run_example "$file" "$where" </dev/null
    echo "ok: $where ($((SECONDS - t0)) s)"
  done <<<"$blocks"
}

# flip changes the byte at offset $2 of file $1.
flip() {
  local b
  b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null)
  if [ "$b" = a ]; then b=b; else b=a; fi
  printf '%s' "$b" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

expect_fail() {
  local what=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    cat "$work/out"
    fail "verification passed $what"
  fi
  grep -q "FAILED" "$work/out" || { cat "$work/out"; fail "verification failed $what, but without saying so"; }
  echo "ok: refused $what ($(sed -n 's/.*FAILED: //p' "$work/out" | sed 's/.* under [^ ]*: //'))"
}

check_signatures() {
  echo "== SKILL.md.asc: the shipped signature against the shipped key"
  ./scripts/verify-skill.sh ||
    fail "SKILL.md.asc does not match SKILL.md under keys/x0x-release.asc: after editing SKILL.md, re-sign it with the release key (X0X_SKILL_KEY_FILE=<its secret key file> scripts/sign-skill.sh; keys/README.md)"

  echo "== signing and verifying with a throwaway key"
  local home=$work/gnupg s=$work/sig
  mkdir -p "$home" "$s"
  chmod 700 "$home"
  gnupg_homes+=("$home")
  GNUPGHOME=$home gpg --batch --quiet --passphrase '' --quick-gen-key 'x0x skill test key (throwaway)' ed25519 sign 1d 2>/dev/null
  local fpr
  fpr=$(GNUPGHOME=$home gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "sec" { getline; print $10; exit }')
  [ -n "$fpr" ] || fail "no throwaway key was made"
  GNUPGHOME=$home gpg --batch --armor --export "$fpr" >"$s/throwaway.asc" 2>/dev/null
  cp SKILL.md "$s/SKILL.md"

  GNUPGHOME=$home ./scripts/sign-skill.sh -k "$fpr" "$s/SKILL.md"
  ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/SKILL.md" || fail "a fresh signature did not verify"
  # The key file way (as release signing in CI does it), into another output.
  GNUPGHOME=$home gpg --batch --armor --export-secret-keys "$fpr" >"$s/secret.asc"
  X0X_SKILL_KEY_FILE=$s/secret.asc ./scripts/sign-skill.sh -o "$s/keyfile.asc" "$s/SKILL.md"
  ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/SKILL.md" "$s/keyfile.asc" || fail "a signature made from a key file did not verify"

  cp "$s/SKILL.md" "$s/tampered.md"
  flip "$s/tampered.md" $(($(wc -c <"$s/SKILL.md") / 2))
  ! cmp -s "$s/SKILL.md" "$s/tampered.md" || fail "the tampering changed nothing"
  expect_fail "SKILL.md with one byte changed" ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/tampered.md" "$s/SKILL.md.asc"
  cp "$s/SKILL.md" "$s/appended.md" && printf ' ' >>"$s/appended.md"
  expect_fail "SKILL.md with one byte appended" ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/appended.md" "$s/SKILL.md.asc"
  # Another key, even with the signer's key in $GNUPGHOME: only the key file counts.
  GNUPGHOME=$home expect_fail "a signature by a key other than the shipped one" ./scripts/verify-skill.sh "$s/SKILL.md" "$s/SKILL.md.asc"
  expect_fail "SKILL.md with one byte changed, under the shipped key and signature" ./scripts/verify-skill.sh "$s/tampered.md" SKILL.md.asc
  expect_fail "a missing signature" ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/SKILL.md" "$s/none.asc"
  GNUPGHOME=$home gpg --batch --yes --quiet --armor --output "$s/inline.asc" --local-user "$fpr" --sign "$s/SKILL.md"
  expect_fail "a signed message in place of a detached signature" ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/SKILL.md" "$s/inline.asc"
  ./scripts/verify-skill.sh -k "$s/throwaway.asc" "$s/SKILL.md" >/dev/null || fail "the untouched copy stopped verifying"
}

for part in "${parts[@]}"; do
  case $part in
    format) check_format ;;
    examples) check_examples ;;
    signatures) check_signatures ;;
    *) echo "usage: $0 [format|examples|signatures]..." >&2; exit 2 ;;
  esac
done
echo "skill: all checks passed (${parts[*]})"
