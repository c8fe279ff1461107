#!/usr/bin/env python3
"""Import circles and line counts.

    scripts/imports.py check   fail on an import circle or a scenario that
                               imports another scenario (run by make lint)
    scripts/imports.py graph   print every crate's module graph
    scripts/imports.py lines [N]
                               the tree's line counts and the N (default
                               ten) longest functions of userspace/ and
                               module/, Rust and C

A Rust file is a module; it depends on another when it names it: `use
crate::a::b`, `super::x`, `self::x`, a path such as `crate::a::f()` in the
code, or `child::f()` for a module it declares. Test modules count: a test
that needs its caller is a circle too. module/*.c depend on the files they
`#include "..."` and on the files that define the non-static functions they
call. An import circle is a cycle of that graph (a strongly connected set of
two or more files). A driver scenario is a module directly under
`scenario/` that is not in SHARED_SCENARIO_CODE.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["userspace/proto", "userspace/driver", "userspace/host"]

# Known circles and scenario imports to tolerate while they are being
# broken: (crate, the circle's files, sorted) and (crate, from, to). Empty:
# the tree has none.
ALLOWED_CIRCLES = []
ALLOWED_SCENARIO_IMPORTS = []
# Modules under scenario/ that are code the scenarios share, not scenarios.
SHARED_SCENARIO_CODE = set()


def strip_rust(text):
    """Blanks out comments, strings and char literals, keeping newlines."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (
            i and (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def crate_modules(crate):
    """Maps module path ("" for the root, "a::b") to its file."""
    src = os.path.join(ROOT, crate, "src")
    mods = {}
    for d, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(d, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            path = "::".join(rel)
            if path in mods and not f.startswith("lib"):
                continue  # lib.rs is the root the binary's main.rs uses
            mods[path] = os.path.join(d, f)
    return mods


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^([\w:]*?)(::)?\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"\bas\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(3)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    parts.append(cur)
    out = []
    for p in filter(None, parts):
        for e in expand_use(p):
            out.append(prefix + "::" + e if prefix and e != "self" else prefix or e)
    return out


def resolve(segments, mods):
    """The longest prefix of `segments` that is a module."""
    for k in range(len(segments), 0, -1):
        path = "::".join(segments[:k])
        if path in mods:
            return path
    return ""


def module_edges(path, file, mods):
    text = strip_rust(open(file).read())
    here = path.split("::") if path else []
    children = {c.split("::")[-1] for c in mods if c.rsplit("::", 1)[0] == path and c != path}
    if path == "":
        children = {c for c in mods if c and "::" not in c}
    inline = []  # (depth, name) of the inline modules we are in
    depth, edges = 0, set()

    def absolute(segs):
        scope = here + [name for _, name in inline]
        if segs[0] == "crate":
            return segs[1:]
        if segs[0] in ("self", "super"):
            while segs and segs[0] in ("self", "super"):
                if segs[0] == "super":
                    scope = scope[:-1]
                segs = segs[1:]
            return scope + segs
        if segs[0] in children and not inline:
            return here + segs
        return None

    tokens = re.finditer(r"\{|\}|\bmod\s+(\w+)\s*\{|\buse\s+([^;]+);|\b((?:\w+::)+\w*)", text)
    for t in tokens:
        s = t.group(0)
        if t.group(1):
            inline.append((depth, t.group(1)))
            depth += 1
            continue
        if s == "{":
            depth += 1
            continue
        if s == "}":
            depth -= 1
            if inline and inline[-1][0] == depth:
                inline.pop()
            continue
        uses = expand_use(t.group(2)) if t.group(2) else [t.group(3)]
        for u in uses:
            segs = [x for x in u.split("::") if x]
            target = absolute(segs) if segs else None
            if target is None:
                continue
            dest = resolve(target, mods) if target else ""
            if dest != path and dest in mods and not (dest == "" and not target):
                edges.add(dest)
            elif dest == "" and target == []:
                edges.add("")
    # A module's own children are its parts (`mod.rs` is their directory's
    # face): it may name them. Their names of it are edges.
    return {e for e in edges if e != path and not is_below(e, path)}


def is_below(child, parent):
    return parent == "" or child.startswith(parent + "::")


def rust_graph(crate):
    mods = crate_modules(crate)
    return {p: module_edges(p, f, mods) for p, f in mods.items()}, mods


def c_graph():
    """module/*.c: #include "..." and calls of functions defined elsewhere."""
    mdir = os.path.join(ROOT, "module")
    files = sorted(f for f in os.listdir(mdir) if f.endswith((".c", ".h")))
    texts = {f: strip_rust(open(os.path.join(mdir, f)).read()) for f in files}
    defined = {}
    for f in files:
        if not f.endswith(".c"):
            continue
        for m in re.finditer(r"^(?!static)[\w \*]*?\b(\w+)\s*\([^;{]*\)\s*\{", texts[f], re.M):
            defined[m.group(1)] = f
    graph = {}
    for f in files:
        raw = open(os.path.join(mdir, f)).read()
        deps = {i for i in re.findall(r'#include\s+"([^"]+)"', raw) if i in texts}
        calls = set(re.findall(r"\b(\w+)\s*\(", texts[f])) if f.endswith(".c") else ()
        for name in calls:
            if defined.get(name, f) != f:
                deps.add(defined[name])
        graph[f] = deps - {f}
    return graph


def circles(graph):
    """Strongly connected sets of two or more nodes (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(tuple(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph, comp):
    """One loop through `comp`, for the message."""
    start = comp[0]
    members = set(comp)
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w in path]
        if back:
            return path[path.index(back[0]):] + [back[0]]
        fresh = [w for w in nxt if w not in seen]
        path.append(fresh[0])
        seen.add(fresh[0])


def scenario_of(path):
    parts = path.split("::")
    if len(parts) < 2 or parts[0] != "scenario":
        return None
    top = "::".join(parts[:2])
    return None if top in SHARED_SCENARIO_CODE else top


def show(path):
    return path or "crate root"


def check():
    failed = False
    graphs = [(c, rust_graph(c)[0]) for c in CRATES] + [("module", c_graph())]
    seen_circles, seen_imports = set(), set()
    for crate, graph in graphs:
        for comp in circles(graph):
            seen_circles.add((crate, comp))
            loop = " -> ".join(show(p) for p in one_cycle(graph, comp))
            if (crate, comp) in ALLOWED_CIRCLES:
                print(f"allowed - {crate}: import circle {loop}")
                continue
            print(f"not ok - {crate}: import circle {loop}")
            failed = True
        for src, deps in sorted(graph.items()):
            for dst in sorted(deps):
                a, b = scenario_of(src), scenario_of(dst)
                if not a or not b or a == b:
                    continue
                seen_imports.add((crate, a, b))
                if (crate, a, b) in ALLOWED_SCENARIO_IMPORTS:
                    print(f"allowed - {crate}: scenario {src} imports {dst}")
                    continue
                print(f"not ok - {crate}: scenario {src} imports another scenario, {dst}")
                failed = True
    for entry in set(ALLOWED_CIRCLES) - seen_circles:
        print(f"note - allowed circle {entry} is gone: drop it from ALLOWED_CIRCLES")
    for entry in set(ALLOWED_SCENARIO_IMPORTS) - seen_imports:
        print(f"note - allowed import {entry} is gone: drop it from ALLOWED_SCENARIO_IMPORTS")
    return 1 if failed else 0


def graph_dump():
    for crate in CRATES:
        graph, _ = rust_graph(crate)
        for p in sorted(graph):
            print(f"{crate}: {show(p)} -> {', '.join(show(d) for d in sorted(graph[p]))}")
    for f, deps in sorted(c_graph().items()):
        print(f"module: {f} -> {', '.join(sorted(deps))}")
    return 0


def rust_functions(file):
    """(lines, name) of every fn with a body, nested ones included."""
    text = strip_rust(open(file).read())
    out = []
    for m in re.finditer(r"\bfn\s+(\w+)", text):
        open_at = re.compile(r"[{;]").search(text, m.end())
        # skip the signature: generics and where clauses have no braces
        if not open_at or text[open_at.start()] == ";":
            continue
        depth, j = 0, open_at.start()
        while j < len(text):
            depth += (text[j] == "{") - (text[j] == "}")
            if depth == 0:
                break
            j += 1
        first = text.count("\n", 0, m.start()) + 1
        last = text.count("\n", 0, j) + 1
        out.append((last - first + 1, m.group(1)))
    return out


def strip_c(text):
    """Blanks out C comments, strings and char literals, keeping newlines."""
    pattern = re.compile(
        r"/\*.*?\*/"  # comments
        r"|//[^\n]*"
        r'|"(?:\\.|[^"\\\n])*"'  # strings
        r"|'(?:\\.|[^'\\\n])*'",  # char literals
        re.S,
    )
    return pattern.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def c_functions(file):
    """(lines, name) of every C function: kernel style, its body's braces in
    column 0, counted from the line that names it to the closing brace."""
    rows = strip_c(open(file).read()).split("\n")
    out = []
    for i, row in enumerate(rows):
        if row != "{":
            continue
        head = i - 1
        while head > 0 and "(" not in rows[head]:
            head -= 1
        while head > 0 and not re.search(r"\w+\s*\(", rows[head]):
            head -= 1
        name = re.findall(r"(\w+)\s*\(", rows[head])
        end = next((j for j in range(i, len(rows)) if rows[j] == "}"), len(rows) - 1)
        if name:
            out.append((end - head + 1, name[0]))
    return out


FUNCTION_DIRS = ("userspace/", "module/")


def lines():
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    files = subprocess.run(
        ["git", "-C", ROOT, "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    by_kind, total, funcs = {}, 0, []
    for f in files:
        p = os.path.join(ROOT, f)
        if not os.path.isfile(p):
            continue
        try:
            n = open(p, errors="replace").read().count("\n")
        except OSError:
            continue
        kind = os.path.splitext(f)[1] or os.path.basename(f)
        by_kind[kind] = by_kind.get(kind, 0) + n
        total += n
        if not f.startswith(FUNCTION_DIRS):
            continue
        if f.endswith(".rs"):
            funcs += [(n_, name, f) for n_, name in rust_functions(p)]
        elif f.endswith(".c"):
            funcs += [(n_, name, f) for n_, name in c_functions(p)]
    print(f"tracked lines: {total}")
    for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {kind:10} {n}")
    print(f"{top} longest functions of {' and '.join(FUNCTION_DIRS)} (lines, name, file):")
    for n, name, f in sorted(funcs, reverse=True)[:top]:
        print(f"  {n:5} {name} {f}")
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    sys.exit({"check": check, "graph": graph_dump, "lines": lines}[cmd]())
