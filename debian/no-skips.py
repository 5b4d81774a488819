#!/usr/bin/env python3
"""no-skips.py TESTLOG - fail if meson's test log (meson-logs/testlog.json)
records a test that skipped or none at all: at package build time every test
left in runs, and the ones that cannot are excluded by suite name."""
import json
import sys

results = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
skipped = [r["name"] for r in results if r["result"] == "SKIP"]
if not results or skipped:
    print("tests skipped at build time: " + (", ".join(skipped) or "no test ran"))
    sys.exit(1)
print("%d tests ran, none skipped" % len(results))
