"""Merges the one-line JSON objects the tshark-*.sh oracle scripts print per
capture ({"capture": [rows]}) into one object, leaving out captures without
rows, and writes it indented to standard output."""
import json
import sys

merged = {}
for line in sys.stdin:
    merged.update(json.loads(line))
json.dump({k: v for k, v in merged.items() if v}, sys.stdout, indent=1)
