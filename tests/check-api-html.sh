#!/bin/sh
# check-api-html.sh HTML_DIR HEADER... - fail unless the Doxygen reference
# built from the headers (-Ddocs=enabled) has its main page and documents,
# on each header's page, every public function and type the header
# declares: a declaration that Doxygen cannot parse (a macro it does not
# expand, a broken comment) drops out of the reference silently, and this
# catches it.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 HTML_DIR HEADER..." >&2
    exit 2
fi
html=$1
shift

if [ ! -s "$html/index.html" ]; then
    echo "$html/index.html is missing or empty" >&2
    exit 1
fi

names=$(mktemp)
trap 'rm -f "$names"' EXIT
total=0
for header in "$@"; do
    # Doxygen's page of a header: "_" doubled, "." as "_8".
    page=$(basename "$header" | sed 's/_/__/g; s/\./_8/g').html
    if [ ! -s "$html/$page" ]; then
        echo "$html/$page is missing or empty" >&2
        exit 1
    fi
    # public functions: "BPL_API <type> <name>(", possibly with '*' before the name
    sed -n 's/^BPL_API[^(]*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' "$header" >"$names"
    # opaque handles and callback types
    sed -n 's/^typedef struct \(bpl_[a-z_]*\) \1;.*/\1/p' "$header" >>"$names"
    sed -n 's/^typedef [^(]*(\*\(bpl_[a-z_]*\)).*/\1/p' "$header" >>"$names"

    count=$(wc -l <"$names")
    if [ "$count" -lt 20 ]; then
        echo "found only $count names in $header: the patterns no longer match it" >&2
        exit 1
    fi
    missing=0
    while IFS= read -r name; do
        if ! grep -q -- ">$name<" "$html/$page"; then
            echo "the reference lacks $name" >&2
            missing=$((missing + 1))
        fi
    done <"$names"
    if [ "$missing" -ne 0 ]; then
        echo "$missing of $count public names of $header are not in $html/$page" >&2
        exit 1
    fi
    total=$((total + count))
done
count=$total
echo "$count public names documented in $html"
