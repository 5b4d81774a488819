#!/bin/sh
# check-doc-code.sh DOC FILE... - fail when a program quoted in DOC has
# drifted from the file it quotes: for every FILE, DOC must hold a fenced
# code block equal to FILE from its first #include line (Python: its first
# import line) to its end (the file's header comment is left out of the
# quote).
set -eu
doc=$1
shift
status=0
for file in "$@"; do
    # through the environment: awk -v would expand the C escapes in the text
    want=$(sed -E -n '/^(#include|import) /,$p' "$file")
    export want
    # every fenced block of DOC compared with it, one by one
    found=$(awk '
        BEGIN { want = ENVIRON["want"] "\n" }
        /^```/ { if (inside) { if (block == want) hit = 1; inside = 0 }
                 else { inside = 1; block = "" }
                 next }
        inside { block = block $0 "\n" }
        END { print hit ? "yes" : "no" }' "$doc")
    if [ "$found" = yes ]; then
        echo "$doc quotes $file as it is"
    else
        echo "$doc has no code block equal to $file (from its first #include or import)" >&2
        status=1
    fi
done
exit $status
