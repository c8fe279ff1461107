#!/usr/bin/env python3
"""Summarises a `make bench` directory (build/results/bench-ID).

Reads clean-s*/report.json and wire.log (one boot per seed running the
driver's `bench` scenario: phases mem, a, b, overhead, c) and
variant-{a,b,c}/report.json and console.log (the race-only kernel), then
prints one table and writes bench.json and pmd_race.svg into the directory.

Standard library only. Usage: summarise.py DIR [--variant NAME] [--cap SECS]
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

CONFIGS = {
    "a": "(a) shell baseline",
    "b": "(b) mmrace",
    "c": "(c) mmrace amplified",
}
PAGE = 4096
# The targets.
TARGET_B_RACES_PER_MIN = 100
TARGET_BASELINE_MAX_PER_MIN = 0.25
TARGET_FIRST_RACE_S = 5
TARGET_VARIANT_S = 10
TARGET_OVERHEAD_PCT = 3
TARGET_MIGRATE_FRACTION = 0.5
# Parties whose rates go in the table (when the config has them).
PARTIES = ["clear_refs", "migrate", "splitter", "kills", "writer", "racer_rounds", "refault"]


def load(path):
    with open(path) as f:
        return json.load(f)


def wire_messages(path):
    """The protocol messages of a wire.log, in order."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                i = line.find("@@MMRACE@@ ")
                if i < 0:
                    continue
                try:
                    out.append(json.loads(line[i + len("@@MMRACE@@ "):]))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def stats(values):
    """median/min/max of the non-None values (None when there are none)."""
    vs = [v for v in values if v is not None]
    if not vs:
        return {"median": None, "min": None, "max": None, "n": 0, "values": values}
    return {
        "median": statistics.median(vs),
        "min": min(vs),
        "max": max(vs),
        "n": len(vs),
        "values": values,
    }


def per_min(n, secs):
    return None if n is None or not secs else n * 60.0 / secs


def phase_metrics(phase):
    """The figures of one phase result (thp-race or shell-baseline JSON)."""
    r = phase.get("result")
    if not r:
        return None
    secs = r["elapsed_ms"] / 1000.0
    c = r.get("counters_delta") or {}
    v = r.get("vmstat_delta") or {}
    have = r.get("counters_available", bool(c))
    splits = c.get("thp_split") if have else None
    if splits is None and "thp_split_page" in v:
        splits = v.get("thp_split_page", 0) + v.get("thp_split_page_failed", 0)
    failed = c.get("thp_split_failed") if have else v.get("thp_split_page_failed")
    migrated = c.get("migrate_pages") if have else v.get("pgmigrate_success")
    if migrated is None:
        migrated = v.get("pgmigrate_success")
    first = r.get("first_pmd_race_ms")
    m = {
        "secs": secs,
        "pmd_race_per_min": per_min(c.get("pmd_race"), secs) if have else None,
        "pmd_race": c.get("pmd_race") if have else None,
        "thp_split_per_min": per_min(splits, secs),
        "thp_split_failed_per_min": per_min(failed, secs),
        # Not seen within the phase: recorded as None, shown as "> phase".
        "first_pmd_race_s": None if first is None else first / 1000.0,
        "migrated_bytes_per_s": None if migrated is None else migrated * PAGE / secs,
        "crosscheck_ok": r.get("crosscheck_ok"),
    }
    for party, rate in (r.get("rates") or {}).items():
        m["ops_per_s." + party] = rate
    return m


def series(msgs, phase):
    """(t_s since phase start, cumulative pmd_race) from the snapshots."""
    t0, t1 = phase["t_start_ms"], phase["t_end_ms"]
    base = None
    pts = []
    for m in msgs:
        if m.get("type") != "snapshot":
            continue
        t, v = m["t_ms"], m.get("counters", {}).get("pmd_race")
        if t <= t0:
            base = v
            continue
        if t > t1 + 50:
            break
        if v is None:
            continue
        if base is None:
            base = 0
        pts.append(((t - t0) / 1000.0, max(0, v - base)))
    pts.insert(0, (0.0, 0))
    r = phase.get("result") or {}
    end = (r.get("counters_delta") or {}).get("pmd_race")
    if end is not None and r["elapsed_ms"] / 1000.0 > pts[-1][0]:
        pts.append((r["elapsed_ms"] / 1000.0, max(end, pts[-1][1])))
    return pts


