#!/usr/bin/env python3
"""Push: one published stream fanned out to stand-in platforms.

nginx-rtmp plays the platforms (A: "YouTube", B: "Facebook" over plain RTMP
and, through stunnel with a test CA, over RTMPS), plus a destination whose
CA is not trusted and one whose publish is denied. Checked:
- every platform gets H.264 + AAC with the published parameters;
- an untrusted certificate and a refused publish give a clear last error
  and keep retrying, without disturbing the others;
- platform A killed mid-stream: B keeps receiving without a gap; A restarted:
  kebun reconnects within the backoff bound, starting with a keyframe;
- SIGHUP adding a destination leaves the other connections untouched;
- the publisher drops and another returns within the grace period: B sees
  one publish session with timestamps that never go backwards;
- after the grace period the platforms are unpublished cleanly.
"""
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from platforms import Nginx, Stunnel, make_ca  # noqa: E402

# The phone stays away 2 s; the rest is for the returning ffmpeg to start
# and publish, which takes seconds on a busy machine.
GRACE_S = 8
RETRY_MAX_S = 2


def kebun_conns(pid, remote_port):
    """Local ports of kebun's TCP connections to remote_port."""
    r = t.run(["ss", "-Htnp", "state", "established", "dport", "= :%d" % remote_port])
    ports = set()
    for line in r.stdout.splitlines():
        if "pid=%d," % pid not in line:
            continue
        local = line.split()[2]
        ports.add(int(local.rsplit(":", 1)[1]))
    return ports


def status(kb, want=("yt", "plain", "tls", "untrusted", "denied", "lateca")):
    """Ask kebun for its status lines (SIGUSR1) and return them by push name."""
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGUSR1)
    out = {}
    deadline = time.monotonic() + 5  # a busy box may take a moment to write them all
    while time.monotonic() < deadline:
        time.sleep(0.2)
        for line in kb.lines(after=mark):
            m = re.search(r"status: push (\S+) (\S+) for .*last error(?: \(at [^)]*\))?: (.*)$",
                          line)
            if m:
                out[m.group(1)] = (m.group(2), m.group(3), line)
        if all(n in out for n in want):
            break
    return out


def dts_gaps(path, kind="video"):
    dts = [p[2] for p in t.packets(path) if p[0] == kind and p[2] is not None]
    back = [(a, b) for a, b in zip(dts, dts[1:]) if b < a]
    gaps = [(a, b) for a, b in zip(dts, dts[1:]) if b - a > 1.0]
    return dts, back, gaps


def recorded_s(platform, app, key):
    """Seconds of video a platform has recorded for a key (its newest file)."""
    files = [f for f in platform.recordings(app) if os.path.basename(f).startswith(key)]
    return t.flv_seconds(files[-1]) if files else 0


def check_platform_stream(url, what):
    st = t.streams_by_type(t.probe(url))
    v, a = st.get("video", {}), st.get("audio", {})
    t.check(v.get("codec_name") == "h264" and (v.get("width"), v.get("height")) == (640, 360),
            what + ": H.264 640x360", (v.get("codec_name"), v.get("width"), v.get("height")),
            ("h264", 640, 360))
    t.check(a.get("codec_name") == "aac" and a.get("sample_rate") == "44100",
            what + ": AAC 44100 Hz", (a.get("codec_name"), a.get("sample_rate")), ("aac", "44100"))


