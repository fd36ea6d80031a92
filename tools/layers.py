#!/usr/bin/env python3
"""The house rules of src/, checked from the text of each file (tests excluded):
no import cycles between files, and the dependency directions of DESIGN.md:
- only the candle layers (model/, train/, inference/, similarity/, cache/) import candle;
- only cli.rs (and main.rs, which parses) imports clap;
- report/ and store/ never reach training, models or the command layer;
- trial/ (the leaf vocabulary) imports no other module of the crate.
Prints each broken rule; exit 1 if any. Usage: python3 tools/layers.py [SRC]"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")

CANDLE_LAYERS = ("model", "train", "inference", "similarity", "cache")
CLAP_FILES = ("cli", "")  # "" is the crate root: main.rs / lib.rs
NEVER = {
    "report": ("train", "model", "inference", "commands", "scheduler", "sweep", "store"),
    "store": ("train", "model", "inference", "commands", "scheduler", "sweep", "report"),
    "trial": None,  # None: no crate module at all
}


def modules(src):
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                parts = os.path.relpath(path, src)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                found.setdefault("::".join(parts), []).append(path)
    return found


def code_of(path):
    """The file without its tests and comments."""
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]", text)[0]
    return re.sub(r"//[^\n]*", "", text)


def resolve(mods, path):
    parts = path.strip(":").split("::")
    for n in range(len(parts), 0, -1):
        candidate = "::".join(parts[:n])
        if candidate in mods:
            return candidate
    return None


def main():
    mods = modules(SRC)
    edges = {m: set() for m in mods}
    problems = []
    for m, paths in mods.items():
        parent = m.rsplit("::", 1)[0] if "::" in m else ""
        top = m.split("::")[0]
        for path in paths:
            text = code_of(path)
            # `use crate::a::{b, c::d}` names several modules at once: expand the braces.
            paths_named = []
            for base, rest in re.findall(r"\b(crate|super)::([A-Za-z0-9_:]+)", text):
                full = rest if base == "crate" else (parent + "::" + rest if parent else rest)
                paths_named.append(full)
            for base, prefix, inner in re.findall(r"use (crate|super)::([A-Za-z0-9_:]*)\{([^}]*)\}", text):
                root = prefix if base == "crate" else (parent + "::" + prefix if parent else prefix)
                for item in inner.split(","):
                    item = item.strip().split(" as ")[0]
                    if item and item != "self":
                        paths_named.append(root + item)
            for full in paths_named:
                target = resolve(mods, full)
                if target and target != m and not m.startswith(target + "::") and not target.startswith(m + "::"):
                    edges[m].add(target)
            rel = os.path.relpath(path, SRC)
            if re.search(r"\bcandle_(core|nn)\b", text) and top not in CANDLE_LAYERS:
                problems.append(f"{rel}: imports candle (only {', '.join(CANDLE_LAYERS)} may)")
            if re.search(r"\bclap::", text) and m not in CLAP_FILES:
                problems.append(f"{rel}: imports clap (only cli.rs may)")
    for m, targets in edges.items():
        top = m.split("::")[0]
        if top in NEVER:
            for t in sorted(targets):
                t_top = t.split("::")[0]
                if t_top == top:
                    continue
                if NEVER[top] is None or t_top in NEVER[top]:
                    problems.append(f"{m} -> {t}: {top}/ must not depend on {t_top}")
    # Cycles between files (Tarjan's strongly connected components).
    index, low, stack, on, counter = {}, {}, [], set(), [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                problems.append("import cycle: " + " <-> ".join(sorted(component)))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    for p in problems:
        print(p)
    count = sum(len(e) for e in edges.values())
    print(f"layers: {len(mods)} modules, {count} imports, {len(problems)} broken rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
