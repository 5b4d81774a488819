#!/usr/bin/env python3
"""Print one line per build and a final "N passed, N failed, N skipped" from
meson's test logs (build/meson-logs/testlog*.json), which hold every run of
every test setup.  An argument that is a file is the output of a test
script ending with "N passed, N failed" (debian/tests/installed)."""
import glob
import json
import os
import re
import sys


def script_counts(path):
    """The counts of a script's last "N passed, N failed" line, or a failure."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for line in open(path, encoding="utf-8", errors="replace"):
        found = re.match(r"(\d+) passed, (\d+) failed", line)
        if found:
            counts["passed"], counts["failed"] = int(found[1]), int(found[2])
    return counts


totals = {"passed": 0, "failed": 0, "skipped": 0}
for build in sys.argv[1:]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if os.path.isfile(build):
        counts = script_counts(build)
    for log in sorted(glob.glob(f"{build}/meson-logs/testlog*.json")):
        for line in open(log, encoding="utf-8"):
            result = json.loads(line)["result"]
            key = {"OK": "passed", "SKIP": "skipped", "EXPECTEDFAIL": "passed"}.get(
                result, "failed")
            counts[key] += 1
    if not any(counts.values()):
        # a build whose setup or compile failed ran nothing: that is a failure
        counts["failed"] = 1
        print(f"{build}: no tests ran (its configuration, build or script failed)")
    print(f"{build}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    for key in totals:
        totals[key] += counts[key]
print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
sys.exit(1 if totals["failed"] else 0)
