#!/usr/bin/env python3
"""The exported ABI is exactly what the header declares.

Three lists must agree: the BPL_API functions of the public headers
(include/bioplaus.h, the user API, and include/bioplaus_rule.h, the
extension API), the global names of the linker version script
lib/bioplaus.map, and the dynamic symbols the built shared library defines
(nm -D --defined-only).  An extra exported symbol leaks an internal; a
missing one breaks users.  Each function is declared in one header only.

The version script opens one node per soname, named after the release
that opened it, and a release that only adds functions under the same
soname adds a node that inherits the one before (BIOPLAUS_0.3 { ... }
BIOPLAUS_0.2;).  The last node is named after the headers' version,
BIOPLAUS_<major>.<minor> of the first header's BPL_VERSION_* macros; the
nodes' versions increase; every exported symbol carries the node the script
lists it in.  With --soname, the library's SONAME must be that name.

--node-prefix=P names the nodes P<major>.<minor> instead of BIOPLAUS_, and
--version-from=HEADER takes the version from HEADER instead of the first
header (libbioplaus-mpi: BIOPLAUS_MPI_0.2, the version of bioplaus.h).

Usage: check_symbols.py [--soname=NAME] [--node-prefix=P] [--version-from=H] HEADER... MAP LIBRARY
"""
import re
import subprocess
import sys


def header_names(path):
    """The BPL_API functions of a header: of its cffi region where it has one."""
    text = open(path, encoding="utf-8").read()
    start = text.find("\n/* --- BEGIN CDEF")
    end = text.find("\n/* --- END CDEF")
    region = text[start:end] if start >= 0 and end > start else text
    return set(re.findall(r"^BPL_API\b[^(]*?\b(bpl_\w+)\s*\(", region, re.M))


def header_version(path):
    """(major, minor) of the header's BPL_VERSION_* macros."""
    text = open(path, encoding="utf-8").read()
    return tuple(int(re.search(r"^#define BPL_VERSION_%s (\d+)$" % part, text, re.M).group(1))
                 for part in ("MAJOR", "MINOR"))


def map_blocks(path):
    """[(node, parent or None, {global names})] of a linker version script,
    in the script's order."""
    text = re.sub(r"/\*.*?\*/", "", open(path, encoding="utf-8").read(), flags=re.S)
    blocks = []
    for node, body, parent in re.findall(
            r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*([A-Za-z_][\w.]*)?\s*;", text, re.S):
        names = body.split("local:")[0]
        names = names.split("global:")[1] if "global:" in names else names
        blocks.append((node, parent or None,
                       {n.strip() for n in names.split(";") if n.strip()}))
    return blocks


def node_version(node, prefix):
    """(major, minor) of a node named prefix<major>.<minor>, or None."""
    match = re.fullmatch(re.escape(prefix) + r"(\d+)\.(\d+)", node)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_nodes(blocks, prefix, node):
    """Complaints about the nodes' names, order and inheritance."""
    problems = []
    nodes = [b[0] for b in blocks]
    if not nodes or nodes[-1] != node:
        problems.append(f"version nodes {nodes}: the last must be {node}")
    versions = [node_version(n, prefix) for n in nodes]
    for name, version in zip(nodes, versions):
        if version is None:
            problems.append(f"version node {name}: not named {prefix}<major>.<minor>")
    if None not in versions and versions != sorted(set(versions)):
        problems.append(f"version nodes {nodes}: their versions must increase")
    for i, (name, parent, _) in enumerate(blocks):
        expected = nodes[i - 1] if i else None
        if parent != expected:
            problems.append(f"version node {name} inherits {parent}, expected {expected}")
    return problems


def library_versions(path):
    """{symbol: version node} of the library's defined dynamic symbols."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    versions = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW" and "@" in parts[2]:
            name, _, node = parts[2].partition("@")
            versions[name] = node.lstrip("@")
    return versions


def library_soname(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True,
                         text=True).stdout
    match = re.search(r"Library soname: \[([^\]]*)\]", out)
    return match.group(1) if match else None




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
    args = sys.argv[1:]
    soname, prefix, version_from = None, "BIOPLAUS_", None
    while args and args[0].startswith("--"):
        key, _, value = args.pop(0).partition("=")
        if key == "--soname":
            soname = value
        elif key == "--node-prefix":
            prefix = value
        elif key == "--version-from":
            version_from = value
        else:
            print(f"unknown option {key}")
            return 2
    if len(args) < 3:
        print(__doc__.strip().splitlines()[-1])
        return 2
    headers, mapfile, library = args[:-2], args[-2], args[-1]
    failed = 0
    node = prefix + "%d.%d" % header_version(version_from or headers[0])
    blocks = map_blocks(mapfile)
    for problem in check_nodes(blocks, prefix, node):
        print(f"{mapfile}: {problem}")
        failed += 1
    node_of = {name: b[0] for b in blocks for name in b[2]}
    for name, version in sorted(library_versions(library).items()):
        if name.startswith("bpl_") and version != node_of.get(name):
            print(f"{name}: exported in version {version}, listed in {node_of.get(name)}")
            failed += 1
    if soname is not None and library_soname(library) != soname:
        print(f"{library}: SONAME {library_soname(library)}, expected {soname}")
        failed += 1
    per_header = {h: header_names(h) for h in headers}
    declared = set()
    for path, names in per_header.items():
        for name in sorted(declared & names):
            print(f"{name}: declared in more than one header (again in {path})")
            failed += 1
        declared |= names
    lists = {"header": declared, "map": set(node_of),
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
    print(f"{count} public functions in {', '.join(b[0] for b in blocks)}; headers, "
          f"version script and library "
          f"{'agree' if not failed else 'disagree'}")
    print(f"{1 if not failed else 0} passed, {1 if failed else 0} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
