#!/usr/bin/env python3
"""Stopping kebun while it records (SIGTERM in the middle of a broadcast).

- Every open recording is closed properly: the playlist ends with
  EXT-X-ENDLIST, meta.json has its end time and says "complete", and with
  export_mp4 on kebun waits (up to shutdown_timeout) for recording.mp4,
  which ffprobe and ffmpeg read without an error.
- With a tiny shutdown_timeout and an export slowed down (libslowopen.so,
  preloaded: every segment read takes 400 ms), kebun does not wait for it:
  it exits at once, the export is left pending (meta.json export_pending,
  no recording.mp4, no temp file), and the next start makes it.
"""
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from test_recording import decode_errors, meta, recordings  # noqa: E402

SLOW_MS = 400


def segments(rec):
    try:
        with open(os.path.join(rec, "index.m3u8")) as f:
            return [l for l in f.read().splitlines() if l and not l.startswith("#")]
    except OSError:
        return []


def wait_segments(kb, n, timeout=20):
    """Until the broadcast's recording lists n segments; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recs = recordings(kb)
        if recs and len(segments(recs[-1])) >= n:
            return recs[-1]
        time.sleep(0.1)
    return None


def check_closed(rec, what):
    with open(os.path.join(rec, "index.m3u8")) as f:
        pl = f.read()
    t.check(pl.endswith("#EXT-X-ENDLIST\n"), what + ": the playlist ends with EXT-X-ENDLIST",
            pl[-60:], "...#EXT-X-ENDLIST")
    m = meta(rec)
    t.check(m.get("status") == "complete" and m.get("end"), what + ": meta.json complete, with "
            "its end time", (m.get("status"), m.get("end")), ("complete", "a time"))
    err = decode_errors(os.path.join(rec, "index.m3u8"))
    t.check(err == "", what + ": every listed segment decodes", err[-500:], "")
    return m


def check_mp4(rec, what):
    mp4 = os.path.join(rec, "recording.mp4")
    info = t.probe(mp4)
    st = t.streams_by_type(info)
    t.check("video" in st and "audio" in st, what + ": recording.mp4 has video and audio",
            sorted(st), ["audio", "video"])
    pl = float(t.probe(os.path.join(rec, "index.m3u8")).get("format", {}).get("duration", 0) or 0)
    d = float(info.get("format", {}).get("duration", 0) or 0)
    t.check(pl > 0 and abs(d - pl) < 0.2, what + ": recording.mp4 lasts as long as the playlist",
            d, pl)
    err = decode_errors(mp4)
    t.check(err == "", what + ": recording.mp4 decodes without an error", err[-500:], "")


def waited():
    """SIGTERM while live: the recording is closed and exported before exit."""
    kb = t.Kebun(server_extra="segment_duration = 1s\nshutdown_timeout = 20s",
                 stream_extra={"demo": "record = on"})
    pub = t.publish_loop(kb.url(t.KEY), size="320x240")
    rec = wait_segments(kb, 3)
    t.require(rec, "the broadcast is being recorded (3 segments listed)")
    t.check(meta(rec).get("status") == "live", "still live when SIGTERM comes",
            meta(rec).get("status"), "live")
    text = kb.stop()
    t.stop(pub)
    m = check_closed(rec, "SIGTERM")
    t.check((m.get("export"), m.get("export_pending")) == ("recording.mp4", False),
            "the export was made before kebun exited", (m.get("export"), m.get("export_pending")),
            ("recording.mp4", False))
    check_mp4(rec, "SIGTERM")
    t.check("left for the next start" not in text, "nothing is left for the next start",
            [l for l in text.splitlines() if "left for" in l], [])


def cut_off():
    """A slow export and shutdown_timeout = 100ms: left pending, made at the
    next start."""
    shim = os.path.join(os.path.dirname(os.path.dirname(t.KEBUN)), "tests", "recorder",
                        "libslowopen.so")
    t.require(os.path.exists(shim), "libslowopen.so is built (tests/recorder)", shim, "a path")
    saved = dict(os.environ)
    os.environ.update({
        "LD_PRELOAD": shim,
        "KEBUN_TEST_SLOW_SUFFIX": ".m4s",
        "KEBUN_TEST_SLOW_MS": str(SLOW_MS),
        # ASan wants to come first among the loaded libraries; the shim
        # only wraps open, so the order does not matter here.
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0") +
        ":verify_asan_link_order=0",
    })
    extra = "segment_duration = 1s\nshutdown_timeout = 100ms"
    try:
        kb = t.Kebun(server_extra=extra, stream_extra={"demo": "record = on"})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    pub = t.publish_loop(kb.url(t.KEY), size="320x240")
    rec = wait_segments(kb, 4)
    t.require(rec, "the broadcast is being recorded (4 segments listed)")
    started = time.monotonic()
    text = kb.stop()
    took = time.monotonic() - started
    t.stop(pub)
    # Reading 5 or more segments at 400 ms each: well over 2 s.
    t.check(took < 2.0, "kebun exits without waiting for the slow export", "%.2f s" % took,
            "< 2 s")
    t.check("exports still running after 0.1 s (shutdown_timeout)" in text,
            "the timeout is logged", [l for l in text.splitlines() if "shutdown" in l], "")
    m = check_closed(rec, "cut off")
    t.check((m.get("export"), m.get("export_pending")) == (None, True),
            "the export is left pending", (m.get("export"), m.get("export_pending")),
            (None, True))
    t.check(not os.path.exists(os.path.join(rec, "recording.mp4")), "no recording.mp4 yet")
    t.check(not glob.glob(os.path.join(rec, ".*.tmp")) and not glob.glob(os.path.join(rec, "*.tmp")),
            "no temp file left", os.listdir(rec), "no .tmp")
    # The next start, without the slow disk.
    kb2 = t.Kebun(server_extra=extra, stream_extra={"demo": "record = on"}, dir=kb.dir)
    t.check(kb2.wait_log("exporting demo/%s (left from the last run)" % os.path.basename(rec),
                         after=0, timeout=10),
            "the next start takes the export up")
    t.check(kb2.wait_log("exported %s/recording.mp4" % os.path.basename(rec), after=0,
                         timeout=20),
            "and makes it")
    kb2.stop()
    m = meta(rec)
    t.check((m.get("export"), m.get("export_pending")) == ("recording.mp4", False),
            "meta.json: exported, nothing pending", (m.get("export"), m.get("export_pending")),
            ("recording.mp4", False))
    check_mp4(rec, "next start")


def main():
    waited()
    cut_off()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
