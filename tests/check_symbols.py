#!/usr/bin/env python3
"""The exported ABI is exactly what the header declares.

Three lists must agree: the BPL_API functions of the public headers
(include/bioplaus.h, the user API, and include/bioplaus_rule.h, the
extension API), the global names of the linker version script
lib/bioplaus.map, and the dynamic symbols the built shared library defines
(nm -D --defined-only).  An extra exported symbol leaks an internal; a
missing one breaks users.  Each function is declared in one header only.

Usage: check_symbols.py HEADER... MAP LIBRARY
"""
import re
import subprocess
import sys


def header_names(path):
    text = open(path, encoding="utf-8").read()
    start = text.index("\n/* --- BEGIN CDEF")
    end = text.index("\n/* --- END CDEF")
    region = text[start:end]
    return set(re.findall(r"^BPL_API\b[^(]*?\b(bpl_\w+)\s*\(", region, re.M))


def map_names(path):
    text = re.sub(r"/\*.*?\*/", "", open(path, encoding="utf-8").read(), flags=re.S)
    names = set()
    for block in re.findall(r"global:(.*?)local:", text, re.S):
        names |= {n.strip() for n in block.split(";") if n.strip()}
    return names


def library_names(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW":
            names.add(parts[2].split("@")[0])
    return names


def main():
    if len(sys.argv) < 4:
        print(__doc__.strip().splitlines()[-1])
        return 2
    headers, mapfile, library = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
    failed = 0
    per_header = {h: header_names(h) for h in headers}
    declared = set()
    for path, names in per_header.items():
        for name in sorted(declared & names):
            print(f"{name}: declared in more than one header (again in {path})")
            failed += 1
        declared |= names
    lists = {"header": declared, "map": map_names(mapfile),
             "library": library_names(library)}
    for a in lists:
        for b in lists:
            if a < b:
                for name, missing_from in ((n, b) for n in sorted(lists[a] - lists[b])):
                    print(f"{name}: in {a}, not in {missing_from}")
                    failed += 1
                for name in sorted(lists[b] - lists[a]):
                    print(f"{name}: in {b}, not in {a}")
                    failed += 1
    leaked = sorted(n for n in lists["library"] if n.startswith("bpl__"))
    for name in leaked:
        print(f"{name}: internal symbol exported")
        failed += 1
    count = len(lists["header"])
    print(f"{count} public functions; header, version script and library "
          f"{'agree' if not failed else 'disagree'}")
    print(f"{1 if not failed else 0} passed, {1 if failed else 0} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
