#!/bin/sh
# check.sh [--update] SOURCE-DIR BUILD-DIR [LIBRARY...] - the ABI guard.
#
# Compares the ABI of the shared libraries built in BUILD-DIR with the
# baselines committed in SOURCE-DIR/abi:
#   NAME.abi    abidw's description of the exported functions and of the
#               types of the installed headers they reach (from the debug
#               info: without it there would be symbol names only);
#   NAME.enums  the value of every enumerator of the library's installed
#               headers.  abidiff never sees these: the functions take enum
#               values as int, yet a program has them compiled in.
# LIBRARY is libbioplaus or libbioplaus-mpi; without one, both (the second
# only when the build has it).
#
# The verdict, for each library:
#   - nothing changed: pass;
#   - only additions (functions, enumerators), or changes that NAME.suppr
#     declares compatible by design: pass, and list them;
#   - anything else (a function removed, a type changed, an enumerator
#     removed or renumbered, a new soname): fail, unless the build has both
#     a new soname and a new symbol version node (no exported symbol keeps
#     a version of the baseline).  That is an ABI break done as
#     docs/releasing.md says: pass, and say that the release must commit
#     new baselines.
# abidiff's own verdict is not enough: it flags as incompatible (status
# bit 8) only removed functions, variables and symbols; a changed parameter
# type or struct layout sets bit 4 alone, as additions do.  So the counts
# of removed and changed functions and variables in its summary decide.
#
# --update writes the baselines from BUILD-DIR instead (every library must
# be built, with debug info).
#
# Exit status: 0 pass, 1 fail, 2 the check could not run (usage, tools,
# no debug info), 77 nothing could be compared (another architecture or
# MPI than the baseline's; meson counts it as skipped).
set -eu
# One collation for sort and comm, whatever the caller's locale.
LC_ALL=C
export LC_ALL

usage() {
    echo "usage: $0 [--update] SOURCE-DIR BUILD-DIR [libbioplaus] [libbioplaus-mpi]" >&2
    exit 2
}

update=false
if [ "${1-}" = --update ]; then
    update=true
    shift
fi
[ $# -ge 2 ] || usage
# Absolute, since the headers are included by path from elsewhere.
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
shift 2
explicit=true
if [ $# -eq 0 ]; then
    explicit=false
    set -- libbioplaus libbioplaus-mpi
fi
for name in "$@"; do
    case $name in
        libbioplaus | libbioplaus-mpi) ;;
        *) usage ;;
    esac
done

for tool in abidw abidiff readelf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found (Debian: abigail-tools for abidw and abidiff, binutils for readelf)" >&2
        exit 2
    fi
