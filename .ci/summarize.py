#!/usr/bin/env python3
"""Print one line per build and a final "N passed, N failed, N skipped" from
meson's test logs (build/meson-logs/testlog*.json), which hold every run of
every test setup."""
import glob
import json
import sys

totals = {"passed": 0, "failed": 0, "skipped": 0}
for build in sys.argv[1:]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for log in sorted(glob.glob(f"{build}/meson-logs/testlog*.json")):
        for line in open(log, encoding="utf-8"):
            result = json.loads(line)["result"]
            key = {"OK": "passed", "SKIP": "skipped", "EXPECTEDFAIL": "passed"}.get(
                result, "failed")
            counts[key] += 1
    if not any(counts.values()):
        # a build whose setup or compile failed ran nothing: that is a failure
        counts["failed"] = 1
        print(f"{build}: no tests ran (its configuration or build failed)")
    print(f"{build}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    for key in totals:
        totals[key] += counts[key]
print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
sys.exit(1 if totals["failed"] else 0)
