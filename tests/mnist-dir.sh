# mnist-dir.sh - sourced by the shell tests that need MNIST: sets `data` to
# an absolute MNIST directory, looked up as the C tests do
# ($BIOPLAUS_MNIST_DIR, else data/mnist in the source tree, else the shared
# data directory next to it).  Without one it exits: 77 (skipped) normally,
# 1 under CI=true, where missing data is a failure.  $mnist_user says what
# needs it (POSIX `.` passes no arguments).
data=${BIOPLAUS_MNIST_DIR:-}
if [ -z "$data" ] && [ -n "${BPL_SOURCE_ROOT:-}" ]; then
    for candidate in "$BPL_SOURCE_ROOT/data/mnist" "$BPL_SOURCE_ROOT/../shared/data/mnist"; do
        if [ -f "$candidate/train-images-idx3-ubyte.gz" ]; then
            data=$candidate
            break
        fi
    done
fi
if [ -z "$data" ] || [ ! -d "$data" ]; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL: CI=true but BIOPLAUS_MNIST_DIR does not name an MNIST directory" >&2
        exit 1
    fi
    echo "SKIP: ${mnist_user:-this test} needs BIOPLAUS_MNIST_DIR (examples/get-mnist.sh)"
    exit 77
fi
case $data in /*) ;; *) data=$(pwd)/$data ;; esac
