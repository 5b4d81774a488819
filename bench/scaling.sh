#!/bin/sh
# scaling.sh BUILD_DIR [MPIEXEC_OPTION]... - the measurements of
# docs/scaling.md, with BUILD_DIR/tools/bioplaus-train (built with -Dmpi):
#
#   1. seconds per epoch of backprop on the MLP, LeNet and the wider conv
#      net, one process with 1 and with 2 threads against 2 processes with
#      1 thread each (mpiexec, --batch halved: the same steps);
#   2. the seconds of one training step at the per-process batches that 8
#      and 64 processes would have (the cost model's compute term);
#   3. the floats each step reduces (the net's trained parameters).
#
# The conv nets train on the first 10,000 images (--limit) to keep the run
# short; seconds per epoch are given per 55,000 images.  Prints what it ran
# with (OPENBLAS_CORETYPE, the BLAS and its kernels).  Data:
# $BIOPLAUS_MNIST_DIR.  Takes about 15 minutes on two cores.
set -eu
build=${1:?usage: scaling.sh BUILD_DIR [MPIEXEC_OPTION]...}
shift
train=$build/tools/bioplaus-train
mpiexec=${MPIEXEC:-mpiexec}
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
"$train" --version | sed -n 's/^/  /p'
"$mpiexec" --version 2>&1 | head -n 1 | sed 's/^/  /'

mlp="--hidden 256,256 --activation relu"
lenet="--arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --init he_normal"
wide="--arch conv:32:5:1:2,maxpool:2,conv:64:5:1:2,maxpool:2,dense:256 --activation relu --init he_normal"

# seconds NET_OPTIONS BATCH LIMIT THREADS [PROCESSES]: training seconds of
# one epoch of LIMIT images (0: all 55,000), scaled to 55,000.
seconds() {
    opts=$1 batch=$2 limit=$3 threads=$4 procs=${5:-1}
    lim=""
    [ "$limit" = 0 ] || lim="--limit $limit"
    # shellcheck disable=SC2086 # options are words on purpose
    if [ "$procs" = 1 ]; then
        line=$("$train" --rule backprop $opts --batch "$batch" --epochs 1 $lim \
               --threads "$threads" --quiet --val 5000)
    else
        line=$("$mpiexec" "$@" -n "$procs" "$train" --rule backprop $opts \
               --batch "$((batch / procs))" --epochs 1 $lim --threads "$threads" --quiet --val 5000)
    fi
    s=$(echo "$line" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
    awk -v s="$s" -v l="$limit" 'BEGIN { printf "%.2f", l == 0 ? s : s * 55000 / l }'
}

echo
echo "## 1. Seconds per epoch (55,000 images), backprop, Adam"
echo
echo "| net | batch | 1 process, 1 thread | 1 process, 2 threads | 2 processes x 1 thread |"
echo "|---|---|---|---|---|"
for spec in "MLP 784-256-256-10|$mlp|128|0" "LeNet-5|$lenet|64|10000" \
            "wider conv net|$wide|256|10000"; do
    name=${spec%%|*} rest=${spec#*|}
    opts=${rest%%|*} rest=${rest#*|}
    batch=${rest%%|*} limit=${rest#*|}
    a=$(seconds "$opts" "$batch" "$limit" 1)
    b=$(seconds "$opts" "$batch" "$limit" 2)
    c=$(seconds "$opts" "$batch" "$limit" 1 2 "$@")
    echo "| $name | $batch | $a | $b | $c |"
done

echo
echo "## 2. Seconds per step, 1 process, 1 thread, at the batches of 1, 8 and 64 processes"
echo
echo "| net | global batch | rows per process | seconds per step |"
echo "|---|---|---|---|"
for spec in "MLP 784-256-256-10|$mlp|128" "LeNet-5|$lenet|64" "wider conv net|$wide|256"; do
    name=${spec%%|*} rest=${spec#*|}
    opts=${rest%%|*} batch=${rest#*|}
    for p in 1 8 64; do
        rows=$((batch / p))
        [ "$rows" -ge 1 ] || rows=1
        limit=$((rows * 200)) # 200 steps
        s=$(seconds "$opts" "$rows" "$limit" 1)
        awk -v n="$name" -v b="$batch" -v r="$rows" -v s="$s" \
            'BEGIN { printf "| %s | %d | %d | %.6f |\n", n, b, r, s / (55000 / r) }'
    done
done

echo
echo "## 3. Floats reduced per step (the trained parameters)"
echo
BIOPLAUS_LIBRARY=$build/lib/libbioplaus.so.1 PYTHONPATH=$(dirname "$0")/../python python3 - <<'PY'
import bioplaus

def count(name, build):
    net = bioplaus.Net(784, seed=1)
    net.input_shape = (1, 28, 28)
    build(net)
    net.add_dense(10, "softmax")
    n = net.param_count
    print("| %s | %d floats | %.2f MB per step |" % (name, n, 4 * n / 1e6))

print("| net | trained parameters | bytes reduced |")
print("|---|---|---|")
count("MLP 784-256-256-10", lambda n: (n.add_dense(256, "relu"), n.add_dense(256, "relu")))
count("LeNet-5", lambda n: (n.add_conv2d(6, 5, 1, 2), n.add_maxpool2d(2), n.add_conv2d(16, 5),
                            n.add_maxpool2d(2), n.add_conv2d(120, 5), n.add_dense(84, "relu")))
count("wider conv net", lambda n: (n.add_conv2d(32, 5, 1, 2), n.add_maxpool2d(2),
                                   n.add_conv2d(64, 5, 1, 2), n.add_maxpool2d(2),
                                   n.add_dense(256, "relu")))
PY