done
# CC may be a command with arguments (as make's CC), so it is split on
# spaces where it is run.
cc_cmd=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/bioplaus-abi.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A signal (meson's timeout, a closed pipe) ends the script through exit,
# so that the temporary tree goes too.
trap 'exit 2' HUP INT PIPE TERM
mkdir -p "$build/abi"

# The same options for the baselines and for the build checked, so that
# only the ABI can differ:
#   --headers-dir, --drop-private-types: a type not defined in an installed
#       header (struct bpl_net's members, in lib/bpl_internal.h) is kept as
#       a declaration only, so the library's internals may change freely;
#   --no-corpus-path, --no-comp-dir-path, --short-locs: no path of the
#       build or source tree, so the file is the same on every machine;
#   --type-id-style hash: type ids from the types, not from their order,
#       so that a new baseline differs from the old one only where the ABI
#       does;
#   --drop-undefined-syms: what the library imports is not its ABI.
abidw_opts="--drop-private-types --no-corpus-path --no-comp-dir-path --short-locs
    --type-id-style hash --drop-undefined-syms"

# The XML's soname, symbol version nodes (one a line), architecture, and
# the MPI it links (libmpi for Open MPI, libmpich for MPICH).
xml_soname() { sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$1"; }
xml_nodes() { sed -n "s/^ *<elf-symbol [^>]* version='\([^']*\)'.*/\1/p" "$1" | sort -u; }
xml_arch() { sed -n "s/^<abi-corpus [^>]*architecture='\([^']*\)'.*/\1/p" "$1"; }
xml_mpi() { sed -n "s/^ *<dependency name='\(libmpi[a-z]*\)\.so[^']*'.*/\1/p" "$1"; }

# enumerators HEADER...: "ENUM ENUMERATOR" for each enumerator of the
# headers' enum blocks (an "enum NAME {" line to a line starting with "}",
# the project's style), one a line.
enumerators() {
    awk '
        /^(typedef[ \t]+)?enum([ \t]+[A-Za-z_][A-Za-z0-9_]*)?[ \t]*\{/ {
            type = $0
            sub(/^(typedef[ \t]+)?enum[ \t]*/, "", type)
            sub(/[ \t]*\{.*/, "", type)
            if (type == "") type = "(anonymous)"
            inside = 1
            found = 0
            next
        }
        inside && /^[ \t]*}/ {
            if (!found) { print "enum " type " in " FILENAME ": no enumerator read" > "/dev/stderr"; exit 1 }
            inside = 0
            next
        }
        inside && /^[ \t]*[A-Z][A-Z0-9_]*[ \t]*(=|,|$)/ {
            name = $0
            sub(/^[ \t]*/, "", name)
            sub(/[^A-Z0-9_].*/, "", name)
            print type, name
            found = 1
        }' "$@"
}

# enum_values OUT HEADER...: "ENUM ENUMERATOR VALUE" lines, sorted, as the
# compiler evaluates them (implicit values, expressions such as 1 << 3).
enum_values() {
    out=$1
    shift
    enumerators "$@" >"$work/enumerators"
    {
        echo '#include <stdio.h>'
        for header in "$@"; do
            printf '#include "%s"\n' "$header"
        done
        echo 'int main(void)'
        echo '{'
        while read -r enum_type enumerator; do
            printf '    printf("%%s %%s %%lld\\n", "%s", "%s", (long long)%s);\n' \
                "$enum_type" "$enumerator" "$enumerator"
        done <"$work/enumerators"
        echo '    return 0;'
        echo '}'
    } >"$work/enums.c"
    # shellcheck disable=SC2086 # CC is a command, possibly with arguments
    if ! $cc_cmd -o "$work/enums" "$work/enums.c" >"$work/enums.log" 2>&1; then
        echo "the program printing the enumerators did not compile:" >&2
        cat "$work/enums.log" >&2
        return 2
    fi
    "$work/enums" | sort -k1,1 -k3,3n -k2,2 >"$out"
}

# enum_diff BASE CURRENT: a "removed: ...", "changed: ..." or "added: ..."
# line for each enumerator that differs.
enum_diff() {
    awk 'NR == FNR { base_type[$2] = $1; base_value[$2] = $3; next }
         { type[$2] = $1; value[$2] = $3 }
         END {
             for (n in base_type)
                 if (!(n in type))
                     print "removed: " n " = " base_value[n] " (enum " base_type[n] ")"
                 else if (base_type[n] != type[n])
                     print "changed: " n " = " base_value[n] " (enum " base_type[n] ") -> " \
                         value[n] " (enum " type[n] ")"
                 else if (base_value[n] != value[n])
                     print "changed: " n " = " base_value[n] " -> " value[n] " (enum " type[n] ")"
             for (n in type)
                 if (!(n in base_type))
                     print "added: " n " = " value[n] " (enum " type[n] ")"
         }' "$1" "$2" | sort
}

indent() { sed 's/^/    /' "$@"; }
# The lines of standard input as one line of words.
words() { tr '\n' ' ' | sed 's/ $//'; }

failed=0
compared=0
for name in "$@"; do
    case $name in
        libbioplaus)
            library=$build/lib/libbioplaus.so
            headers="$src/include/bioplaus.h $src/include/bioplaus_rule.h"
            enum_headers=$headers
            map=lib/bioplaus.map
            ;;
        libbioplaus-mpi)
            library=$build/mpi/libbioplaus-mpi.so
            headers="$src/include/bioplaus.h $src/include/bioplaus_rule.h $src/mpi/bioplaus_mpi.h"
            # Its enums are libbioplaus's; one of its own would need mpi.h,
            # hence MPI's compiler flags, to be evaluated here.
            enum_headers=""
            if [ -n "$(enumerators "$src/mpi/bioplaus_mpi.h")" ]; then
                echo "$name: mpi/bioplaus_mpi.h declares enumerators, which this check does not read: teach it" >&2
                exit 2
            fi
            map=mpi/bioplaus-mpi.map
            ;;
    esac
    echo "== $name"
    if [ ! -e "$library" ]; then
        if [ "$name" = libbioplaus-mpi ] && ! $explicit && ! $update; then
            echo "$name: not built (this build has no MPI): not checked"
            continue
        fi
        echo "$name: not built: $library does not exist" >&2
        exit 2
    fi
    case $(readelf -S -W "$library") in
        *.debug_info* | *.zdebug_info*) ;;
        *)
            echo "$name: $library has no debug info (.debug_info), so its ABI would be symbol names only;" >&2
            echo "    configure the build with -Dbuildtype=debugoptimized (or debug)" >&2
            exit 2
            ;;
    esac

    # The installed headers, and only they, in a directory of their own:
    # mpi/ also holds the private mpi_internal.h.
    mkdir "$work/$name-headers"
    # shellcheck disable=SC2086 # a list of paths without spaces
    cp $headers "$work/$name-headers/"
    current=$build/abi/$name.abi
    # shellcheck disable=SC2086 # a list of options
    abidw $abidw_opts --headers-dir "$work/$name-headers" --out-file "$current" "$library"
    current_enums=""
    if [ -n "$enum_headers" ]; then
        current_enums=$build/abi/$name.enums
        # shellcheck disable=SC2086 # a list of paths without spaces
        enum_values "$current_enums" $enum_headers
    fi

    baseline=$src/abi/$name.abi
    baseline_enums=$src/abi/$name.enums
    if $update; then
        cp "$current" "$baseline"
        echo "$name: wrote abi/$name.abi (soname $(xml_soname "$current"), version node $(xml_nodes "$current" | words))"
        if [ -n "$current_enums" ]; then
            cp "$current_enums" "$baseline_enums"
            echo "$name: wrote abi/$name.enums ($(wc -l <"$current_enums") enumerators)"
        fi
        continue
    fi
    if [ ! -e "$baseline" ]; then
        echo "$name: FAIL: no baseline abi/$name.abi (abi/check.sh --update writes it)"
        failed=1
        continue
    fi

    # Other architectures and MPIs have other ABIs (sizes, MPI_Comm's type):
    # the baselines describe the one they were taken on.
    if [ "$(xml_arch "$baseline")" != "$(xml_arch "$current")" ]; then
        echo "$name: not compared: the baseline is of $(xml_arch "$baseline"), this build of $(xml_arch "$current")"
        continue
    fi
    if [ "$(xml_mpi "$baseline")" != "$(xml_mpi "$current")" ]; then
        echo "$name: not compared: the baseline links $(xml_mpi "$baseline"), this build $(xml_mpi "$current") (MPI_Comm differs between MPIs)"
        continue
    fi
    compared=$((compared + 1))

    # The verdict, with the changes NAME.suppr accepts left out.
    suppr=$src/abi/$name.suppr
    status=0
    if [ -e "$suppr" ]; then
        abidiff --suppressions "$suppr" "$baseline" "$current" >"$work/report" 2>&1 || status=$?
    else
        abidiff "$baseline" "$current" >"$work/report" 2>&1 || status=$?
    fi
    if [ $((status & 3)) -ne 0 ]; then
        echo "$name: abidiff failed (status $status):"
        indent "$work/report"
        failed=1
        continue
    fi
    incompatible=false
    if [ $((status & 8)) -ne 0 ] || grep -Eq 'summary: [1-9]|, [1-9][0-9]* Changed' "$work/report"; then
        incompatible=true
    fi
    changed=false
    if [ "$status" -ne 0 ]; then
        changed=true
    fi
    # What the suppressions accepted, shown rather than hidden.
    accepted=false
    if [ -e "$suppr" ] && ! abidiff "$baseline" "$current" >"$work/unsuppressed" 2>&1 &&
        ! cmp -s "$work/report" "$work/unsuppressed"; then
        accepted=true
    fi
    : >"$work/enum-diff"
    if [ -n "$current_enums" ]; then
        if [ ! -e "$baseline_enums" ]; then
            echo "$name: FAIL: no baseline abi/$name.enums (abi/check.sh --update writes it)"
            failed=1
            continue
        fi
        enum_diff "$baseline_enums" "$current_enums" >"$work/enum-diff"
        if grep -Eq '^(removed|changed):' "$work/enum-diff"; then
            incompatible=true
        fi
        if [ -s "$work/enum-diff" ]; then
            changed=true
        fi
    fi

    if [ "$status" -ne 0 ]; then
        echo "abidiff abi/$name.abi $current:"
        indent "$work/report"
    fi
    if [ -s "$work/enum-diff" ]; then
        echo "enumerators (abi/$name.enums):"
        indent "$work/enum-diff"
    fi
    if $accepted; then
        echo "changes compatible by design (abi/$name.suppr), as abidiff reports them without it:"
        indent "$work/unsuppressed"
    fi

    if ! $incompatible; then
        if $changed; then
            echo "$name: OK: compatible additions only (listed above)"
        elif $accepted; then
            echo "$name: OK: only changes abi/$name.suppr declares compatible (listed above)"
        else
            echo "$name: OK: no ABI change"
        fi
        continue
    fi
    old_soname=$(xml_soname "$baseline")
    new_soname=$(xml_soname "$current")
    xml_nodes "$baseline" >"$work/old-nodes"
    xml_nodes "$current" >"$work/new-nodes"
    old_nodes=$(words <"$work/old-nodes")
    new_nodes=$(words <"$work/new-nodes")
    new_node=false
    if [ -s "$work/new-nodes" ] && [ -z "$(comm -12 "$work/old-nodes" "$work/new-nodes")" ]; then
        new_node=true
    fi
    if [ "$old_soname" != "$new_soname" ] && $new_node; then
        echo "$name: OK: incompatible ABI change under a new soname ($old_soname -> $new_soname)"
        echo "    and a new version node ($old_nodes -> $new_nodes);"
        echo "    the release must commit new baselines: abi/check.sh --update SOURCE-DIR BUILD-DIR"
        echo "    (docs/releasing.md)"
        continue
    fi
    echo "$name: FAIL: INCOMPATIBLE ABI change (listed above)."
    if [ "$old_soname" = "$new_soname" ]; then
        echo "    The soname is still $old_soname: undo the change, or bump bpl_soversion in meson.build"
    fi
    if ! $new_node; then
        echo "    The symbol version node is still $old_nodes: undo the change, or give $map a new node"
    fi
    echo "    (docs/releasing.md says when and how)."
    failed=1
done

if [ $failed -ne 0 ]; then
    exit 1
fi
if ! $update && [ $compared -eq 0 ]; then
    exit 77
fi
exit 0