KTIME = re.compile(r"\[\s*(\d+\.\d+)\]")


def ktime(text):
    m = KTIME.search(text or "")
    return float(m.group(1)) if m else None


def variant_run(d, cap):
    """How the race-only kernel fared in one boot."""
    rep_path = os.path.join(d, "report.json")
    if not os.path.exists(rep_path):
        return {"ran": False}
    rep = load(rep_path)
    out = {
        "ran": True,
        "verdict": rep.get("verdict"),
        "class": rep.get("class"),
        "reason": rep.get("reason"),
        "guest_elapsed_s": rep.get("guest_elapsed_s"),
        "cap_s": cap,
    }
    crashed = rep.get("verdict") in ("kernel-problem", "hang")
    out["crashed"] = crashed
    f = rep.get("finding")
    if f:
        out["finding"] = f["excerpt"][0]["text"].strip()
    res = rep.get("result") or {}
    if not crashed and res.get("ok") is False:
        out["driver_error"] = res.get("message")
    # Time to crash: kernel clock of the finding minus the module load
    # (the driver starts the scenario right after loading mmrace.ko).
    t_load = None
    try:
        with open(os.path.join(d, "console.log"), errors="replace") as fh:
            for line in fh:
                if "mmrace" in line and " loaded" in line and t_load is None:
                    t_load = ktime(line)
    except OSError:
        pass
    t_crash = ktime(out.get("finding"))
    if crashed and t_load is not None and t_crash is not None:
        out["time_to_crash_s"] = round(t_crash - t_load, 3)
        out["time_to_crash_how"] = "kernel clock: finding line minus 'mmrace ... loaded'"
    elif crashed:
        out["time_to_crash_s"] = rep.get("guest_elapsed_s")
        out["time_to_crash_how"] = "driver time of its last message before the crash"
    else:
        out["time_to_crash_s"] = None
    return out


def fmt(v, digits=None):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    a = abs(v)
    if digits is None:
        digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 0.1 else 3
    return f"{v:.{digits}f}"


def cell(s, none="-"):
    if not s or s["median"] is None:
        return none
    if s["min"] == s["max"]:
        return fmt(s["median"])
    return f"{fmt(s['median'])} [{fmt(s['min'])}..{fmt(s['max'])}]"


def ratio(num, den):
    if num is None or den is None:
        return None
    if den == 0:
        return math.inf if num > 0 else None
    return num / den


def fmt_ratio(r):
    if r is None:
        return "-"
    if r == math.inf:
        return "inf"
    return f"{r:.3g}x"


