#!/bin/sh
# check-test-setup.sh SOURCE-DIR MESON - the test suites cannot go missing
# without a word.
#
# Configures copies of SOURCE-DIR in a temporary directory and checks that
#   - with Check hidden from pkg-config, -Dtests=enabled (what the README's
#     test command passes) stops `meson setup` with a message naming Check;
#   - with the default (auto), setup succeeds and its "Test suites" summary
#     says the Check suites are off and why;
#   - the README's command form, `meson setup --reconfigure ... -Dtests=enabled`
#     on a build directory configured before, brings the Check tests back;
#   - a test listed in tests/meson.build whose source is missing is a
#     configuration error, not a silently dropped test.
# The last line is "N passed, N failed"; the exit status is 0 only when
# nothing failed.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 SOURCE-DIR MESON" >&2
    exit 2
fi
src=$1
meson=$2

work=$(mktemp -d "${TMPDIR:-/tmp}/bioplaus-setup.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

pass() {
    echo "ok: $*"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
    sed 's/^/    /' "$work/log"
}

# A copy of the sources to configure (git metadata and build trees left out).
copy_source() {
    mkdir -p "$1"
    (cd "$src" && tar cf - --exclude='./build*' --exclude=./.git --exclude=./data .) |
        (cd "$1" && tar xf -)
}

# meson setup with an empty pkg-config search path: Check (and OpenBLAS)
# are not found, as on a machine where they are not installed.
setup_without_check() {
    PKG_CONFIG_LIBDIR="$work/empty-pkgconfig" "$meson" setup "$@" \
        -Dexamples=false -Dbench=false >"$work/log" 2>&1
}

mkdir "$work/empty-pkgconfig"
copy_source "$work/src"

if setup_without_check "$work/src/b-enabled" "$work/src" -Dtests=enabled; then
    fail "-Dtests=enabled without Check: meson setup succeeded"
elif grep -q 'Dependency "check" not found' "$work/log"; then
    pass "-Dtests=enabled without Check: meson setup fails and names Check"
else
    fail "-Dtests=enabled without Check: meson setup failed without naming Check"
fi

if ! setup_without_check "$work/src/b-auto" "$work/src"; then
    fail "-Dtests=auto without Check: meson setup failed"
elif grep -q 'unit, numeric, data *: off: Check not found' "$work/log"; then
    pass "-Dtests=auto without Check: the summary says the Check suites are off"
else
    fail "-Dtests=auto without Check: the summary does not say the Check suites are off"
fi

# The README's form on a directory configured before with the tests off.
if "$meson" setup "$work/src/b-readme" "$work/src" -Dtests=disabled -Dexamples=false \
    -Dbench=false >"$work/log" 2>&1 &&
    (cd "$work/src" && "$meson" setup $([ -d b-readme/meson-private ] && echo --reconfigure) \
        b-readme -Dtests=enabled) >"$work/log" 2>&1 &&
    "$meson" test -C "$work/src/b-readme" --list >"$work/log" 2>&1 &&
    grep -q "unit / api_net$" "$work/log"; then
    pass "the README's setup form brings the Check tests back to a configured directory"
else
    fail "the README's setup form did not bring the Check tests back"
fi

copy_source "$work/missing"
sed -i "s/^  'api_net': \['unit', false\],$/&\n  'no_such_test': ['unit', false],/" \
    "$work/missing/tests/meson.build"
if ! grep -q no_such_test "$work/missing/tests/meson.build"; then
    echo "ok" >"$work/log"
    fail "could not add a test entry to a copy of tests/meson.build"
elif "$meson" setup "$work/missing/b" "$work/missing" -Dexamples=false -Dbench=false \
    >"$work/log" 2>&1; then
    fail "a listed test without its source: meson setup succeeded"
elif grep -q "no_such_test" "$work/log"; then
    pass "a listed test without its source stops meson setup, naming it"
else
    fail "a listed test without its source: meson setup failed without naming it"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
