#!/usr/bin/env python3
"""Fan-out: instant start from the GOP cache, and a stalled player is bounded.

- A player joining mid-GOP gets metadata, sequence headers and the cached
  GOP at once (its first messages span most of a GOP of stream time); with
  gop_cache off it starts at the next keyframe with no backlog.
- A player that stops reading (ffmpeg frozen with SIGSTOP) does not raise
  kebun's RSS by more than its queue bound while another player keeps
  receiving in real time; kebun logs and counts the skipped messages.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from rtmpclient import Client  # noqa: E402

QUEUE = 1024 * 1024  # player_queue in this test


def first_messages(kb, name):
    """Play and return (messages within 300 ms of the first media, time to it)."""
    c = Client("127.0.0.1", kb.port)
    c.connect()
    msid = c.create_stream()
    start = time.monotonic()
    c.play(name, msid)
    got, first_at = [], None
    while time.monotonic() - start < 6:
        m = c.read_message(timeout=6)
        if m.type not in (8, 9, 18):
            continue
        now = time.monotonic()
        is_hdr = len(m.payload) > 1 and m.payload[1] == 0
        if first_at is None and m.type in (8, 9) and not is_hdr:
            first_at = now
        if first_at is not None and now - first_at > 0.3:
            break
        got.append(m)
    c.close()
    return got, (first_at or time.monotonic()) - start


def is_key(m):
    return m.type == 9 and len(m.payload) > 1 and m.payload[0] >> 4 == 1 and m.payload[1] == 1


def gop_cache(kb):
    # 2 s GOPs; join mid-GOP.
    p1 = t.publish_lavfi(kb.url(t.KEY), 12, size="320x240", gop=60)
    p2 = t.publish_lavfi(kb.url("nocache-key-0001"), 12, size="320x240", gop=60)
    t.require(kb.wait_log("stream=nocache peer=127.0.0.1") and kb.wait_log("stream=demo"),
              "both streams published")
    time.sleep(3.0)
    for name, cached in (("demo", True), ("nocache", False)):
        msgs, wait = first_messages(kb, name)
        types = [m.type for m in msgs]
        t.check(18 in types[:3], "%s: onMetaData comes first" % name, types[:3], "18 first")
        hdrs = [m for m in msgs[:4] if m.type in (8, 9) and len(m.payload) > 1 and m.payload[1] == 0]
        t.check(len(hdrs) == 2, "%s: AVC and AAC sequence headers before media" % name,
                len(hdrs), 2)
        media = [m for m in msgs if m.type == 9 and not (m.payload[1] == 0)]
        t.check(media and is_key(media[0]), "%s: first video frame is a keyframe" % name,
                media[0].payload[:2].hex() if media else None, "17 01")
        span = (media[-1].ts - media[0].ts) if media else 0
        if cached:
            t.check(span >= 400, "demo: the cached GOP arrives at once (>= 400 ms of stream in "
                    "the first 300 ms)", span, ">= 400")
        else:
            t.check(span < 400, "nocache: no backlog, starts at the next keyframe", span, "< 400")
        t.log("%s: first media after %.0f ms" % (name, wait * 1000))
    t.stop(p1)
    t.stop(p2)


def slow_player(kb):
    clip = t.make_clip(os.path.join(kb.dir, "noise.flv"), 10, noise=True, bitrate="16M")
    pub = t.publish_file(kb.url(t.KEY), clip, loop=True)
    t.require(kb.wait_log("publish started"), "16 Mbit/s publisher started")
    time.sleep(1)

    # The stalled player: a real ffmpeg, frozen once it is receiving.
    stalled = t.record(kb.url("demo"), "/dev/null")
    time.sleep(2)
    os.kill(stalled.pid, signal.SIGSTOP)

    healthy = Client("127.0.0.1", kb.port)
    healthy.connect()
    healthy.play("demo", healthy.create_stream())

    def read_for(seconds):
        first_ts = last_ts = None
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            m = healthy.read_message(timeout=5)
            if m.type in (8, 9):
                n += 1
                if first_ts is None:
                    first_ts = m.ts
                last_ts = m.ts
        return n, (last_ts or 0) - (first_ts or 0)

    # Kernel socket buffers fill first (several MB on loopback); after that
    # every byte the stalled player is owed would stay in kebun.
    read_for(5)
    rss0 = t.rss_kib(kb.proc.pid)
    n, span = read_for(8)
    rss1 = t.rss_kib(kb.proc.pid)
    growth = rss1 - rss0
    t.log("kebun RSS %d -> %d KiB (+%d KiB) while 16 MB went past the stalled player" %
          (rss0, rss1, growth))
    t.check(growth < QUEUE // 1024 + 3072, "RSS grows by less than the player bound + 3 MiB",
            growth, "< %d KiB" % (QUEUE // 1024 + 3072))
    t.check(span >= 6500, "the healthy player kept receiving in real time (8 s of stream in "
            "8 s)", span, ">= 6500 ms")
    t.check(kb.wait_log("player too slow, skipping to the next keyframe"),
            "kebun logs that the stalled player skips")
    os.kill(stalled.pid, signal.SIGKILL)
    stalled.wait()
    # Its end is logged with the count of what it skipped.
    dropped = []
    deadline = time.monotonic() + 10
    while not dropped and time.monotonic() < deadline:
        dropped = [l for l in kb.log().splitlines()
                   if "play stopped" in l and " 0 messages dropped" not in l]
        time.sleep(0.1)
    t.check(len(dropped) == 1, "the stalled player's end is logged with a non-zero drop count",
            dropped, "one line, N > 0 messages dropped")
    healthy.close()
    t.stop(pub)


def main():
    kb = t.Kebun(streams={"demo": t.KEY, "nocache": "nocache-key-0001"},
                 server_extra="player_queue = %d" % QUEUE,
                 stream_extra={"nocache": "gop_cache = off"},
                 # Under AddressSanitizer freed memory sits in a quarantine
                 # and would read as growth; with none, RSS means the same
                 # in both builds.
                 asan_options="quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    gop_cache(kb)
    slow_player(kb)
    kb.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
