#!/bin/sh
# test-get-mnist.sh SCRIPT - check examples/get-mnist.sh without the network:
# a fake curl first on PATH stands for the mirrors.
#
#  - offline (every host unresolvable): exit 1 within seconds, one probe per
#    mirror and no retries, a short output that names build/tools/bioplaus-train;
#  - a mirror serving a corrupt file: the download is deleted, exit 1;
#  - with the MNIST files ($BIOPLAUS_MNIST_DIR, or data/mnist): a download
#    from a mirror that serves them prints one line per file and no progress
#    meter, and a directory that already holds them needs no download at all.
#
# The last two need the files: without them the test is skipped (77) after
# the first two have passed, except under CI=true, where it fails.
set -eu
script=$1
case $script in /*) ;; *) script=$(pwd)/$script ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
# FAKE_CURL: offline (name lookups fail), garbage (every file is wrong),
# serve (files copied from $FAKE_SRC) or forbidden (no call expected).
cat >"$work/bin/curl" <<'EOF'
#!/bin/sh
echo "curl $*" >>"$FAKE_LOG"
out="" url="" head=0
while [ $# -gt 0 ]; do
    case $1 in
    -o) out=$2; shift ;;
    -I) head=1 ;;
    -*) ;;
    *) url=$1 ;;
    esac
    shift
done
host=$(echo "$url" | sed 's|^[a-z]*://||; s|/.*||')
case $FAKE_CURL in
offline) echo "curl: (6) Could not resolve host: $host" >&2; exit 6 ;;
forbidden) exit 99 ;;
esac
[ "$head" = 0 ] || exit 0
case $FAKE_CURL in
garbage) echo "not MNIST" >"$out" ;;
serve) cp "$FAKE_SRC/${url##*/}" "$out" ;;
esac
EOF
chmod +x "$work/bin/curl"
export FAKE_LOG="$work/curl.log"

fail() { echo "FAIL: $*" >&2; exit 1; }

# run MODE DIR: the script with the fake curl, output in $work/out, exit
# status in $status, curl calls in $calls, seconds taken in $seconds.
run() {
    : >"$FAKE_LOG"
    start=$(date +%s)
    status=0
    FAKE_CURL=$1 PATH="$work/bin:$PATH" sh "$script" "$2" >"$work/out" 2>&1 || status=$?
    seconds=$(($(date +%s) - start))
    calls=$(wc -l <"$FAKE_LOG" | tr -d ' ')
    lines=$(wc -l <"$work/out" | tr -d ' ')
    echo "--- get-mnist.sh with a fake curl ($1): exit $status, $lines lines, $calls curl calls, ${seconds}s"
    cat "$work/out"
}

leftovers() {
    find "$1" -name '*.tmp.*' | grep -q . && fail "temporary files left in $1"
    return 0
}

# Offline: one probe per mirror, then the instructions.
run offline "$work/offline"
[ "$status" = 1 ] || fail "offline: exit $status, expected 1"
[ "$calls" -le 2 ] || fail "offline: $calls curl calls, expected one probe per mirror"
[ "$seconds" -le 5 ] || fail "offline: took ${seconds}s"
[ "$lines" -le 15 ] || fail "offline: $lines lines of output, expected at most 15"
grep -q "build/tools/bioplaus-train --data $work/offline" "$work/out" ||
    fail "offline: the hint does not name build/tools/bioplaus-train and the directory"
grep -q 'Could not resolve host' "$work/out" || fail "offline: does not say why"
leftovers "$work/offline"

# A mirror that serves something else: deleted, not kept under the real name.
run garbage "$work/garbage"
[ "$status" = 1 ] || fail "garbage: exit $status, expected 1"
grep -q 'wrong SHA-256; download deleted' "$work/out" || fail "garbage: no checksum message"
[ -z "$(ls "$work/garbage")" ] || fail "garbage: files kept: $(ls "$work/garbage")"

# shellcheck source=tests/mnist-dir.sh # sets data from mnist_user
mnist_user="the download checks" && . "$(dirname "$0")/../tests/mnist-dir.sh"
export FAKE_SRC="$data"

# A mirror that has the files: one line per file, no progress meter.
run serve "$work/served"
[ "$status" = 0 ] || fail "serve: exit $status, expected 0"
[ "$lines" = 5 ] || fail "serve: $lines lines, expected one per file and a last one"
[ "$(grep -c ': downloaded from ossci-datasets.s3.amazonaws.com, SHA-256 checked$' "$work/out")" = 4 ] ||
    fail "serve: not one line per downloaded file"
for name in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
            t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    cmp -s "$data/$name" "$work/served/$name" || fail "serve: $name not in place"
done
leftovers "$work/served"

# Files already there: no network at all.
run forbidden "$work/served"
[ "$status" = 0 ] || fail "present: exit $status, expected 0"
[ "$calls" = 0 ] || fail "present: curl was called"
grep -q '^MNIST is already in ' "$work/out" || fail "present: no message"

# Nor when the directory holds links to the files (as a shared copy would).
mkdir "$work/present"
ln -s "$data"/*-ubyte.gz "$work/present/"
run forbidden "$work/present"
[ "$status" = 0 ] || fail "present: exit $status, expected 0"
[ "$calls" = 0 ] || fail "present: curl was called"
grep -q '^MNIST is already in ' "$work/out" || fail "present: no message"
echo "ok"
