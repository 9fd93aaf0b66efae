#!/usr/bin/env python3
"""The recorder's front (recorder.c) is the only file that knows the
recorder: no other object in libkbrecorder.a refers to a symbol it
defines (kb_recorder_*, kb__recorder_*), so the worker-side files
(recording.c, export.c, meta.c, recover.c, retention.c, jobs.c, ...) can
neither call back into it nor reach its handles. Read from the objects
themselves with nm, so a call that sneaks back in fails this test.

    layers.py LIBKBRECORDER.a
"""
import subprocess
import sys


def main():
    lib = sys.argv[1]
    out = subprocess.run(["nm", "-A", lib], capture_output=True, text=True, check=True).stdout
    defined, undefined = {}, []
    for line in out.splitlines():
        # "lib.a:member.o:ADDR T name" or "lib.a:member.o:                 U name"
        head, _, rest = line.rpartition(":")
        member = head.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        parts = rest.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        if kind == "U":
            undefined.append((member, name))
        elif kind in ("T", "D", "B", "R"):
            defined.setdefault(member, set()).add(name)
    front = defined.get("recorder.c.o")
    if not front:
        print("FAIL: no recorder.c.o in %s" % lib)
        return 1
    bad = sorted((m, n) for m, n in undefined if n in front and m != "recorder.c.o")
    workers = sorted(m for m in defined if m != "recorder.c.o")
    if bad:
        for m, n in bad:
            print("FAIL: %s calls %s, which the front (recorder.c) defines" % (m, n))
        return 1
    print("ok: %d objects (%s) use none of the %d symbols recorder.c defines" %
          (len(workers), ", ".join(workers), len(front)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
