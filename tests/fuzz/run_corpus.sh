#!/bin/sh
# run_corpus.sh TARGET CORPUS SECONDS ARTIFACT_PREFIX [libFuzzer options...]
#
# Replays the committed corpus CORPUS, then fuzzes for SECONDS.  Inputs the
# run finds go to a temporary directory, so the source tree is never
# written; a crash reproducer is kept as ARTIFACT_PREFIX<kind>-<sha1>.
set -eu
target=$1
corpus=$2
seconds=$3
prefix=$4
shift 4
work=$(mktemp -d "${TMPDIR:-/tmp}/bplcorpus-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
"$target" -max_total_time="$seconds" -timeout=20 -error_exitcode=1 -artifact_prefix="$prefix" \
    -print_final_stats=1 "$@" "$work" "$corpus"
