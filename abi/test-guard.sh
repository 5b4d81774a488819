#!/bin/sh
# test-guard.sh SOURCE-DIR [MESON] - the ABI guard (abi/check.sh) fails on
# incompatible changes and passes compatible ones.
#
# Builds libbioplaus with debug info from a copy of SOURCE-DIR, then, for
# each case, changes the copy, rebuilds the library and runs abi/check.sh
# against the copy's committed baselines:
#   - the tree as it is: passes, no ABI change;
#   - an exported function dropped from the symbol map: fails;
#   - an enumerator renumbered: fails;
#   - a parameter's type changed: fails (abidiff's status says only "ABI
#     change" for this one, not "incompatible");
#   - that change with a new soname but the old version node: fails;
#   - that change with a new soname and a new version node: passes, and
#     asks for new baselines;
#   - additions (a function in a new version node, an enumerator at the end
#     of its enum, a hook at the end of bpl_rule_vtable): passes and lists
#     them;
#   - a library without debug info: refused.
# Every edit must change its file: an edit that no longer matches the
# sources fails its case instead of testing nothing.
#
# The last line is "N passed, N failed"; the exit status is 0 only when
# nothing failed.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 SOURCE-DIR [MESON]" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
meson=${2:-meson}

work=$(mktemp -d "${TMPDIR:-/tmp}/bioplaus-abi-guard.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A signal (meson's timeout, a closed pipe) ends the script through exit,
# so that the temporary tree goes too.
trap 'exit 2' HUP INT PIPE TERM
tree=$work/src
build=$work/build
passed=0
failed=0

pass() {
    echo "ok: $*"
    passed=$((passed + 1))
}

# fail MESSAGE [LOG]: the case failed; LOG, if given, is shown indented.
fail() {
    echo "FAIL: $1"
    failed=$((failed + 1))
    if [ $# -gt 1 ]; then
        sed 's/^/    /' "$2"
    fi
}

# The sources, without git metadata, build trees and downloaded data.
mkdir "$tree" "$work/orig"
(cd "$src" && tar cf - --exclude='./build*' --exclude=./.git --exclude=./data \
    --exclude=./stage --exclude='./accuracy-*' .) | (cd "$tree" && tar xf -)

# edit FILE SED-SCRIPT: change FILE (relative to the copy), keeping its
# original for restore.  A script that changes nothing fails the case.
edit() {
    if [ ! -e "$work/orig/$1" ]; then
        mkdir -p "$(dirname "$work/orig/$1")"
        cp "$tree/$1" "$work/orig/$1"
    fi
    sed "$2" "$tree/$1" >"$work/edited"
    if cmp -s "$tree/$1" "$work/edited"; then
        fail "$what: editing $1 changed nothing (the sources moved on: update abi/test-guard.sh)"
        return 1
    fi
    # cat keeps the file's mode and gives it a new time, which ninja sees.
    cat "$work/edited" >"$tree/$1"
}

# append FILE TEXT: add TEXT at the end of FILE, keeping its original.
append() {
    if [ ! -e "$work/orig/$1" ]; then
        mkdir -p "$(dirname "$work/orig/$1")"
        cp "$tree/$1" "$work/orig/$1"
    fi
    printf '%s\n' "$2" >>"$tree/$1"
}

# Every edited file back as it was (with a new time, so that it is rebuilt).
restore() {
    (cd "$work/orig" && find . -type f) | while read -r file; do
        cat "$work/orig/$file" >"$tree/$file"
    done
    rm -rf "$work/orig"
    mkdir "$work/orig"
}

# expect pass|fail PHRASE...: rebuild the library, run the guard on it; it
# must pass (exit 0) or fail (exit 1), and say every PHRASE.  The outcome
# is counted; the status is always 0.
expect() {
    want=0
    if [ "$1" = fail ]; then
        want=1
    fi
    shift
    if ! "$meson" compile -C "$build" lib/bioplaus:shared_library >"$work/build.log" 2>&1; then
        fail "$what: the library did not build" "$work/build.log"
        return 0
    fi
    status=0
    "$tree/abi/check.sh" "$tree" "$build" libbioplaus >"$work/check.log" 2>&1 || status=$?
    if [ "$status" -ne "$want" ]; then
        fail "$what: abi/check.sh exited with $status, not $want" "$work/check.log"
        return 0
    fi
    for phrase in "$@"; do
        if ! grep -qF -- "$phrase" "$work/check.log"; then
            fail "$what: abi/check.sh did not say \"$phrase\"" "$work/check.log"
            return 0
        fi
    done
    pass "$what"
}

# The names the cases change: the soname's number (meson.build) and the
# symbol map's version node (lib/bioplaus.map).
soversion=$(sed -n "s/^bpl_soversion = '\([0-9]*\)'\$/\1/p" "$tree/meson.build")
node=$(sed -n 's/^\(BIOPLAUS_[0-9.]*\) {$/\1/p' "$tree/lib/bioplaus.map")
if [ -z "$soversion" ] || [ -z "$node" ]; then
    echo "FAIL: bpl_soversion (meson.build) or the version node (lib/bioplaus.map) not found"
    echo "0 passed, 1 failed"
    exit 1
fi

# The library alone, with debug info: what the guard reads.
if ! "$meson" setup "$build" "$tree" -Dbuildtype=debugoptimized -Dtests=disabled \
    -Dexamples=false -Dbench=false -Dtools=false -Ddocs=disabled -Dmpi=disabled \
    -Ddnnl=disabled >"$work/setup.log" 2>&1; then
    fail "meson setup of the copy" "$work/setup.log"
    echo "$passed passed, $failed failed"
    exit 1
fi

what="the tree as it is passes"
expect pass "libbioplaus: OK: no ABI change"

what="an exported function dropped from lib/bioplaus.map fails"
if edit lib/bioplaus.map '/^    bpl_net_seed;$/d'; then
    expect fail "INCOMPATIBLE" "bpl_net_seed"
fi
restore

what="an enumerator renumbered (BPL_LOG_INFO 3 -> 7) fails"
if edit include/bioplaus.h 's/^    BPL_LOG_INFO = 3$/    BPL_LOG_INFO = 7/'; then
    expect fail "INCOMPATIBLE" "changed: BPL_LOG_INFO = 3 -> 7 (enum bpl_log_level)"
fi
restore

# One change for the next three cases: the scale of bpl_dataset_set_scaling
# becomes a float.
what="a parameter's type changed (double -> float) fails"
scaling='s/^\(BPL_API int bpl_dataset_set_scaling(bpl_dataset \*ds, \)double scale/\1float scale/'
if edit include/bioplaus.h "$scaling" && edit lib/dataset.c "$scaling"; then
    expect fail "INCOMPATIBLE" "bpl_dataset_set_scaling" \
        "The soname is still libbioplaus.so.$soversion"

    what="that change with a new soname but the old version node fails"
    if edit meson.build "s/^bpl_soversion = '$soversion'\$/bpl_soversion = '$((soversion + 1))'/"; then
        expect fail "INCOMPATIBLE" "The symbol version node is still $node"

        what="that change with a new soname and a new version node passes"
        if edit lib/bioplaus.map "s/^$node {\$/BIOPLAUS_GUARD_TEST {/"; then
            expect pass "incompatible ABI change under a new soname" "BIOPLAUS_GUARD_TEST" \
                "the release must commit new baselines"
        fi
    fi
fi
restore

what="additions (a function, an enumerator, a vtable hook at its end) pass, listed"
if edit include/bioplaus.h 's/^BPL_API const char \*bpl_version_string(void);$/&\
BPL_API int bpl_abi_guard_probe(int x);/' &&
    edit include/bioplaus.h 's/^    BPL_LOG_INFO = 3$/    BPL_LOG_INFO = 3,\
    BPL_LOG_GUARD_PROBE = 4/' &&
    edit include/bioplaus_rule.h 's/^} bpl_rule_vtable;$/    int (*guard_probe_hook)(void *self);\
} bpl_rule_vtable;/'; then
    append lib/version.c '
BPL_API int bpl_abi_guard_probe(int x)
{
    return x;
}'
    append lib/bioplaus.map "
BIOPLAUS_GUARD_TEST {
global:
    bpl_abi_guard_probe;
} $node;"
    expect pass "libbioplaus: OK: compatible additions only" "1 Added function" \
        "bpl_abi_guard_probe" "added: BPL_LOG_GUARD_PROBE = 4 (enum bpl_log_level)" \
        "guard_probe_hook"
fi
restore

# The library of the unchanged tree with its debug info stripped, in a
# build tree of its own.
what="a library without debug info is refused"
mkdir -p "$work/stripped/lib"
if ! "$meson" compile -C "$build" lib/bioplaus:shared_library >"$work/build.log" 2>&1; then
    fail "$what: the library did not build" "$work/build.log"
elif ! objcopy --strip-debug "$build/lib/libbioplaus.so" "$work/stripped/lib/libbioplaus.so"; then
    fail "$what: objcopy --strip-debug failed"
else
    status=0
    "$tree/abi/check.sh" "$tree" "$work/stripped" libbioplaus >"$work/check.log" 2>&1 || status=$?
    if [ "$status" -eq 2 ] && grep -q "has no debug info" "$work/check.log"; then
        pass "$what"
    else
        fail "$what: abi/check.sh exited with $status" "$work/check.log"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
