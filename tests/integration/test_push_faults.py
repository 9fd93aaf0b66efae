#!/usr/bin/env python3
"""Push faults and the publish conversation, seen from the platform's side.

A scripted platform (fakeplatform.py) records everything kebun sends, which
nginx-rtmp cannot show. Two streams run at once, each published by ffmpeg
copying a clip:

demo (about 1 Mbit/s) goes to eight platforms:
- bad answers publish with NetStream.Publish.BadName: kebun's status names
  it and keeps retrying after a backoff, while good stays live;
- good shows the conversation: connect (tcUrl, app, flashVer,
  type=nonprivate), releaseStream, FCPublish, createStream, publish, then
  @setDataFrame/onMetaData before any media, a video sequence header then a
  keyframe, timestamps from 0 and monotonic; SIGUSR1 status fields; after a
  SIGHUP it keeps its connection; after the grace period it gets
  FCUnpublish and deleteStream;
- tlsca, tlssys, tlsoff are RTMPS platforms with a certificate from a test
  CA: trusted with ca= (SNI localhost), refused against the system store,
  accepted with verify=off (and a warning); tlsoff is removed by SIGHUP;
- v6 is reached at an IPv6 literal (tcUrl with brackets), tlsip by RTMPS
  at an IP address (checked against the certificate's IP, no SNI).
heavy (about 12 Mbit/s) goes to a platform that stops reading and to one
that does not, while a player watches: they keep receiving in real time
and the stalled one counts drops, then resumes its video at a keyframe.
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from fakeplatform import FakePlatform  # noqa: E402
from platforms import make_ca  # noqa: E402
from rtmpclient import Client  # noqa: E402

GRACE_S = 2
HEAVY_KEY = "heavy-key-00001"
STALL_WINDOW_S = 8

STATUS_RE = re.compile(
    r"status: push (\S+) (\S+) for \d+ s, (\d+) bytes and (\d+) messages sent, (\d+) bit/s, "
    r"(\d+) dropped \(\d+ video, \d+ audio\), (\d+) reconnects, last error(?: \(at [^)]*\))?: "
    r"(.*)$")


def status(kb, n):
    """SIGUSR1; the n push status lines parsed, by destination name."""
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 3
    lines = []
    while time.monotonic() < deadline:
        lines = [l for l in kb.lines(after=mark) if "status: push " in l]
        if len(lines) >= n:
            break
        time.sleep(0.05)
    out = {}
    for line in lines:
        m = STATUS_RE.search(line)
        if m:
            out[m.group(1)] = {"state": m.group(2), "bytes": int(m.group(3)),
                               "msgs": int(m.group(4)), "bitrate": int(m.group(5)),
                               "drops": int(m.group(6)), "reconnects": int(m.group(7)),
                               "error": m.group(8), "line": line}
    t.check(len(out) == n, "SIGUSR1 logs a parsable status line per destination",
            lines if len(out) != n else len(out), n)
    return out


class Player(threading.Thread):
    """A raw RTMP player recording (timestamp, arrival) of each video message."""

    def __init__(self, kb, name):
        super().__init__(daemon=True)
        self.c = Client("127.0.0.1", kb.port)
        self.c.connect()
        msid = self.c.create_stream()
        m, v = self.c.play(name, msid)
        t.require(v[3].get("code") == "NetStream.Play.Start", "player of %s started" % name,
                  v[3], "NetStream.Play.Start")
        self.video = []
        self.done = threading.Event()
        self.error = None
        self.start()

    def run(self):
        deadline = time.monotonic() + 120
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                m = self.c.read_message(timeout=0.5)
            except TimeoutError:
                continue
            except Exception as e:
                self.error = e
                return
            if m.type == 9:
                self.video.append((m.ts, time.monotonic()))

    def stop(self):
        self.done.set()
        self.join(5)
        self.c.close()


def realtime(what, video, t0, t1):
    """video: [(ts ms, arrival)] in arrival order; checks the window [t0, t1]."""
    w = [(ts, at) for ts, at in video if t0 <= at <= t1]
    want = 30 * (t1 - t0) * 0.8
    t.check(len(w) >= want, what + ": video frames kept arriving", len(w), ">= %d" % want)
    if len(w) < 2:
        return
    ts_gap = max(b[0] - a[0] for a, b in zip(w, w[1:]))
    at_gap = max(b[1] - a[1] for a, b in zip(w, w[1:]))
    back = [(a[0], b[0]) for a, b in zip(w, w[1:]) if b[0] < a[0]]
    pace = (w[-1][0] - w[0][0]) / 1000.0 - (w[-1][1] - w[0][1])
    t.check(ts_gap <= 1000 and not back, what + ": no timestamp gap over 1 s, none backwards",
            (ts_gap, back[:3]), "<= 1000 ms, []")
    t.check(at_gap < 1.0 and abs(pace) < 1.0, what + ": arrives in real time",
            {"longest wait s": round(at_gap, 2), "stream time - wall time s": round(pace, 2)},
            "< 1 s each")


def media_by_type(media, type_):
    return [m for m in media if m.type == type_]


def check_conversation(conn, port):
    """The publish conversation kebun held with the good platform."""
    names = conn.names()
    t.check(names[:5] == ["connect", "releaseStream", "FCPublish", "createStream", "publish"],
            "commands arrive in order connect, releaseStream, FCPublish, createStream, publish",
            names[:6], ["connect", "releaseStream", "FCPublish", "createStream", "publish"])
    obj = conn.connect_obj or {}
    want = {"app": "app", "tcUrl": "rtmp://127.0.0.1:%d/app" % port, "type": "nonprivate"}
    got = {k: obj.get(k) for k in want}
    t.check(got == want, "connect carries app, tcUrl and type=nonprivate", got, want)
    fv = obj.get("flashVer")
    t.check(isinstance(fv, str) and fv.startswith("FMLE/"),
            "connect carries an encoder flashVer (FMLE/...)", fv, "FMLE/...")
    pub = [c for c in conn.commands if c[0] == "publish"]
    args = pub[0][1] if pub else []
    t.check(args[2:4] == ["good-key-0001", "live"] and pub[0][2] == 1,
            "publish names the key and type live on the created stream", (args[2:4], pub[0][2])
            if pub else None, (["good-key-0001", "live"], 1))

    events, media = conn.snapshot()
    first_media = next((i for i, e in enumerate(events) if e[0] == "media"), len(events))
    data_before = [i for i, e in enumerate(events[:first_media]) if e[0] == "data"]
    meta = conn.data[0] if conn.data else []
    t.check(data_before and meta[:2] == ["@setDataFrame", "onMetaData"] and
            isinstance(meta[2] if len(meta) > 2 else None, dict) and meta[2].get("width") == 640,
            "metadata arrives as @setDataFrame + onMetaData before the first media",
            (meta[:2], "before media" if data_before else "not before media"),
            (["@setDataFrame", "onMetaData"], "before media"))
    video = media_by_type(media, 9)
    audio = media_by_type(media, 8)
    t.check(len(video) > 2 and video[0].is_seqhdr and video[1].is_key,
            "the first video messages are the sequence header, then a keyframe", video[:2],
            "[video hdr@0, video key@0]")
    t.check(audio and audio[0].is_seqhdr, "the first audio message is the AAC sequence header",
            audio[:1], "[audio hdr]")
    body = [m for m in media if not m.is_seqhdr]
    t.check(body and body[0].ts <= 100 and video[1].ts <= 100,
            "media timestamps sent to the platform start near 0",
            (body[0].ts if body else None, video[1].ts if len(video) > 1 else None), "<= 100 ms")
    for what, track in (("video", video), ("audio", audio)):
        back = [(a.ts, b.ts) for a, b in zip(track, track[1:]) if b.ts < a.ts]
        gaps = [(a.ts, b.ts) for a, b in zip(track, track[1:]) if b.ts - a.ts > 1000]
        t.check(len(track) > 50 and not back and not gaps,
                "%s timestamps to the platform are monotonic without gaps" % what,
                (len(track), back[:3], gaps[:3]), "> 50 messages, [], []")


def main():
    started = time.monotonic()
    base = t.tempdir("kebun-push-faults-")
    certs = make_ca(base, "test")
    clip = t.make_clip(10, bitrate="1M")
    heavy_clip = t.make_clip(10, bitrate="12M", noise=True)
    src_bps = os.path.getsize(clip) * 8 / 10.0

    bad = FakePlatform("bad", badname=True)
    good = FakePlatform("good")
    tlsca = FakePlatform("tlsca", tls=certs)
    tlssys = FakePlatform("tlssys", tls=certs)
    tlsoff = FakePlatform("tlsoff", tls=certs)
    heavyok = FakePlatform("heavyok")
    # Addresses instead of names: an IPv6 literal, and RTMPS to an IP
    # (checked against the certificate's IP address, no SNI sent).
    v6 = FakePlatform("v6", bind="::1")
    tlsip = FakePlatform("tlsip", tls=certs)
    # Stop reading after about 2 s of media; a small receive buffer so that
    # only kebun's side of the connection can hide the stall.
    stall = FakePlatform("stall", stall_after=150, rcvbuf=16384)
    platforms = [bad, good, tlsca, tlssys, tlsoff, heavyok, stall, v6, tlsip]

    demo_push = "\n".join([
        "push = %s name=bad" % bad.url("app", "bad-key-0001"),
        "push = %s name=good" % good.url("app", "good-key-0001"),
        "push = %s ca=%s name=tlsca" % (tlsca.url("app", "tls-key-0001", "localhost"),
                                        certs["ca"]),
        "push = %s name=tlssys" % tlssys.url("app", "tls-key-0002", "localhost"),
        "push = %s verify=off name=tlsoff" % tlsoff.url("app", "tls-key-0003", "localhost"),
        "push = rtmp://[::1]:%d/app/v6-key-0001 name=v6" % v6.port,
        "push = %s ca=%s name=tlsip" % (tlsip.url("app", "tls-key-0004"), certs["ca"]),
    ])
    heavy_push = "\n".join([
        "push = %s name=heavyok" % heavyok.url("app", "heavy-ok-0001"),
        "push = %s name=stall" % stall.url("app", "stall-key-0001"),
    ])
    kb = t.Kebun(streams={"demo": t.KEY, "heavy": HEAVY_KEY},
                 server_extra="grace = %ds\npush_retry_min = 500ms\npush_retry_max = 2s\n"
                              "push_queue = 1M\npush_timeout = 30s" % GRACE_S,
                 stream_extra={"demo": demo_push, "heavy": heavy_push})
    n_push = 9

    pub = t.publish_file(kb.url(t.KEY), clip, loop=True)
    heavy_pub = t.publish_file(kb.url(HEAVY_KEY), heavy_clip, loop=True)
    t.require(kb.wait_re(r"stream=heavy peer=127\.0\.0\.1:\d+ publish started", after=0) and
              kb.wait_re(r"stream=demo peer=127\.0\.0\.1:\d+ publish started", after=0),
              "both publishers live")
    player = Player(kb, "heavy")
    for name in ("good", "tlsca", "tlsoff", "heavyok", "stall", "v6", "tlsip"):
        t.check(kb.wait_log("push %s: live" % name, after=0, timeout=8),
                "push %s goes live" % name)

    # --- A stalled platform does not hold anyone back. ---
    t.require(stall.wait(lambda: any(c.stalled for c in stall.connections()), 15),
              "the stalling platform stopped reading")
    stall_at = time.monotonic()

    # --- Meanwhile on demo: BadName, RTMPS, status fields. ---
    t.check(bad.wait(lambda: len(bad.connections()) >= 2, 8),
            "the platform refusing the key sees kebun connect again", len(bad.connections()),
            ">= 2")
    bc = bad.connections()
    if len(bc) >= 2:
        wait_s = bc[1].opened - (bc[0].closed or bc[1].opened)
        t.check(wait_s >= 0.35, "the second attempt comes after the backoff (push_retry_min "
                "500 ms, jitter -20%)", round(wait_s, 2), ">= 0.35 s")
        t.check(bc[0].names()[-1] == "publish", "the first attempt got as far as publish",
                bc[0].names(), "... publish")
    t.check(good.wait(lambda: good.live() and good.live()[0].media_count() > 150, 10),
            "the healthy destination beside it receives media")
    st = status(kb, n_push)
    b = st.get("bad", {})
    t.check(b.get("state") in ("retrying", "connecting") and
            "NetStream.Publish.BadName" in b.get("error", ""),
            "status: the refused destination is retrying and names BadName",
            (b.get("state"), b.get("error")), ("retrying", "... NetStream.Publish.BadName"))
    t.check(len(bad.live()) == 0, "the refusing platform never accepted a publish",
            len(bad.live()), 0)

    ca = tlsca.live()
    t.check(st.get("tlsca", {}).get("state") == "live" and len(ca) == 1,
            "RTMPS with ca= goes live", (st.get("tlsca", {}).get("state"), len(ca)), ("live", 1))
    t.check(ca and ca[0].sni == "localhost", "RTMPS: the platform saw SNI 'localhost'",
            ca[0].sni if ca else None, "localhost")
    sysd = st.get("tlssys", {})
    t.check(sysd.get("state") in ("retrying", "connecting") and
            "certificate verify failed" in sysd.get("error", ""),
            "RTMPS without ca= (system store) is refused: the certificate could not be verified",
            (sysd.get("state"), sysd.get("error")), ("retrying", "... certificate verify failed"))
    sc = tlssys.connections()
    t.check(sc and all(c.tls_error for c in sc) and not tlssys.live(),
            "the untrusted platform saw only failed TLS handshakes",
            [c.tls_error for c in sc][:2], "TLS errors")
    v6c = v6.live()
    t.check(v6c and (v6c[0].connect_obj or {}).get("tcUrl") == "rtmp://[::1]:%d/app" % v6.port,
            "a destination at an IPv6 literal goes live, with the address in brackets in tcUrl",
            (v6c[0].connect_obj or {}).get("tcUrl") if v6c else None,
            "rtmp://[::1]:%d/app" % v6.port)
    ipc = tlsip.live()
    t.check(st.get("tlsip", {}).get("state") == "live" and ipc and ipc[0].sni is None,
            "RTMPS to an IP address goes live, verified against the certificate's IP, no SNI",
            (st.get("tlsip", {}).get("state"), ipc[0].sni if ipc else "-"), ("live", None))
    off = tlsoff.live()
    t.check(st.get("tlsoff", {}).get("state") == "live" and len(off) == 1,
            "RTMPS with verify=off goes live", (st.get("tlsoff", {}).get("state"), len(off)),
            ("live", 1))
    warn = [l for l in kb.log().splitlines() if " warn " in l and "push tlsoff:" in l and
            "verification is off" in l]
    t.check(warn, "kebun logs a warning that verification is off")

    g = st.get("good", {})
    gc = good.live()[0] if good.live() else None
    got_bytes = sum(m.size for m in gc.media) if gc else 0
    t.check(g.get("state") == "live" and g.get("bytes", 0) > 0 and g.get("msgs", 0) > 0,
            "status: good is live with bytes and messages sent", g.get("line"), "live, > 0")
    t.check(g.get("bytes", 0) and abs(got_bytes - g["bytes"]) < 0.15 * g["bytes"],
            "status: the bytes sent match what the platform received", (g.get("bytes"), got_bytes),
            "within 15%")
    t.check(g.get("drops") == 0 and g.get("reconnects") == 0 and g.get("error") == "none",
            "status: good has no drops, no reconnects, no error",
            (g.get("drops"), g.get("reconnects"), g.get("error")), (0, 0, "none"))
    n_bad = len(bad.connections())
    rc = b.get("reconnects", -1)
    t.check(1 <= rc and n_bad - 2 <= rc <= n_bad,
            "status: the refused destination's reconnects match the platform's connections",
            (rc, n_bad), "connections - 1 (+-1 in flight)")
    if gc:
        check_conversation(gc, good.port)

    # --- Back to the stall: drops counted, the others in real time. ---
    drops = 0
    deadline = stall_at + 15
    while time.monotonic() < deadline and drops == 0:
        time.sleep(0.5)  # between two status requests (each logs a line per destination)
        drops = status(kb, n_push).get("stall", {}).get("drops", 0)
    t.check(drops > 0, "status: the stalled destination counts drops (push_queue 1M)", drops,
            "> 0")
    # The others must keep up in real time for the whole stall window: the
    # window's length is the test.
    end = stall_at + STALL_WINDOW_S
    time.sleep(max(0.0, end - time.monotonic()))
    hc = heavyok.live()
    realtime("the other destination during the stall",
             [(m.ts, m.at) for m in media_by_type(hc[0].media, 9)] if hc else [], stall_at, end)
    realtime("a player during the stall", list(player.video), stall_at, end)
    # The bitrate, once the start's catch-up (the cached GOP sent at once)
    # has left the measuring window. kebun measures it over each second, and
    # one second may hold a keyframe or none (or, on a loaded machine, the
    # publisher's frames late): the median of three seconds in a row.
    rates = []
    for i in range(3):
        if i:
            time.sleep(1.0)  # the status's window: one new measure a second
        rates.append(status(kb, n_push).get("good", {}).get("bitrate", 0))
    rate = sorted(rates)[1]
    t.check(0.6 * src_bps <= rate <= 1.6 * src_bps,
            "status: the bitrate is near the source's (median of three seconds)", rates,
            "%.0f bit/s +-40%%" % src_bps)
    t.check(player.error is None, "the player stayed connected", player.error, None)
    sl = stall.connections()
    t.check(len(sl) == 1 and sl[0].closed is None, "the stalled destination is not reconnected "
            "within push_timeout", [(c.closed, c.close_reason) for c in sl], "one open")
    stall.resume()
    resumed_at = time.monotonic()

    def video_again():
        """Video past the skip: what was queued during the stall is drained,
        then the video goes on from a keyframe (audio never stopped)."""
        v = [m for m in list(sl[0].media) if m.type == 9 and not m.is_seqhdr]
        return any(b.ts - a.ts > 500 and b.at > resumed_at for a, b in zip(v, v[1:])) and \
            time.monotonic() - v[-1].at < 0.5
    t.check(stall.wait(video_again, 15),
            "the stalled platform receives video again once it reads")
    if sl:
        # Video skips (audio goes on while it fits: it may have no jump).
        md = [m for m in sl[0].media if m.type == 9 and not m.is_seqhdr]
        jumps = [(i, md[i - 1].ts, md[i]) for i in range(1, len(md))
                 if md[i].ts - md[i - 1].ts > 500]
        t.check(jumps and all(j[2].is_key for j in jumps),
                "after skipping, the stalled destination resumes its video at a keyframe",
                [(a, b) for _, a, b in jumps][:4] or
                max((b.ts - a.ts, a.ts) for a, b in zip(md, md[1:])),
                "a jump, each onto a keyframe")

    # --- SIGHUP removes tlsoff; good keeps its connection. ---
    good_conns = len(good.connections())
    gmedia = gc.media_count() if gc else 0
    with open(kb.conf) as f:
        conf = f.read()
    with open(kb.conf, "w") as f:
        f.write("\n".join(l for l in conf.splitlines() if "name=tlsoff" not in l) + "\n")
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    t.check(kb.wait_log("0 push destination(s) added, 1 removed", after=mark),
            "reload reports one removed")
    t.check(tlsoff.wait(lambda: off and off[0].closed is not None, 5),
            "the removed destination's connection is closed")
    t.check(off and "FCUnpublish" in off[0].names() and "deleteStream" in off[0].names(),
            "the removed destination was unpublished first", off[0].names()[-3:] if off else None,
            "... FCUnpublish, deleteStream")
    # The reload is done; about 1.5 s of media later good must still be on
    # the connection it had.
    good.wait(lambda: gc and gc.media_count() > gmedia + 100, 5)
    t.check(len(good.connections()) == good_conns and gc and gc.closed is None and
            gc.media_count() > gmedia + 20,
            "the remaining destination keeps the same connection and keeps receiving",
            (len(good.connections()), gc.closed if gc else None,
             gc.media_count() - gmedia if gc else None), (good_conns, None, "> 20"))

    # --- The publisher leaves: after the grace period, FCUnpublish + deleteStream. ---
    mark = kb.mark()
    t.stop(pub, signal.SIGKILL)
    left = time.monotonic()
    t.check(kb.wait_re(r"stream=demo peer=\S+ publish stopped", after=mark, timeout=5),
            "the demo publisher is gone")
    # Watch the platform through the grace period: the test.
    time.sleep(GRACE_S - 0.7)
    early = [n for n in gc.names() if n in ("FCUnpublish", "deleteStream")] if gc else None
    t.check(early == [], "nothing is unpublished during the grace period", early, [])
    t.check(good.wait(lambda: "deleteStream" in gc.names(), GRACE_S + 3),
            "the platform receives deleteStream after the grace period")
    took = time.monotonic() - left
    tail = gc.commands[-2:] if gc else []
    t.check([c[0] for c in tail] == ["FCUnpublish", "deleteStream"],
            "the platform receives FCUnpublish, then deleteStream", [c[0] for c in tail],
            ["FCUnpublish", "deleteStream"])
    t.check(len(tail) == 2 and tail[0][1][2:3] == ["good-key-0001"] and tail[1][1][2:3] == [1.0],
            "FCUnpublish names the key, deleteStream the stream id",
            [c[1][2:3] for c in tail], [["good-key-0001"], [1.0]])
    t.check(GRACE_S - 0.5 <= took <= GRACE_S + 3, "unpublished when the grace period ends",
            round(took, 1), "about %d s" % GRACE_S)
    t.check(good.wait(lambda: gc.closed is not None, 5), "then the connection is closed")

    player.stop()
    stall.resume()
    t.stop(heavy_pub, signal.SIGKILL)
    kb.stop()
    for p in platforms:
        p.stop()
        t.check(not p.errors, "platform %s parsed everything kebun sent" % p.name, p.errors, [])
    text = kb.log()
    for secret in ("bad-key", "good-key", "tls-key", "heavy-ok", "stall-key"):
        t.check(secret not in text, "platform key %s... never in the log" % secret)
    t.log("took %.0f s" % (time.monotonic() - started))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
