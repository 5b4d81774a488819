# cli-check.sh - helpers of the command-line tests (test-train.sh,
# test-sweep.sh, and the bench scripts' tests in tests/), sourced with the
# variable `program` set to the command under test (for run).  Gives $work
# (a temporary directory removed at exit), fail, run and documents_options.
# shellcheck shell=sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fail MESSAGE: the test fails, showing the last run's output.
fail() {
    echo "FAIL: $*" >&2
    for stream in out err; do
        if [ -s "$work/$stream" ]; then
            echo "--- std$stream:" >&2
            cat "$work/$stream" >&2
        fi
    done
    exit 1
}

# run STATUS ARGS...: run the program, expect exit STATUS, keep stdout and
# stderr in $work/out and $work/err.
run() {
    want=$1
    shift
    status=0
    "$program" "$@" >"$work/out" 2>"$work/err" || status=$?
    [ "$status" -eq "$want" ] ||
        fail "$(basename "$program") $* exited $status, expected $want"
}

# documents_options MANPAGE TEXT-FILE...: every --option the text shows is
# in the manual page too (troff writes - as \-).
documents_options() {
    manpage=$1
    shift
    options=$(cat "$@" | grep -o -e '--[a-z][a-z-]*' | sort -u)
    [ -n "$options" ] || fail "the usage shows no option"
    for option in $options; do
        grep -q -F -e "$(echo "$option" | sed 's/-/\\-/g')" "$manpage" ||
            fail "the manual page does not document $option"
    done
}