def main():
    base = t.tempdir("kebun-push-")
    good = make_ca(base, "good")
    other = make_ca(base, "other")
    a = Nginx(base, "platform-a", {"live2": "", "extra": ""})
    b = Nginx(base, "platform-b", {"rtmp": "", "deny": "deny publish all;"})
    tls = Stunnel(base, good, b.port)

    pushes = "\n".join([
        "push = rtmp://127.0.0.1:%d/live2/yt-secret-key name=yt" % a.port,
        "push = rtmp://127.0.0.1:%d/rtmp/fb-plain-key name=plain" % b.port,
        "push = rtmps://localhost:%d/rtmp/fb-tls-key?s_bl=1&s_sc=42 ca=%s name=tls" % (
            tls.port, good["ca"]),
        "push = rtmps://localhost:%d/rtmp/untrusted-key ca=%s name=untrusted" % (
            tls.port, other["ca"]),
        "push = rtmp://127.0.0.1:%d/deny/denied-key name=denied" % b.port,
        # Its CA file appears only before the reload of phase 3.
        "push = rtmps://localhost:%d/rtmp/late-ca-key ca=%s name=lateca" % (
            tls.port, os.path.join(base, "late-ca.pem")),
    ])
    kb = t.Kebun(server_extra="grace = %ds\npush_retry_min = 500ms\npush_retry_max = %ds\n"
                              "push_timeout = 5s" % (GRACE_S, RETRY_MAX_S),
                 stream_extra={"demo": pushes})

    # Phase 1: one publisher, five destinations.
    p1 = t.publish_loop(kb.url(t.KEY), size="640x360", gop=30)
    t.require(kb.wait_log("publish started", after=0), "publisher live")
    for name in ("yt", "plain", "tls"):
        t.check(kb.wait_log("push %s: live" % name, after=0, timeout=8),
                "push %s goes live" % name)
    # The platforms record what they receive: once each has frames, it has
    # the stream to show a player.
    for plat, app, key in ((a, "live2", "yt-secret-key"), (b, "rtmp", "fb-plain-key"),
                           (b, "rtmp", "fb-tls-key")):
        t.check(t.wait_until(lambda: recorded_s(plat, app, key) >= 1, 10, interval=0.2),
                "platform %s receives the stream under %s" % (os.path.basename(plat.dir), key))
    check_platform_stream(a.url("live2", "yt-secret-key"), "platform A (rtmp)")
    check_platform_stream(b.url("rtmp", "fb-plain-key"), "platform B (rtmp)")
    # What went through stunnel is on B under the TLS destination's key.
    check_platform_stream(b.url("rtmp", "fb-tls-key"), "platform B via RTMPS")

    st = status(kb)
    t.check(st.get("yt", ("",))[0] == "live" and st.get("tls", ("",))[0] == "live",
            "status: yt and tls are live", {k: v[0] for k, v in st.items()}, "live")
    unt = st.get("untrusted", ("", ""))
    t.check(unt[0] in ("retrying", "connecting") and "certificate verify failed" in unt[1],
            "untrusted CA: refused with a clear last error, still retrying", unt[:2],
            "retrying, certificate verify failed")
    den = st.get("denied", ("", ""))
    # It may be caught in the instant between the platform's Publish.Start
    # and its hang-up, so "live" is possible; the last error is what counts.
    t.check(den[0] in ("retrying", "connecting", "live") and "stream key refused?" in den[1],
            "denied publish: clear last error, still retrying", den[:2],
            "retrying, ... stream key refused?")
    late = st.get("lateca", ("", ""))
    t.check(late[0] == "failed" and "late-ca.pem" in late[1], "a CA file that does not load: "
            "failed, saying which file", late[:2], "failed, ...late-ca.pem...")
    delays = [float(x) for x in re.findall(r"push denied: retrying in ([0-9.]+) s", kb.log())]
    t.check(len(delays) >= 2 and max(delays) > min(delays) * 1.5,
            "the denied destination keeps retrying, with growing delays", delays, "growing")
    t.check(delays and max(delays) <= RETRY_MAX_S, "no retry waits longer than push_retry_max, "
            "jitter included", max(delays or [0]), "<= %d s" % RETRY_MAX_S)

    # Phase 2: platform A dies and comes back.
    mark = kb.mark()
    a.kill()
    t.check(kb.wait_log("push yt: connection lost while live", after=mark, timeout=5),
            "kebun notices platform A is gone")
    # Platform A stays away for 2 s (kebun retries meanwhile): the test.
    time.sleep(2)
    a.start()
    restarted = time.monotonic()
    bound = RETRY_MAX_S * 1.2 + 4
    back = kb.wait_log("push yt: live", after=mark, timeout=bound)
    t.check(back, "kebun reconnects to platform A within the backoff bound",
            round(time.monotonic() - restarted, 1), "<= %.1f s" % bound)

    # Phase 3: SIGHUP adds a destination; the others keep their connections.
    # The denied and untrusted destinations share these ports and come and
    # go every retry: a connection seen twice, a second apart, is a lasting
    # one (plain's, tls's). The second between the looks is the test.
    before_b = kebun_conns(kb.proc.pid, b.port)
    before_tls = kebun_conns(kb.proc.pid, tls.port)
    time.sleep(1)
    before_b &= kebun_conns(kb.proc.pid, b.port)
    before_tls &= kebun_conns(kb.proc.pid, tls.port)
    with open(kb.conf) as f:
        conf = f.read()
    conf = conf.replace("name=denied", "name=denied\npush = rtmp://127.0.0.1:%d/extra/x-key "
                        "name=extra" % a.port)
    with open(kb.conf, "w") as f:
        f.write(conf)
    shutil.copy(good["ca"], os.path.join(base, "late-ca.pem"))
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    t.check(kb.wait_log("push lateca: live", after=mark, timeout=8), "a failed destination "
            "whose CA file is fixed goes live at the next reload")
    t.check(kb.wait_log("push extra: live", after=mark, timeout=8), "the destination added by "
            "SIGHUP goes live")
    t.check(kb.wait_log("1 push destination(s) added, 0 removed", after=mark),
            "reload reports one added")
    after_b = kebun_conns(kb.proc.pid, b.port)
    after_tls = kebun_conns(kb.proc.pid, tls.port)
    t.check(before_b and before_b <= after_b, "platform B keeps the same TCP connection across "
            "the reload", (before_b, after_b), "before within after")
    t.check(before_tls and before_tls <= after_tls, "the RTMPS destination keeps its connection "
            "across the reload", (before_tls, after_tls), "before within after")

    # Phase 4: the phone drops; another publisher returns within the grace.
    mark = kb.mark()
    os.kill(p1.pid, signal.SIGKILL)
    p1.wait()
    t.check(kb.wait_log("publish stopped", after=mark), "first publisher gone")
    # The phone is away for 2 s, within the grace period: the test.
    time.sleep(2)
    p2 = t.publish(kb.url(t.KEY), 6, size="640x360", gop=30)
    code = p2.wait(40)
    t.check(code == 0, "second publisher ran to its end", code, 0)
    mark = kb.mark()
    t.check(kb.wait_log("push plain: broadcast ended", after=mark, timeout=GRACE_S + 5),
            "after the grace period the platforms are unpublished")
    # Every live destination ends its broadcast (before the platforms stop).
    ended = [n for n in ("yt", "tls", "extra", "lateca")
             if kb.wait_log("push %s: broadcast ended" % n, after=mark, timeout=5)]
    t.check(len(ended) == 4, "every live destination is unpublished after the grace period",
            ended, ["yt", "tls", "extra", "lateca"])

    kb.stop()
    tls.proc.terminate()
    a.stop()
    b.stop()

    plain = b.recordings("rtmp")
    by_key = {}
    for path in plain:
        by_key.setdefault(os.path.basename(path).split("-")[0:3][0], []).append(path)
    fb_plain = [p for p in plain if os.path.basename(p).startswith("fb-plain-key")]
    fb_tls = [p for p in plain if os.path.basename(p).startswith("fb-tls-key")]
    for what, files in (("platform B (rtmp)", fb_plain), ("platform B via RTMPS", fb_tls)):
        t.check(len(files) == 1, what + ": one recording for the whole broadcast",
                [os.path.basename(f) for f in files], 1)
        if files:
            dts, back, gaps = dts_gaps(files[0])
            t.check(not back, what + ": timestamps never go backwards", back[:3], [])
            t.check(not gaps, what + ": no gap over 1 s (platform A's crash and the publisher "
                    "change did not interrupt it)", gaps[:3], [])
            t.check(dts and dts[-1] - dts[0] > 14, what + ": carries both publishers' media",
                    round(dts[-1] - dts[0], 1) if dts else None, "> 14 s")
    yt = [p for p in a.recordings("live2")]
    t.check(len(yt) >= 2, "platform A: a new recording after its restart",
            [os.path.basename(f) for f in yt], ">= 2")
    if len(yt) >= 2:
        pk = t.packets(yt[-1])
        first_v = next((p for p in pk if p[0] == "video"), None)
        t.check(first_v is not None and first_v[3], "platform A after restart starts with a "
                "keyframe", first_v, "keyframe")
        st = t.streams_by_type(t.probe(yt[-1]))
        t.check(st.get("video", {}).get("width") == 640 and st.get("audio", {}).get(
            "sample_rate") == "44100", "platform A after restart has the sequence headers",
            st, "640 wide, 44100 Hz")
    text = kb.log()
    for secret in ("yt-secret-key", "fb-plain-key", "fb-tls-key", "untrusted-key",
                   "denied-key", "x-key", "late-ca-key"):
        t.check(secret not in text, "platform key %s... never in the log" % secret[:4])
    t.check("rtmps://localhost:%d/rtmp/****" % tls.port in text,
            "logs show the RTMPS URL with its key masked")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
