"""Turns callgrind profiles of the daemon into an lld symbol-ordering file (stdout).

Usage: hot-functions.py LINK_MAP SYMBOLS CALLGRIND_OUT...
LINK_MAP is lld's -Map output, SYMBOLS lines of "name address size" (nm -S -t d). A function
is listed when callgrind saw it run in the fastgw binary, unless it (or a local copy of the
same name: merged helpers such as objectdestroyTm exist once per object file) sits in a text
section over 64 KiB. lld moves whole input sections, and the static Swift libraries still
hold a few text sections of hundreds of KiB; ordering one of them would drag the whole blob
into the hot region (measured: more resident memory, not less).
"""
import bisect
import collections
import re
import sys

LARGE = 64 * 1024


def executed(paths):
    """Function names callgrind attributes to the fastgw binary, in first-seen order."""
    seen = {}
    for path in paths:
        objects, functions = {}, {}
        current = called = None
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
            if m:
                kind, key, name = m.groups()
                if name:
                    objects[key] = name
                if kind == "ob":
                    current = objects.get(key)
                else:
                    called = objects.get(key)
                continue
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
            if not m:
                continue
            kind, key, name = m.groups()
            if name:
                functions[key] = name
            owner = current if kind == "fn" else called
            if kind == "fn":
                called = current
            name = functions.get(key)
            if owner and owner.endswith("/fastgw") and name:
                seen.setdefault(name.split("'")[0], True)
    return list(seen)


def text_sections(map_path):
    line_re = re.compile(r"^\s*([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+(\d+)\s+(\S.*)$")
    sections, output = [], None
    for line in open(map_path):
        m = line_re.match(line)
        if not m:
            continue
        rest = m.group(5)
        if rest.startswith(".") and ":(" not in rest and len(line) - len(line.lstrip()) < 20:
            output = rest
        elif output == ".text" and ":(" in rest:
            sections.append((int(m.group(1), 16), int(m.group(3), 16)))
    return sections


def main():
    map_path, symbols_path, *profiles = sys.argv[1:]
    sections = text_sections(map_path)
    starts = [s[0] for s in sections]
    addresses = collections.defaultdict(list)
    for line in open(symbols_path):
        name, address, _ = line.rsplit(" ", 2)
        addresses[name].append(int(address))
    for name in sorted(executed(profiles)):
        found = addresses.get(name)
        if not found:
            continue
        if any(sections[bisect.bisect_right(starts, a) - 1][1] > LARGE for a in found):
            continue
        print(name)


main()
