#!/bin/sh
# get-mnist.sh [DIR] - download the four MNIST files into DIR and check their
# SHA-256.  DIR defaults to $BIOPLAUS_MNIST_DIR if set, else ./data/mnist.
# Files already present with the right checksum are kept.  Exit status: 0
# when all four files are in place, 1 otherwise (with instructions).
#
# Each mirror is first asked for a file's headers, without retries: a mirror
# whose host cannot be resolved or reached is left out at once (offline, the
# script fails in about a second), and only downloads from a mirror that
# answered are retried.  Off a terminal it prints one line per file and no
# progress meters.
set -eu

dir=${1:-${BIOPLAUS_MNIST_DIR:-./data/mnist}}
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
mirrors="https://ossci-datasets.s3.amazonaws.com/mnist/
https://storage.googleapis.com/cvdf-datasets/mnist/"
partial=""
failed_names=""
dead_mirrors=""
# Progress meters only for a person watching; logs get one line per file.
if [ -t 2 ]; then interactive=1; else interactive=0; fi

# The SHA-256 of the original files, as published with them.
expected_sum() {
    case $1 in
    train-images-idx3-ubyte.gz)
        echo 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 ;;
    train-labels-idx1-ubyte.gz)
        echo 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c ;;
    t10k-images-idx3-ubyte.gz)
        echo 8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6 ;;
    t10k-labels-idx1-ubyte.gz)
        echo f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6 ;;
    esac
}

# sha256sum where it exists (GNU), shasum elsewhere (macOS, BSD).
sum_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    else
        shasum -a 256 "$1" | cut -d ' ' -f 1
    fi
}

has_checksum_tool() {
    command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1
}

is_good() {
    [ -f "$1" ] && [ "$(sum_of "$1")" = "$(expected_sum "$2")" ]
}

downloader() {
    if command -v curl >/dev/null 2>&1; then
        echo curl
    elif command -v wget >/dev/null 2>&1; then
        echo wget
    fi
}

# probe URL: can the mirror be reached at all?  One request for the headers,
# no retries (curl retries a failed name lookup as if it were a timeout, and
# offline that cost half a minute).  Prints why not and returns 1 when the
# host cannot be resolved, connected to, or does not answer in time.
probe() {
    case $(downloader) in
    curl)
        set +e
        why=$(curl -sS -I -o /dev/null --connect-timeout 10 --max-time 30 "$1" 2>&1)
        rc=$?
        set -e
        case $rc in
        5 | 6 | 7 | 28) echo "$why" | sed 's/^curl: ([0-9]*) //'; return 1 ;;
        esac ;;
    wget)
        set +e
        wget -q --spider --tries=1 --timeout=10 "$1" 2>/dev/null
        rc=$?
        set -e
        # 4: network failure (name lookup, connection, timeout)
        if [ "$rc" = 4 ]; then echo "network failure"; return 1; fi ;;
    esac
    return 0
}

# fetch URL FILE: the download itself, retried on transient errors (the host
# has answered the probe).
fetch() {
    case $(downloader) in
    curl)
        if [ "$interactive" = 1 ]; then progress=--progress-bar; else progress=-sS; fi
        curl -fL $progress --retry 2 --connect-timeout 15 -o "$2" "$1" ;;
    wget)
        if [ "$interactive" = 1 ]; then quiet=""; else quiet=-q; fi
        wget $quiet --tries=3 --timeout=30 -O "$2" "$1" ;;
    esac
}

# Download under a temporary name, so that an interrupted or corrupt download
# never takes the real name.
download() {
    name=$1
    partial="$dir/$name.tmp.$$"
    for mirror in $mirrors; do
        case " $dead_mirrors " in *" $mirror "*) continue ;; esac
        host=$(echo "$mirror" | sed 's|^[a-z]*://||; s|/.*||')
        if ! why=$(probe "$mirror$name"); then
            echo "get-mnist.sh: skipping the mirror $host: $why" >&2
            dead_mirrors="$dead_mirrors $mirror"
            continue
        fi
        [ "$interactive" = 0 ] || echo "downloading $mirror$name"
        if fetch "$mirror$name" "$partial"; then
            if is_good "$partial" "$name"; then
                mv -f "$partial" "$dir/$name"
                partial=""
                echo "$name: downloaded from $host, SHA-256 checked"
                return 0
            fi
            echo "get-mnist.sh: $name from $host has the wrong SHA-256;" \
                "download deleted" >&2
        else
            echo "get-mnist.sh: $name: download from $host failed" >&2
        fi
        rm -f "$partial"
    done
    partial=""
    return 1
}

# Whether any mirror is left to try.
mirror_left() {
    for mirror in $mirrors; do
        case " $dead_mirrors " in *" $mirror "*) ;; *) return 0 ;; esac
    done
    return 1
}

instructions() {
    {
        echo
        echo "get-mnist.sh: could not get every MNIST file.${failed_names:+ Still missing:$failed_names}"
        echo "Put these four files, from any MNIST mirror, into the directory $dir"
        echo "(their SHA-256 must match; check with sha256sum):"
        for name in $files; do
            echo "  $(expected_sum "$name")  $name"
        done
        echo "then train with build/tools/bioplaus-train --data $dir"
        echo "(or set BIOPLAUS_MNIST_DIR=$dir)."
    } >&2
    exit 1
}

cleanup() {
    if [ -n "$partial" ]; then
        rm -f "$partial"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has_checksum_tool || {
    echo "get-mnist.sh: sha256sum (or shasum) is needed to check the files" >&2
    instructions
}
mkdir -p "$dir" || instructions
# Absolute, so that the hints work from any directory.
dir=$(cd "$dir" && pwd)
[ -n "$(downloader)" ] || {
    echo "get-mnist.sh: neither curl nor wget is installed" >&2
    instructions
}

missing=""
for name in $files; do
    if is_good "$dir/$name" "$name"; then
        continue
    fi
    if [ -f "$dir/$name" ]; then
        echo "$dir/$name has the wrong SHA-256; downloading it again"
    fi
    missing="$missing $name"
done
if [ -z "$missing" ]; then
    echo "MNIST is already in $dir: all four files have the right SHA-256."
    exit 0
fi

for name in $missing; do
    if mirror_left; then
        download "$name" || failed_names="$failed_names $name"
    else
        failed_names="$failed_names $name"
    fi
done
if [ -n "$failed_names" ]; then
    instructions
fi
echo "MNIST is in $dir: all four files downloaded and checked."
