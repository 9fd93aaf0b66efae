#!/usr/bin/env python3
"""The command line: --check-config, --version, --help, --listen, and the
errors a user sees for a broken config or a port already taken."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402


def main():
    kb = t.KEBUN
    example = os.path.join(t.SRCDIR, "config", "kebun.conf")
    r = t.run([kb, "-c", example, "--check-config"])
    t.check(r.returncode == 0 and "ok" in r.stdout, "the example config is valid",
            (r.returncode, r.stdout + r.stderr), 0)
    r = t.run([kb, "--check-config", example])
    t.check(r.returncode == 0 and r.stdout.startswith(example + ": ok"),
            "kebun --check-config FILE works too", (r.returncode, r.stdout), example + ": ok")

    # docs/CONFIG.md carries the key reference printed from the key table.
    r = t.run([kb, "--config-reference"])
    with open(os.path.join(t.SRCDIR, "docs", "CONFIG.md")) as f:
        doc = f.read()
    t.check(r.returncode == 0 and r.stdout.strip() and r.stdout in doc,
            "docs/CONFIG.md contains the current --config-reference output",
            "run: kebun --config-reference and paste it into docs/CONFIG.md", "identical")

    r = t.run([kb, "--version"])
    t.check(r.returncode == 0 and r.stdout.startswith("kebun "), "--version prints the version",
            r.stdout, "kebun X.Y.Z")
    r = t.run([kb, "--help"])
    t.check(r.returncode == 0 and "--check-config" in r.stdout and "--listen" in r.stdout,
            "--help lists the options", r.stdout[:80], "usage")
    r = t.run([kb, "--frobnicate"])
    t.check(r.returncode == 2, "an unknown option exits 2", r.returncode, 2)
    r = t.run([kb, "--listen", "nonsense", "-c", example, "--check-config"])
    t.check(r.returncode == 2 and "--listen 'nonsense'" in r.stderr,
            "a bad --listen is refused clearly", r.stderr, "--listen 'nonsense' ...")

    d = t.tempdir("kebun-cli-")
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:1935\nchunk_sise = 4096\n\n[stream demo]\n"
                "key = tiny\n")
    r = t.run([kb, "-c", bad, "--check-config"])
    t.check(r.returncode == 1, "a broken config exits 1", r.returncode, 1)
    t.check(bad + ":3: [server]: unknown key 'chunk_sise' (did you mean 'chunk_size'?)" in r.stderr,
            "error names file, line and key, with a suggestion", r.stderr, "FILE:3: ... chunk_sise")
    t.check(bad + ":6: [stream demo] key:" in r.stderr and "tiny" not in r.stderr,
            "a bad key is reported without echoing the secret", r.stderr, "FILE:6: ... no value")
    r = t.run([kb, "-c", os.path.join(d, "missing.conf"), "--check-config"])
    t.check(r.returncode == 1 and "cannot open" in r.stderr, "a missing config is reported",
            r.stderr, "cannot open")

    # The port is taken: kebun says which address and exits non-zero.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    r = t.run([kb, "-c", example, "--listen", "127.0.0.1:%d" % port], timeout=10)
    t.check(r.returncode == 3 and ("cannot listen on 127.0.0.1:%d" % port) in r.stderr,
            "a taken port gives a clear error", (r.returncode, r.stderr[-200:]), 3)
    taken.close()

    # --listen replaces the config's addresses (the example says 0.0.0.0:1935).
    port = t.free_port()
    p = t.spawn([kb, "-c", example, "--listen", "127.0.0.1:%d" % port])

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    t.check(t.wait_until(listening, 10), "--listen overrides the config's listen address")
    code = t.stop(p)
    t.check(code == 0, "kebun exits 0 on SIGTERM", code, 0)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
