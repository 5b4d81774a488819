#!/bin/sh
# check-pkg-config.sh BUILD_DIR MPIEXEC [MPIEXEC_OPTION]... - a program of
# libbioplaus-mpi, which calls MPI itself, builds with nothing but
# `cc prog.c $(pkg-config --cflags --libs bioplaus-mpi)` (the uninstalled
# .pc files of BUILD_DIR) and runs on 2 processes.
set -eu
build=$1 mpiexec=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/prog.c" <<'C'
#include <bioplaus_mpi.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    bpl_mpi *mpi;
    int rc = bpl_mpi_create(&mpi, MPI_COMM_WORLD);
    if (rc == BPL_OK)
        rc = bpl_mpi_agree(mpi, BPL_OK);
    if (rc == BPL_OK && bpl_mpi_rank(mpi) == 0)
        printf("%d processes agree\n", bpl_mpi_size(mpi));
    bpl_mpi_destroy(mpi);
    MPI_Finalize();
    return rc == BPL_OK ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$build/meson-uninstalled"
flags=$(pkg-config --cflags --libs bioplaus-mpi)
echo "pkg-config --cflags --libs bioplaus-mpi: $flags"
# shellcheck disable=SC2086 # flags are words
${CC:-cc} "$work/prog.c" $flags -o "$work/prog"
LD_LIBRARY_PATH="$build/mpi:$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$mpiexec" "$@" -n 2 "$work/prog" | tee "$work/out"
grep -q "^2 processes agree$" "$work/out"
echo "pkg-config bioplaus-mpi: OK"
