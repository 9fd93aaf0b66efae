#!/usr/bin/env python3
"""A push destination whose name takes longer to resolve than push_timeout
(a name server that is slow or gone): kebun times the attempt out, retries
without starting a second lookup on top of the first, and goes live once
an answer comes. A lookup that outlived its attempt once crashed kebun.

The slow name server is slowdns.so preloaded into kebun: only the
destination's host name is slowed down, and it resolves to 127.0.0.1."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
import platforms  # noqa: E402

SLOW_MS = 2200
HOST = "slow-dns.invalid"


def main():
    shim = os.environ.get("KEBUN_SLOWDNS")
    t.require(shim and os.path.exists(shim), "slowdns.so is built", shim, "a path")
    plat = platforms.Nginx(t.tempdir("kebun-dns-"), "platform", {"live": ""})
    saved = dict(os.environ)
    os.environ.update({
        "LD_PRELOAD": shim,
        "KEBUN_TEST_SLOW_HOST": HOST,
        "KEBUN_TEST_SLOW_MS": str(SLOW_MS),
        # ASan wants to come first among the loaded libraries; the shim
        # only wraps getaddrinfo, so the order does not matter here.
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0") +
        ":verify_asan_link_order=0",
    })
    try:
        kb = t.Kebun(server_extra="push_timeout = 1s\npush_retry_min = 500ms\n"
                     "push_retry_max = 1s",
                     stream_extra={"demo": "push = rtmp://%s:%d/live/platform-key name=slow"
                                   % (HOST, plat.port)})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    pub = t.publish_loop(kb.url(t.KEY), size="320x240", gop=30)
    t.require(kb.wait_log("publish started", after=0, timeout=10), "publisher live")
    timed_out = kb.wait_log("push slow: timed out resolving", after=0, timeout=5)
    t.check(timed_out, "an attempt whose lookup takes longer than push_timeout times out")
    live = kb.wait_log("push slow: live", after=timed_out or 0, timeout=8)
    t.check(live, "a later attempt takes the late answer and goes live")
    t.check(kb.proc.poll() is None, "kebun is still running", kb.proc.returncode, None)
    text = kb.log()
    t.check(not re.search(r"AddressSanitizer|runtime error|SEGV", text),
            "no memory error while lookups outlive their attempts")
    # nginx records what it receives: a file with frames in it.
    got = t.wait_until(lambda: [f for f in plat.recordings("live") if t.flv_seconds(f) > 0], 10,
                       interval=0.2)
    t.check(len(got) >= 1, "the platform receives the stream", plat.recordings("live"),
            "one recording")
    t.stop(pub)
    kb.stop()
    plat.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
