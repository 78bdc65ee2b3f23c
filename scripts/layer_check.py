#!/usr/bin/env python3
"""layer_check.py - the server's modules must form layers, not circles.

usage: layer_check.py [-v] OBJECT.o|DIRECTORY...

A directory stands for every *.o below it (make test passes the object
directories of the core library and of the daemon).  Fewer than
MIN_MODULES modules is a usage error, so that a build that moved its
objects elsewhere cannot pass by checking nothing.

Reads the symbols each object file defines and uses (nm), draws an edge
A -> B when unit A uses a symbol that unit B defines, and reports every
group of units that depend on each other in a circle (strongly connected
components of more than one unit).  The SMTP command files (smtp_*.c other
than the pure parser smtp_parse.c) share the session's helpers and count as
one module, "smtp"; the transaction's files (tx.c, tx_*.c: one header,
tx.h) are one module, "tx".  Prints the modules bottom-up with what each uses;
exits 1 when there is a circle, 2 on a usage error.
"""
import os
import re
import subprocess
import sys


def module_of(obj):
    """server/smtp_bdat.c.o -> smtp; server/tx_edit.c.o -> tx;
    server/chain.c.o -> chain"""
    name = os.path.basename(obj)
    name = re.sub(r"\.c\.o$|\.o$", "", name)
    if name.startswith("smtp_") and name != "smtp_parse":
        return "smtp"
    if name.startswith("tx_"):
        return "tx"
    return name


def symbols(obj):
    """(defined, undefined) global symbol names of one object file."""
    out = subprocess.run(["nm", "-g", "--defined-only", obj], capture_output=True,
                         text=True, check=True).stdout
    defined = {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}
    out = subprocess.run(["nm", "-g", "--undefined-only", obj], capture_output=True,
                         text=True, check=True).stdout
    undefined = {line.split()[-1] for line in out.splitlines() if line.split()}
    return defined, undefined


def strongly_connected(graph):
    """Tarjan's algorithm.  The components come dependencies first: each
    one after every component it uses, so the list reads bottom-up."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


MIN_MODULES = 10


def object_files(args):
    """The object files named, directories expanded (sorted)."""
    out = []
    for a in args:
        if os.path.isdir(a):
            for root, _dirs, files in os.walk(a):
                out += [os.path.join(root, f) for f in sorted(files) if f.endswith(".o")]
        else:
            out.append(a)
    return out


def main(argv):
    verbose = "-v" in argv
    objs = object_files([a for a in argv if a != "-v"])
    if not objs:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    if len({module_of(o) for o in objs}) < MIN_MODULES:
        print("layer check: only %d modules in %s: not the server's objects?"
              % (len({module_of(o) for o in objs}), " ".join(argv)), file=sys.stderr)
        return 2
    defined_by, uses = {}, {}
    for obj in objs:
        mod = module_of(obj)
        d, u = symbols(obj)
        for sym in d:
            defined_by.setdefault(sym, mod)
        uses.setdefault(mod, set()).update(u)
    graph, why = {}, {}
    for mod, used in uses.items():
        graph[mod] = set()
        for sym in used:
            target = defined_by.get(sym)
            if target is not None and target != mod:
                graph[mod].add(target)
                why.setdefault((mod, target), []).append(sym)
    comps = strongly_connected(graph)
    circles = [c for c in comps if len(c) > 1]
    print("layer check: %d modules, %d edges, %d circle(s)"
          % (len(graph), sum(len(v) for v in graph.values()), len(circles)))
    for comp in comps:
        for mod in comp:
            deps = sorted(graph[mod])
            print("  %-12s uses %s" % (mod, ", ".join(deps) if deps else "-"))
    for comp in circles:
        print("circle: %s" % " <-> ".join(comp))
        for a in comp:
            for b in comp:
                if b in graph[a]:
                    syms = sorted(why[(a, b)])
                    shown = syms if verbose else syms[:4]
                    more = "" if len(shown) == len(syms) else " (+%d more)" % (len(syms) - len(shown))
                    print("  %s -> %s: %s%s" % (a, b, ", ".join(shown), more))
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
