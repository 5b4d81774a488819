#!/bin/sh
# get-mnist.sh [DIR] - download the four MNIST files into DIR and check their
# SHA-256.  DIR defaults to $BIOPLAUS_MNIST_DIR if set, else ./data/mnist.
# Files already present with the right checksum are kept.  Exit status: 0
# when all four files are in place, 1 otherwise (with instructions).
set -eu

dir=${1:-${BIOPLAUS_MNIST_DIR:-./data/mnist}}
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
mirrors="https://ossci-datasets.s3.amazonaws.com/mnist/
https://storage.googleapis.com/cvdf-datasets/mnist/"
partial=""
failed_names=""

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

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 2 --connect-timeout 20 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -O "$2" "$1"
    else
        echo "get-mnist.sh: neither curl nor wget is installed" >&2
        return 1
    fi
}

# Download under a temporary name, so that an interrupted or corrupt download
# never takes the real name.
download() {
    name=$1
    partial="$dir/$name.tmp.$$"
    for mirror in $mirrors; do
        echo "downloading $mirror$name"
        if fetch "$mirror$name" "$partial"; then
            if is_good "$partial" "$name"; then
                mv -f "$partial" "$dir/$name"
                partial=""
                return 0
            fi
            echo "get-mnist.sh: $name from $mirror has the wrong SHA-256;" \
                "download deleted" >&2
        fi
        rm -f "$partial"
    done
    partial=""
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
        echo "then run examples/mnist --data $dir, or set BIOPLAUS_MNIST_DIR=$dir."
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
    download "$name" || failed_names="$failed_names $name"
done
if [ -n "$failed_names" ]; then
    instructions
fi
echo "MNIST is in $dir: all four files downloaded and checked."
