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
mpi_options="$*" # words, e.g. --oversubscribe
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
        line=$("$mpiexec" $mpi_options -n "$procs" "$train" --rule backprop $opts \
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
    c=$(seconds "$opts" "$batch" "$limit" 1 2)
    echo "| $name | $batch | $a | $b | $c |"
done

echo
echo "## 2. Seconds per step, 1 process, 1 thread, at the batches of 1, 8 and 64 processes"
echo
echo "| net | global batch | rows per process | seconds per step |"
echo "|---|---|---|---|"
steps=""
for spec in "MLP 784-256-256-10|$mlp|128" "LeNet-5|$lenet|64" "wider conv net|$wide|256"; do
    name=${spec%%|*} rest=${spec#*|}
    opts=${rest%%|*} batch=${rest#*|}
    for p in 1 8 64; do
        rows=$((batch / p))
        [ "$rows" -ge 1 ] || rows=1
        limit=$((rows * 200)) # 200 steps
        s=$(seconds "$opts" "$rows" "$limit" 1)
        t=$(awk -v r="$rows" -v s="$s" 'BEGIN { printf "%.6f", s / (55000 / r) }')
        steps="$steps$name|$batch|$p|$t
"
        echo "| $name | $batch | $rows | $t |"
    done
done

echo
echo "## 3. Floats reduced per step (the trained parameters)"
echo
floats=$(BIOPLAUS_LIBRARY=$build/lib/libbioplaus.so.1 PYTHONPATH=$(dirname "$0")/../python python3 - <<'PY'
import bioplaus

def count(name, build):
    net = bioplaus.Net(784, seed=1)
    net.input_shape = (1, 28, 28)
    build(net)
    net.add_dense(10, "softmax")
    print("%s|%d" % (name, net.param_count))

count("MLP 784-256-256-10", lambda n: (n.add_dense(256, "relu"), n.add_dense(256, "relu")))
count("LeNet-5", lambda n: (n.add_conv2d(6, 5, 1, 2), n.add_maxpool2d(2), n.add_conv2d(16, 5),
                            n.add_maxpool2d(2), n.add_conv2d(120, 5), n.add_dense(84, "relu")))
count("wider conv net", lambda n: (n.add_conv2d(32, 5, 1, 2), n.add_maxpool2d(2),
                                   n.add_conv2d(64, 5, 1, 2), n.add_maxpool2d(2),
                                   n.add_dense(256, "relu")))
PY
)
echo "| net | trained parameters | MB reduced per step |"
echo "|---|---|---|"
echo "$floats" | awk -F'|' '{ printf "| %s | %d | %.2f |\n", $1, $2, 4 * $2 / 1e6 }'

# 4. The model: a step on P processes takes the compute of B/P rows plus an
# allreduce of n floats, 2 (P-1)/P 4n/beta + 2 log2(P) alpha (a ring or
# Rabenseifner allreduce of a large message: Thakur, Rabenseifner & Gropp
# 2005); efficiency = t(B) / (P (t(B/P) + allreduce)).
echo
echo "## 4. Projected efficiency of data-parallel training (the model of docs/scaling.md)"
echo
echo "| net | batch | processes | compute per step (s) | allreduce 10 Gbit/s (s) | efficiency | allreduce 100 Gbit/s (s) | efficiency |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s' "$steps" | while IFS='|' read -r name batch p t; do
    [ "$p" = 1 ] && continue
    n=$(echo "$floats" | awk -F'|' -v n="$name" '$1 == n { print $2 }')
    t1=$(printf '%s' "$steps" | awk -F'|' -v n="$name" '$1 == n && $3 == 1 { print $4 }')
    awk -v name="$name" -v b="$batch" -v p="$p" -v t="$t" -v t1="$t1" -v n="$n" 'BEGIN {
        bytes = 4 * n
        # 10 Gbit/s Ethernet: 1.25e9 B/s, 20 us; 100 Gbit/s InfiniBand: 12.5e9 B/s, 1.5 us
        a10 = 2 * (p - 1) / p * bytes / 1.25e9 + 2 * log(p) / log(2) * 20e-6
        a100 = 2 * (p - 1) / p * bytes / 12.5e9 + 2 * log(p) / log(2) * 1.5e-6
        printf "| %s | %d | %d | %.6f | %.6f | %.2f | %.6f | %.2f |\n", name, b, p, t,
               a10, t1 / (p * (t + a10)), a100, t1 / (p * (t + a100))
    }'
done
