#!/usr/bin/env python3
"""The sanitizer build reports what kbtest looks for in kebun's log.

kbtest's Kebun.stop() fails a test when kebun's log holds "ERROR:
LeakSanitizer", "ERROR: AddressSanitizer" or "runtime error:", and when
kebun exits non-zero. This runs a program that leaks, overflows a heap
block and overflows a signed integer, one at a time, with the options
kbtest gives kebun, and checks that each fault gives that line and a
non-zero exit: a sanitizer runtime that stopped working (LeakSanitizer
under ptrace, a runtime that does not match the compiler) would otherwise
pass every test without looking.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402


def main():
    canary = sys.argv[1]
    env = t.sanitizer_env()
    for what, line in (("leak", "ERROR: LeakSanitizer: detected memory leaks"),
                       ("overflow", "ERROR: AddressSanitizer: heap-buffer-overflow"),
                       ("undefined", "runtime error: signed integer overflow")):
        r = t.run([canary, what], env=env, timeout=60)
        t.check(r.returncode != 0 and line in r.stderr,
                "%s: reported (%s) and the exit status is not 0" % (what, line),
                (r.returncode, r.stderr[-400:]), ("!= 0", line))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
