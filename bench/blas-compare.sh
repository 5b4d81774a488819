#!/bin/sh
# blas-compare.sh [bench-train options] - the same training under each BLAS.
#
# Builds bench-train against OpenBLAS and against BLIS, each in a build
# directory of its own ($BLAS_COMPARE_BUILD-openblas and -blis; default
# prefix build-blas), runs backprop and fa on 784-256-256-10, batch 128, one
# BLAS thread, with
#
#     OpenBLAS, the kernels it picks for this CPU (OPENBLAS_CORETYPE unset)
#     OpenBLAS, OPENBLAS_CORETYPE=SkylakeX  (if the CPU has AVX-512)
#     OpenBLAS, OPENBLAS_CORETYPE=Haswell   (if the CPU has AVX2 and FMA)
#     OpenBLAS, OPENBLAS_CORETYPE=Prescott  (the SSE3 kernels that Debian's
#                                            0.3.21 falls back to on CPUs it
#                                            does not recognise)
#     BLIS, the kernels it picks for this CPU
#     BLIS, BLIS_ARCH_TYPE=0 (skx) and =3 (haswell), where the CPU has them
#
# and prints one table.  Options go to every bench-train run, after the
# defaults (--repeats 5): e.g. --synthetic, --repeats 3, --data DIR.
# Debian: apt-get install libopenblas-dev libblis-dev.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
prefix=${BLAS_COMPARE_BUILD:-build-blas}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

build() {
    dir=$prefix-$1
    if [ ! -f "$dir/build.ninja" ] &&
        ! meson setup "$dir" -Dblas="$1" -Dtests=disabled -Dexamples=false \
            >"$logs/setup-$1.log" 2>&1; then
        echo "blas-compare: cannot configure -Dblas=$1:" >&2
        tail -n 3 "$logs/setup-$1.log" >&2
        return 1
    fi
    meson compile -C "$dir" bench/bench-train >"$logs/compile-$1.log" 2>&1 || {
        tail -n 20 "$logs/compile-$1.log" >&2
        return 1
    }
}

cpu_has() {
    grep -q "^flags.* $1\( \|$\)" /proc/cpuinfo
}

# run LABEL BACKEND CORETYPE [options]: one line of the table.
run() {
    label=$1 backend=$2 core=$3
    shift 3
    csv=$logs/$(echo "$label" | tr -c 'A-Za-z0-9\n' '_').csv
    if ! (
        # CORETYPE names OpenBLAS's kernel set, or BLIS's by its BLIS_ARCH_TYPE number
        if [ "$backend" = blis ]; then
            if [ -n "$core" ]; then export BLIS_ARCH_TYPE="$core"; else unset BLIS_ARCH_TYPE; fi
        elif [ -n "$core" ]; then
            export OPENBLAS_CORETYPE="$core"
        else
            unset OPENBLAS_CORETYPE
        fi
        exec "$prefix-$backend/bench/bench-train" --rules backprop,fa --nets 784-256-256-10 \
            --batches 128 --threads 1 --repeats 5 "$@" --csv "$csv"
    ) >"$csv.log" 2>&1; then
        printf '%-34s FAILED: %s\n' "$label" "$(tail -n 1 "$csv.log")"
        return 0
    fi
    kernels=$(sed -n -e 's/^library: .*core=\([^;) ]*\).*/\1/p' \
        -e 's/^library: .*kernels=\([^;) ]*\).*/\1/p' "$csv.log")
    sed -n "s/^library: */  $label: /p" "$csv.log" >>"$logs/info"
    awk -F, -v label="$label" -v kernels="$kernels" '
        $1 == "backprop" { bp = $7; bplo = $8; bphi = $9; gf = $12; sg = $13; bound = $14 }
        $1 == "fa"       { fa = $7; falo = $8; fahi = $9 }
        END {
            printf "%-34s %-12s %8.3f %6.3f-%-6.3f %8.3f %6.3f-%-6.3f %8.1f %8.1f %8.3f\n",
                label, kernels, bp, bplo, bphi, fa, falo, fahi, gf, sg, bound
        }' "$csv"
}

: >"$logs/info"
build openblas
have_blis=1
build blis || have_blis=0

echo "BLAS back-ends: backprop and fa, 784-256-256-10 tanh, batch 128, 1 BLAS thread"
echo "bench-train options: --rules backprop,fa --nets 784-256-256-10 --batches 128 --threads 1 --repeats 5 $*"
sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1
echo "environment: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)}" \
    "OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-(unset)} BLIS_ARCH_TYPE=${BLIS_ARCH_TYPE-(unset)};" \
    "each run below sets or unsets OPENBLAS_CORETYPE (OpenBLAS) or BLIS_ARCH_TYPE (BLIS)" \
    "as its label says and keeps OPENBLAS_L2_SIZE as given"
echo
printf '%-34s %-12s %8s %13s %8s %13s %8s %8s %8s\n' "BLAS" "kernels" "bp s/ep" "range" \
    "fa s/ep" "range" "GEMM GF" "sgemmGF" "bound s"
run "OpenBLAS, its own choice" openblas "" "$@"
if cpu_has avx512f; then
    run "OpenBLAS, CORETYPE=SkylakeX" openblas SkylakeX "$@"
else
    echo "OpenBLAS, CORETYPE=SkylakeX       skipped: this CPU has no AVX-512"
fi
if cpu_has avx2 && cpu_has fma; then
    run "OpenBLAS, CORETYPE=Haswell" openblas Haswell "$@"
else
    echo "OpenBLAS, CORETYPE=Haswell        skipped: this CPU has no AVX2/FMA"
fi
run "OpenBLAS, CORETYPE=Prescott" openblas Prescott "$@"
if [ "$have_blis" = 1 ]; then
    run "BLIS, its own choice" blis "" "$@"
    # BLIS 0.9 numbers its kernel sets: 0 is skx (AVX-512), 3 haswell (AVX2)
    if cpu_has avx512f; then run "BLIS, BLIS_ARCH_TYPE=0 (skx)" blis 0 "$@"; fi
    if cpu_has avx2 && cpu_has fma; then run "BLIS, BLIS_ARCH_TYPE=3 (haswell)" blis 3 "$@"; fi
else
    echo "BLIS                               skipped: -Dblas=blis does not build (libblis-dev?)"
fi
echo
echo "As each run's library reported its BLAS:"
cat "$logs/info"
