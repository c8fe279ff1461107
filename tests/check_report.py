#!/usr/bin/env python3
"""Assertions on a run's report.json, for scripts/test.sh.

    check_report.py REPORT CHECK...

Each CHECK is one of:
    verdict=V            the verdict is V (clean, kernel-problem, hang, ...)
    class~TEXT           the finding's class contains TEXT (case-insensitive)
    probes-attached      every module probe attached
    moved=C1,C2          these counters rose between first and last snapshot
    equal=C:V1+V2        module counter delta C == sum of vmstat deltas V1+V2
                         (from the driver's result data: counters / vmstat)
    has-last-snapshot    the report kept a counter snapshot
    data-true=KEY        the driver's result data has KEY == true
    data-set=KEY         the driver's result data has KEY set (not null)
    finding~TEXT         a line of the finding's excerpt contains TEXT
    kernel~TEXT          the booted kernel image's path contains TEXT
    message~TEXT         the driver's result message contains TEXT
    ops=NAME:N           the last snapshot's op NAME equals N
Prints one line per failed check and exits 1 if any failed.
"""
import json
import sys


def data_maps(r):
    data = (r.get("result") or {}).get("data") or {}
    counters = data.get("counters") or data.get("counters_delta") or {}
    vmstat = data.get("vmstat") or data.get("vmstat_delta") or {}
    return counters, vmstat


def check(r, c):
    if c.startswith("verdict="):
        want = c.split("=", 1)[1]
        return r.get("verdict") == want, f"verdict {r.get('verdict')!r}, want {want!r}"
    if c.startswith("class~"):
        want = c.split("~", 1)[1].lower()
        cls = (r.get("class") or "")
        return want in cls.lower(), f"finding class {cls!r} lacks {want!r}"
    if c == "probes-attached":
        probes = (r.get("module") or {}).get("probes") or []
        bad = [p["name"] for p in probes if not p.get("attached")]
        return bool(probes) and not bad, f"probes not attached: {bad or 'no module message'}"
    if c.startswith("moved="):
        first = (r.get("first_snapshot") or {}).get("counters") or {}
        last = (r.get("last_snapshot") or {}).get("counters") or {}
        still = [n for n in c.split("=", 1)[1].split(",") if last.get(n, 0) <= first.get(n, 0)]
        return not still, f"counters did not move: {still}"
    if c.startswith("equal="):
        name, rhs = c.split("=", 1)[1].split(":")
        counters, vmstat = data_maps(r)
        if name not in counters:
            return False, f"no module counter {name} in result data"
        want = sum(vmstat.get(v, 0) for v in rhs.split("+"))
        return counters[name] == want, f"{name}={counters[name]} but vmstat {rhs}={want}"
    if c.startswith("data-true=") or c.startswith("data-set="):
        key = c.split("=", 1)[1]
        data = (r.get("result") or {}).get("data") or {}
        if c.startswith("data-true="):
            return data.get(key) is True, f"result data {key} = {data.get(key)!r}"
        return data.get(key) is not None, f"result data {key} is not set"
    if c.startswith("message~"):
        want = c.split("~", 1)[1]
        msg = (r.get("result") or {}).get("message") or ""
        return want in msg, f"result message {msg!r} lacks {want!r}"
    if c.startswith("kernel~"):
        want = c.split("~", 1)[1]
        return want in (r.get("kernel") or ""), f"kernel {r.get('kernel')!r} lacks {want!r}"
    if c.startswith("finding~"):
        want = c.split("~", 1)[1]
        excerpt = (r.get("finding") or {}).get("excerpt") or []
        return any(want in line.get("text", "") for line in excerpt), f"no finding line has {want!r}"
    if c.startswith("ops="):
        name, n = c.split("=", 1)[1].split(":")
        ops = (r.get("last_snapshot") or {}).get("ops") or {}
        return ops.get(name) == int(n), f"op {name} = {ops.get(name)!r}, want {n}"
    if c == "has-last-snapshot":
        return bool((r.get("last_snapshot") or {}).get("counters")), "no counter snapshot kept"
    return False, f"unknown check {c!r}"


def main():
    report = json.load(open(sys.argv[1]))
    failed = 0
    for c in sys.argv[2:]:
        ok, why = check(report, c)
        if not ok:
            print(f"    check {c}: {why}")
            failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
