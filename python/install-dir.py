"""install-dir.py PREFIX DEFAULT - the folder to install the package into.

Run by python/meson.build with the interpreter the package is installed
for.  DEFAULT is meson's choice for that interpreter under PREFIX; it is
printed when the interpreter searches it.  Otherwise the first folder on the
interpreter's own search path that is a site-packages or dist-packages
folder in PREFIX/lib* is printed: Debian's python3 searches
/usr/local/lib/python3.X/dist-packages, while meson's choice for the prefix
/usr/local is /usr/local/lib/python3/dist-packages, which it never searches.
With neither, DEFAULT is printed (PYTHONPATH must then name it).
"""

import os
import sys


def search_path():
    """The interpreter's search path, normalised (run it with -I: no
    PYTHONPATH, no user site, no script folder)."""
    return [os.path.normpath(os.path.abspath(p)) for p in sys.path if p]


def install_dir(prefix, default):
    """DEFAULT if searched, else the first site folder in PREFIX/lib*, else
    DEFAULT (as given, so that the caller can tell it from a folder of the
    path)."""
    folders = search_path()
    if os.path.normpath(default) in folders:
        return default
    for folder in folders:
        # Under PREFIX itself: not /usr/local/lib/... for the prefix /usr.
        relative = os.path.relpath(folder, os.path.abspath(prefix))
        if relative.startswith("lib") and \
                os.path.basename(folder) in ("site-packages", "dist-packages"):
            return folder
    return default


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: install-dir.py PREFIX DEFAULT")
    print(install_dir(sys.argv[1], sys.argv[2]))
