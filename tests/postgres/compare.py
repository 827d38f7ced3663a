#!/usr/bin/env python3
"""Compare PostgreSQL's regression suite run without and with tenancy.

    compare.py PLAIN_RESULTS TENANCY_RESULTS ALLOWED

Every test's output must be the same, but for the tests named in ALLOWED
(lines "test  pattern  reason", or "test  pattern  removed  reason",
separated by two spaces or more): once whitespace is collapsed, the rows only
the tenancy run has must all match the test's pattern (a regular expression:
the extension's own objects in a listing, or its documented refusal), and the
rows only the plain run has must match `removed` (what the refusal replaced;
none without it), apart from the header, separator and row-count lines of
the listing that grew. Prints what differs; exits 1 if anything is not
allowed.
"""
import collections
import pathlib
import re
import sys

plain_dir, tenancy_dir, allowed_file = map(pathlib.Path, sys.argv[1:4])
allowed = {}
for line in allowed_file.read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        fields = re.split(r"\s{2,}", line.strip(), maxsplit=3)
        test, pattern, removed = fields[0], fields[1], fields[2] if len(fields) == 4 else None
        allowed[test] = (re.compile(pattern), re.compile(removed) if removed else None)

LISTING = re.compile(r"^([a-z_0-9 |]+|[-+]+|\(\d+ rows?\))$")
bad = 0
for plain in sorted(plain_dir.glob("*.out")):
    test = plain.stem
    other = tenancy_dir / plain.name
    if other.exists() and plain.read_bytes() == other.read_bytes():
        continue
    lines = lambda p: collections.Counter(" ".join(l.split()) for l in p.read_text().splitlines()) if p.exists() else collections.Counter()
    only_plain, only_tenancy = lines(plain) - lines(other), lines(other) - lines(plain)
    unexplained = [("-", l) for l in only_plain if not LISTING.match(l)] + \
                  [("+", l) for l in only_tenancy if not LISTING.match(l)]
    if test in allowed:
        added, removed = allowed[test]
        unexplained = [(s, l) for s, l in unexplained
                       if not (s == "+" and added.search(l) or s == "-" and removed and removed.search(l))]
        if not unexplained:
            print(f"{test}: differs as allowed")
            continue
    bad = 1
    print(f"{test}: differs with tenancy loaded" + (" beyond what is allowed" if test in allowed else ""))
    for sign, line in unexplained[:40]:
        print(f"  {sign} {line}")
sys.exit(bad)
