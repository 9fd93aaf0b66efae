#!/usr/bin/env python3
"""Stream keys, two streams at once, publisher takeover, unpublish and return.

- A wrong key, a missing key and the public name are refused with
  NetStream.Publish.BadName and a log line that names no key.
- Two streams published at once stay separate.
- A second publisher with the right key takes over from a silent (half-open)
  one; a player keeps receiving across the handover with monotonic
  timestamps.
- When the publisher leaves, a player gets NetStream.Play.UnpublishNotify,
  stays connected, and receives the stream again when a publisher returns.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from rtmpclient import Client  # noqa: E402

KEY2 = "second-stream-key-42"


def refused(kb):
    mark = kb.mark()
    for key, what in (("wrong-key-123456", "a wrong key"), ("demo", "the public name"),
                      ("", "an empty key")):
        c = Client("127.0.0.1", kb.port)
        m, v = c.connect()
        msid = c.create_stream()
        m, v = c.publish(key, msid)
        code = v[3].get("code") if len(v) > 3 and isinstance(v[3], dict) else v
        t.check(code == "NetStream.Publish.BadName", "publish with %s refused with BadName" % what,
                code, "NetStream.Publish.BadName")
        c.close()
    t.check(kb.wait_log("publish refused (unknown stream key)", after=mark),
            "log: unknown stream key")
    t.check(kb.wait_re(r"stream=demo peer=127\.0\.0\.1:\d+ publish refused \(that is the "
                       r"public name", after=mark),
            "log: publishing the public name is refused and names the stream")

    # ffmpeg with a wrong key fails instead of streaming into the void.
    pub = t.publish(kb.url("not-the-key-0000"), 3, size="160x120")
    code = pub.wait(30)
    t.check(code != 0, "ffmpeg publishing with a wrong key exits with an error", code, "!= 0")

    # Playing an unknown stream, or playing by the secret key, is refused.
    for name in ("nosuchstream", t.KEY):
        c = Client("127.0.0.1", kb.port)
        c.connect()
        msid = c.create_stream()
        m, v = c.play(name, msid)
        code = v[3].get("code") if len(v) > 3 and isinstance(v[3], dict) else v
        t.check(code == "NetStream.Play.StreamNotFound", "play of %r refused" %
                ("the key" if name == t.KEY else name), code, "NetStream.Play.StreamNotFound")
        c.close()

    # Connecting to another application is refused.
    c = Client("127.0.0.1", kb.port)
    m, v = c.connect(app="nosuchapp")
    t.check(v[0] == "_error" and v[3].get("code") == "NetConnection.Connect.Rejected",
            "connect to an unknown application refused", v, "_error Connect.Rejected")
    c.close()
    # A whole URL pasted as the server ("live/KEY"): refused, key not logged
    # (the end of the test checks the log holds no key).
    mark = kb.mark()
    c = Client("127.0.0.1", kb.port)
    m, v = c.connect(app="live/" + t.KEY)
    t.check(v[0] == "_error" and kb.wait_log("unknown application 'live/****'", after=mark,
                                             timeout=3),
            "an application name holding the key is refused and logged with the key masked",
            v[0], "_error, live/**** in the log")
    c.close()


def two_streams(kb):
    mark = kb.mark()
    p1 = t.publish_loop(kb.url(t.KEY), size="320x240")
    p2 = t.publish_loop(kb.url(KEY2), size="640x360")
    t.require(kb.wait_re(r"stream=demo peer=\S+ publish started", after=mark) and
              kb.wait_re(r"stream=second peer=\S+ publish started", after=mark),
              "both streams published")
    a = t.streams_by_type(t.probe(kb.url("demo"))).get("video", {})
    b = t.streams_by_type(t.probe(kb.url("second"))).get("video", {})
    t.check((a.get("width"), a.get("height")) == (320, 240), "stream demo carries its own video",
            (a.get("width"), a.get("height")), (320, 240))
    t.check((b.get("width"), b.get("height")) == (640, 360), "stream second carries its own video",
            (b.get("width"), b.get("height")), (640, 360))
    for p in (p1, p2):
        t.stop(p)


def watch(c, seconds, media_n=None, code=None):
    """Read media for up to `seconds`, or until more than `media_n` media
    messages and the status `code` (either or both) came; return [(type,
    ts)] and the status codes seen."""
    media, codes = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (media_n is not None or code) and (media_n is None or len(media) > media_n) and \
                (code is None or code in codes):
            break
        try:
            m = c.read_message(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if m.type in (8, 9):
            media.append((m.type, m.ts))
        elif m.type == 20:
            v = m.amf()
            if v and v[0] == "onStatus" and isinstance(v[3], dict):
                codes.append(v[3].get("code"))
    return media, codes


def takeover_and_return(kb):
    # The player arrives first and stays for the whole test.
    c = Client("127.0.0.1", kb.port)
    c.connect()
    msid = c.create_stream()
    m, v = c.play("demo", msid)
    t.require(v[3].get("code") == "NetStream.Play.Start", "player started", v, "Play.Start")

    mark = kb.mark()
    a = t.publish_loop(kb.url(t.KEY), size="320x240")
    t.require(kb.wait_log("publish started", after=mark), "the first publisher is live")
    media1, _ = watch(c, 3, media_n=50)
    t.require(len(media1) > 50, "player receives the first publisher", len(media1), "> 50")

    # The phone loses its network: its connection stays open but silent.
    os.kill(a.pid, signal.SIGSTOP)
    mark = kb.mark()
    b = t.publish(kb.url(t.KEY), 4, size="320x240")
    t.check(kb.wait_log("publisher replaced by", after=mark),
            "a new publisher with the key takes over")
    t.check(kb.wait_re(r"publish stopped after [0-9.]+ s, \d+ messages, \d+ bytes \(replaced "
                       r"by a new publisher\)", after=mark, timeout=3),
            "the replaced publisher's session ends with its own 'publish stopped' line "
            "(duration, messages, bytes)")
    media2, _ = watch(c, 3, media_n=50)
    t.check(len(media2) > 50, "player keeps receiving after the takeover", len(media2), "> 50")
    os.kill(a.pid, signal.SIGCONT)
    code = a.wait(15)
    t.check(code != 0, "the replaced publisher was disconnected", code, "!= 0")

    ts = [x[1] for x in media1 + media2 if x[0] == 9]
    back = [(x, y) for x, y in zip(ts, ts[1:]) if y < x]
    t.check(not back, "video timestamps stay monotonic across the takeover", back[:3], [])

    # b ends after 4 s: the player is told and stays connected.
    b.wait(30)
    _, codes = watch(c, 2, code="NetStream.Play.UnpublishNotify")
    t.check("NetStream.Play.UnpublishNotify" in codes, "player told of the unpublish", codes,
            "UnpublishNotify")
    c.command("getStreamLength", None, "demo", msid=msid)
    m, v = c.wait_command(("_result",))
    t.check(v[0] == "_result", "player still connected after the unpublish", v[0], "_result")

    last = ts[-1] if ts else 0
    mark = kb.mark()
    p = t.publish(kb.url(t.KEY), 4, size="320x240")
    t.check(kb.wait_log("publish started", after=mark), "the publisher returns")
    media3, codes = watch(c, 3, media_n=30, code="NetStream.Play.PublishNotify")
    t.check("NetStream.Play.PublishNotify" in codes, "player told the publisher is back", codes,
            "PublishNotify")
    t.check(len(media3) > 30, "player receives the returning publisher", len(media3), "> 30")
    ts3 = [x[1] for x in media3 if x[0] == 9]
    t.check(ts3 and ts3[0] > last, "the timeline continues after the return",
            (ts3[0] if ts3 else None, last), "first > last")
    p.wait(30)
    c.close()


def run(part):
    """One part on its own kebun, whose log must never show a key."""
    def case():
        kb = t.Kebun(streams={"demo": t.KEY, "second": KEY2})
        part(kb)
        text = kb.stop()
        for key in (t.KEY, KEY2, "wrong-key-123456", "not-the-key-0000"):
            t.check(key not in text, "key %s... never appears in the log" % key[:3])
    return case


if __name__ == "__main__":
    sys.exit(t.main({"refused": run(refused), "two_streams": run(two_streams),
                     "takeover": run(takeover_and_return)}))