def svg_plot(curves, path, phase_secs):
    """curves: {config: [(seed, [(t, y)...])]}; symlog y (log10(1+y))."""
    W, H, L, R, T, B = 760, 440, 70, 170, 40, 50
    pw, ph = W - L - R, H - T - B
    ymax = max([y for cs in curves.values() for _, pts in cs for _, y in pts] + [1])
    xmax = max([t for cs in curves.values() for _, pts in cs for t, _ in pts] + [phase_secs or 1])
    top = math.log10(1 + ymax)
    top = math.ceil(top) if top > 0 else 1

    def X(t):
        return L + pw * t / xmax

    def Y(y):
        return T + ph * (1 - math.log10(1 + y) / top)

    colors = {"a": "#7f7f7f", "b": "#1f77b4", "c": "#d62728"}
    dashes = ["", "6,3", "2,2", "8,2,2,2", "1,3"]
    el = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{L}" y="22" font-size="14">Cumulative pmd_race over each phase '
        f"(one line per seed; y is log10(1 + count))</text>",
    ]
    for k in range(0, top + 1):
        y = 10 ** k - 1 if k else 0
        yy = Y(y)
        el.append(f'<line x1="{L}" y1="{yy:.1f}" x2="{L + pw}" y2="{yy:.1f}" stroke="#ddd"/>')
        el.append(f'<text x="{L - 6}" y="{yy + 4:.1f}" text-anchor="end">{10 ** k if k else 0}</text>')
    step = max(1, round(xmax / 6 / 5) * 5) if xmax > 10 else 1
    t = 0
    while t <= xmax + 1e-9:
        xx = X(t)
        el.append(f'<line x1="{xx:.1f}" y1="{T}" x2="{xx:.1f}" y2="{T + ph}" stroke="#eee"/>')
        el.append(f'<text x="{xx:.1f}" y="{T + ph + 16}" text-anchor="middle">{t:g}</text>')
        t += step
    el.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    el.append(f'<text x="{L + pw / 2}" y="{H - 12}" text-anchor="middle">seconds since the phase started</text>')
    el.append(
        f'<text x="16" y="{T + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {T + ph / 2})">pmd_race (cumulative)</text>'
    )
    ly = T + 10
    for cfg, cs in curves.items():
        for i, (seed, pts) in enumerate(cs):
            if not pts:
                continue
            d = " ".join(f"{X(t):.1f},{Y(y):.1f}" for t, y in pts)
            dash = f' stroke-dasharray="{dashes[i % len(dashes)]}"' if dashes[i % len(dashes)] else ""
            el.append(f'<polyline fill="none" stroke="{colors.get(cfg, "black")}" stroke-width="1.6"{dash} points="{d}"/>')
            el.append(f'<line x1="{L + pw + 10}" y1="{ly}" x2="{L + pw + 34}" y2="{ly}" '
                      f'stroke="{colors.get(cfg, "black")}" stroke-width="2"{dash}/>')
            el.append(f'<text x="{L + pw + 40}" y="{ly + 4}">{cfg} seed {seed}: {pts[-1][1]}</text>')
            ly += 16
    el.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(el) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--variant", default="pmd-trust-unlocked-check")
    ap.add_argument("--cap", type=float, default=None)
    a = ap.parse_args()
    d = a.dir
    errors = []

    runs = []
    for rp in sorted(glob.glob(os.path.join(d, "clean-s*", "report.json"))):
        rd = os.path.dirname(rp)
        rep = load(rp)
        res = rep.get("result") or {}
        data = res.get("data") or {}
        if rep.get("verdict") != "clean":
            errors.append(f"{os.path.basename(rd)}: verdict {rep.get('verdict')}: {rep.get('reason')}")
        if not data.get("phases"):
            errors.append(f"{os.path.basename(rd)}: no bench phases in the result ({res.get('message')})")
            continue
        for name, ph in data["phases"].items():
            if "error" in ph:
                errors.append(f"{os.path.basename(rd)}: phase {name}: {ph['error']}")
        runs.append({"dir": rd, "seed": (rep.get("spec") or {}).get("seed"), "report": rep, "data": data,
                     "wire": wire_messages(os.path.join(rd, "wire.log"))})
    if not runs:
        print(f"summarise: no usable clean-s*/report.json under {d}", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 2
    phase_secs = runs[0]["data"].get("phase_secs")

    # Per-config metrics over the seeds.
    per = {}
    for cfg in ["a", "b", "c"]:
        rows = [phase_metrics(r["data"]["phases"].get(cfg, {})) for r in runs]
        keys = sorted({k for m in rows if m for k in m if k != "crosscheck_ok"})
        per[cfg] = {k: stats([m.get(k) if m else None for m in rows]) for k in keys}
        per[cfg]["_crosscheck_ok"] = [m.get("crosscheck_ok") if m else None for m in rows]
        per[cfg]["_ran"] = sum(1 for m in rows if m)

    # Limits: memcpy, idle migration, migrated bytes/s in each config.
    mem = [r["data"]["phases"].get("mem", {}).get("result") for r in runs]
    memcpy = stats([m["memcpy"]["bytes_per_s"] if m else None for m in mem])
    idle = stats([m["idle_migrate"]["bytes_per_s"] if m else None for m in mem])
    wc = [m.get("writer_cost") if m else None for m in mem]
    writer_memset = stats([w["memset_bytes_per_s"] if w else None for w in wc])
    writer_stamped = stats([w["stamped_bytes_per_s"] if w else None for w in wc])
    writer_pct = stats([w["stamped_vs_memset_pct"] if w else None for w in wc])
    fractions = {}
    for cfg in ["a", "b", "c"]:
        vals = []
        for r, m in zip(runs, mem):
            pm = phase_metrics(r["data"]["phases"].get(cfg, {}))
            vals.append(ratio(pm["migrated_bytes_per_s"], m["memcpy"]["bytes_per_s"]) if pm and m else None)
        fractions[cfg] = stats(vals)
    idle_fraction = stats([ratio(m["idle_migrate"]["bytes_per_s"], m["memcpy"]["bytes_per_s"]) if m else None
                           for m in mem])

    # Probe overhead: thp-race with mmrace.ko loaded vs unloaded, in
    # alternating segments of the `overhead` phase, same boot.
    overhead = {}
    geo = []
    for r in runs:
        res = r["data"]["phases"].get("overhead", {}).get("result")
        if not res:
            geo.append(None)
            continue
        pl, pu = res["loaded"]["rates"], res["unloaded"]["rates"]
        logs = []
        for party, lr in pl.items():
            ur = pu.get(party)
            if not ur or lr is None or party == "kills":
                continue
            overhead.setdefault(party, []).append((1 - lr / ur) * 100)
            if lr > 0:
                logs.append(math.log(lr / ur))
        geo.append((1 - math.exp(sum(logs) / len(logs))) * 100 if logs else None)
    overhead_stats = {p: stats(v) for p, v in overhead.items()}
    overhead_geo = stats(geo)

    # Variant.
    variant = {"name": a.variant, "cap_s": a.cap, "runs": {}}
    for cfg in ["a", "b", "c"]:
        vd = os.path.join(d, f"variant-{cfg}")
        variant["runs"][cfg] = variant_run(vd, a.cap) if os.path.isdir(vd) else {"ran": False}

    # Ratios of medians.
    def med(cfg, key):
        s = per.get(cfg, {}).get(key)
        return s["median"] if s else None

    metric_keys = ["pmd_race_per_min", "thp_split_per_min", "thp_split_failed_per_min",
                   "first_pmd_race_s", "migrated_bytes_per_s"]
    parties = [p for p in PARTIES if any(f"ops_per_s.{p}" in per[c] for c in ["a", "b", "c"])]
    metric_keys += [f"ops_per_s.{p}" for p in parties]
    ratios = {"b/a": {}, "c/a": {}}
    for k in metric_keys:
        for cfg in ["b", "c"]:
            ratios[f"{cfg}/a"][k] = ratio(med(cfg, k), med("a", k))
    total_min_a = sum(m for m in (per["a"].get("secs", {}).get("values") or []) if m) / 60.0
    races_a = sum(v for v in (per["a"].get("pmd_race", {}).get("values") or []) if v)
    bound = None
    if per["a"]["_ran"] and races_a == 0 and total_min_a > 0:
        # a saw no race at all: its rate is below 1 per total minutes run.
        bound = 1.0 / total_min_a
        for cfg in ["b", "c"]:
            b = med(cfg, "pmd_race_per_min")
            ratios[f"{cfg}/a"]["pmd_race_per_min_lower_bound"] = None if b is None else b / bound

    # Targets.
    def target(name, want, measured, met):
        return {"target": name, "want": want, "measured": measured, "met": met}

    def per_seed(st, ok, none_fails=False):
        """True when every seed meets it, False when none does, None (open)
        when some do, or when there is nothing to judge."""
        vals = st["values"] if st else []
        judged = [ok(v) if v is not None else False for v in vals if v is not None or none_fails]
        if not judged:
            return None
        return True if all(judged) else False if not any(judged) else None

    def shown(st):
        return cell(st) if st and st["n"] else None

    vt = [variant["runs"][c].get("time_to_crash_s") for c in ["b", "c"]]
    vt = [t for t in vt if t is not None]
    v_ran = any(variant["runs"][c].get("ran") for c in ["b", "c"])
    targets = [
        target("(b) pmd_race/min", f">= {TARGET_B_RACES_PER_MIN}", shown(per["b"].get("pmd_race_per_min")),
               per_seed(per["b"].get("pmd_race_per_min"), lambda v: v >= TARGET_B_RACES_PER_MIN)),
        # Zero races in T minutes only bound the rate below 1/T: the target
        # is judged only when that bound (or the measured rate) says so.
        target("(a) baseline pmd_race/min", f"< {TARGET_BASELINE_MAX_PER_MIN}",
               shown(per["a"].get("pmd_race_per_min")) if bound is None
               else f"0 in {total_min_a:.1f} min (< {bound:.2f})",
               (bound < TARGET_BASELINE_MAX_PER_MIN or None) if bound is not None
               else per_seed(per["a"].get("pmd_race_per_min"), lambda v: v < TARGET_BASELINE_MAX_PER_MIN)),
        target("time to first pmd_race, (b)", f"<= {TARGET_FIRST_RACE_S} s", shown(per["b"].get("first_pmd_race_s")),
               per_seed(per["b"].get("first_pmd_race_s"), lambda v: v <= TARGET_FIRST_RACE_S, True)),
        target("time to first pmd_race, (c)", f"<= {TARGET_FIRST_RACE_S} s", shown(per["c"].get("first_pmd_race_s")),
               per_seed(per["c"].get("first_pmd_race_s"), lambda v: v <= TARGET_FIRST_RACE_S, True)),
        target("variant caught by (b) or (c)", f"<= {TARGET_VARIANT_S} s", min(vt) if vt else None,
               (bool(vt) and min(vt) <= TARGET_VARIANT_S) if v_ran else None),
        target("probe overhead (geomean of op rates)", f"<= {TARGET_OVERHEAD_PCT} %", shown(overhead_geo),
               per_seed(overhead_geo, lambda v: v <= TARGET_OVERHEAD_PCT)),
        target("(b) migrated bytes/s / memcpy bytes/s", f">= {TARGET_MIGRATE_FRACTION}", shown(fractions["b"]),
               per_seed(fractions["b"], lambda v: v >= TARGET_MIGRATE_FRACTION)),
    ]

    # The table.
    seeds = [r["seed"] for r in runs]
    rep0 = runs[0]["report"]
    print(f"\nmmrace bench {os.path.basename(os.path.abspath(d))}: seeds {seeds}, "
          f"{phase_secs} s per phase, accel {rep0.get('accel')}, kernel {os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(rep0.get('kernel', '')))))) or rep0.get('kernel')}")
    print("one boot per seed runs mem, a, b, overhead, c back to back; "
          "values are median [min..max] over the seeds\n")
    labels = {
        "pmd_race_per_min": "pmd_race / min",
        "thp_split_per_min": "THP splits / min",
        "thp_split_failed_per_min": "thp_split_failed / min",
        "first_pmd_race_s": "time to first pmd_race, s",
        "migrated_bytes_per_s": "migrated MB/s",
    }
    w0, w1 = 28, 24
    print(f"{'metric':<{w0}}{'(a) shell':>{w1}}{'(b) mmrace':>{w1}}{'(c) amplified':>{w1}}{'b/a':>9}{'c/a':>9}")
    for k in metric_keys:
        label = labels.get(k, k.replace("ops_per_s.", "ops/s ") if k.startswith("ops_per_s.") else k)
        cells = []
        for cfg in ["a", "b", "c"]:
            s = per[cfg].get(k)
            if k == "migrated_bytes_per_s" and s and s["median"] is not None:
                s = {kk: (v / 1e6 if isinstance(v, (int, float)) else v) for kk, v in s.items()}
            none = "-"
            if k == "first_pmd_race_s" and per[cfg]["_ran"]:
                none = f"none in {phase_secs} s"
            c = cell(s, none)
            if k == "first_pmd_race_s" and s and s["n"] and s["n"] < per[cfg]["_ran"]:
                c += f" ({per[cfg]['_ran'] - s['n']} none)"
            cells.append(c)
        rb, rc = ratios["b/a"].get(k), ratios["c/a"].get(k)
        print(f"{label:<{w0}}{cells[0]:>{w1}}{cells[1]:>{w1}}{cells[2]:>{w1}}{fmt_ratio(rb):>9}{fmt_ratio(rc):>9}")
    if bound is not None:
        print(f"  (a) saw no pmd_race in {total_min_a:.1f} min: its rate is < {bound:.2f}/min, so b/a >= "
              f"{fmt_ratio(ratios['b/a'].get('pmd_race_per_min_lower_bound'))}, c/a >= "
              f"{fmt_ratio(ratios['c/a'].get('pmd_race_per_min_lower_bound'))}")
    print()
    print(f"memcpy bandwidth:        {cell({k: (v / 1e6 if isinstance(v, float) else v) for k, v in memcpy.items()} if memcpy['n'] else None)} MB/s")
    print(f"idle migrate_pages:      {cell({k: (v / 1e6 if isinstance(v, float) else v) for k, v in idle.items()} if idle['n'] else None)} MB/s "
          f"= {cell(idle_fraction)} of memcpy")
    for cfg in ["a", "b", "c"]:
        print(f"migrated under {cfg}:       {cell(fractions[cfg])} of memcpy")
    mb = lambda st: cell({k: (v / 1e6 if isinstance(v, float) else v) for k, v in st.items()} if st["n"] else None)
    print(f"thp-race writer, memset: {mb(writer_memset)} MB/s; stamped (data oracle): {mb(writer_stamped)} MB/s "
          f"= {cell(writer_pct) if writer_pct['n'] else '-'} % vs memset (target: within 20 %)")
    print(f"probe overhead (thp-race op rates, mmrace.ko loaded vs unloaded, alternating segments of one boot; "
          f"% slower, geomean over parties): "
          f"{cell(overhead_geo)}")
    for p, s in sorted(overhead_stats.items()):
        print(f"    {p:<16} {cell(s)} %")
    print()
    vname = a.variant
    print(f"race-only variant {vname}, one boot each, capped at {fmt(a.cap)} s:")
    for cfg in ["a", "b", "c"]:
        v = variant["runs"][cfg]
        if not v.get("ran"):
            print(f"    {CONFIGS[cfg]:<24} not run")
        elif v.get("crashed"):
            print(f"    {CONFIGS[cfg]:<24} crashed after {fmt(v.get('time_to_crash_s'))} s ({v.get('class')}): "
                  f"{(v.get('finding') or '')[:70]}")
        elif v.get("driver_error"):
            print(f"    {CONFIGS[cfg]:<24} driver error: {v['driver_error'][:90]}")
        else:
            print(f"    {CONFIGS[cfg]:<24} survived {fmt(v.get('guest_elapsed_s'))} s (verdict {v.get('verdict')})")
    print()
    print("targets:")
    for t in targets:
        m = t["measured"]
        state = "met " if t["met"] else "open" if t["met"] is None else "MISS"
        print(f"    {state}  {t['target']:<40} want {t['want']:<9} measured {fmt(m)}")
    print("    (met/MISS: in every seed / in none; open: in some, or not enough data to tell)")
    for e in errors:
        print(f"ERROR: {e}")

    # The plot.
    curves = {cfg: [] for cfg in ["a", "b", "c"]}
    for r in runs:
        for cfg in curves:
            ph = r["data"]["phases"].get(cfg)
            if ph and "t_start_ms" in ph and ph.get("result"):
                curves[cfg].append((r["seed"], series(r["wire"], ph)))
    svg = os.path.join(d, "pmd_race.svg")
    svg_plot(curves, svg, phase_secs)

    def clean(o):
        if isinstance(o, float) and (math.isinf(o) or math.isnan(o)):
            return "inf" if o > 0 else None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    out = {
        "bench_id": os.path.basename(os.path.abspath(d)),
        "seeds": seeds,
        "phase_secs": phase_secs,
        "boots": "one boot per seed for mem, a, b, overhead and c; one boot per variant run",
        "accel": rep0.get("accel"),
        "kernel": rep0.get("kernel"),
        "configs": {cfg: {k: v for k, v in per[cfg].items() if not k.startswith("_")}
                    | {"runs_with_result": per[cfg]["_ran"], "crosscheck_ok": per[cfg]["_crosscheck_ok"]}
                    for cfg in per},
        "ratios": ratios,
        "baseline_rate_upper_bound_per_min": bound,
        "limits": {
            "memcpy_bytes_per_s": memcpy,
            "idle_migrate_bytes_per_s": idle,
            "idle_migrate_fraction_of_memcpy": idle_fraction,
            "writer_memset_bytes_per_s": writer_memset,
            "writer_stamped_bytes_per_s": writer_stamped,
            "writer_stamped_vs_memset_pct": writer_pct,
            "migrated_fraction_of_memcpy": fractions,
        },
        "probe_overhead_pct": {"geomean": overhead_geo, "per_party": overhead_stats},
        "variant": variant,
        "targets": targets,
        "errors": errors,
        "runs": [os.path.basename(r["dir"]) for r in runs],
        "plot": os.path.basename(svg),
    }
    with open(os.path.join(d, "bench.json"), "w") as f:
        json.dump(clean(out), f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"\nwrote {os.path.join(d, 'bench.json')} and {svg}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
