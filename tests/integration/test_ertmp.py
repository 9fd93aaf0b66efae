#!/usr/bin/env python3
"""Enhanced RTMP, advertised and relayed (issue 11, points 2 and 3).

Debian's ffmpeg 5.1 can neither write nor publish E-RTMP, so ffmpeg only
encodes the clips here (libx265, libsvtav1); tests/tools/ertmp_flv turns
them into the tags an E-RTMP publisher sends, and the test publishes those
with its own RTMP client, knowing every byte it sent.

- kebun's connect _result declares fourCcList, videoFourCcInfoMap,
  audioFourCcInfoMap (CanForward) and capsEx (Multitrack | ModEx).
- A player that declared HEVC (v1 fourCcList) gets the HEVC stream's
  payloads byte for byte; an AV1 + E-RTMP AAC stream likewise; the
  recordings are HEVC and AV1 with every frame, and decode.
- A player that declared nothing gets NetStream.Play.Failed naming HEVC,
  before any media (playing a live stream) or when the HEVC arrives
  (waiting for the publisher); the log says why.
- Push: nginx-rtmp and a scripted legacy platform (which declare nothing)
  are not published to: "refused", "destination does not accept HEVC" in
  the API, the log and the SIGUSR1 status line, while a platform that
  declares hvc1 (v2 map) and one with ertmp=on get every byte, and an
  H.264 stream of another kebun stream reaches the same nginx. A
  destination live before the HEVC arrives is unpublished at once, and
  goes live again when an H.264 publisher takes over.
- Multitrack (HEVC track 0, AV1 track 1, OneTrack messages): a player that
  declared capsEx Multitrack gets every byte; a late one gets both tracks'
  sequence headers and starts at track 0's keyframe; one without
  Multitrack is refused, as is a platform without it; the recording has
  track 0 only (HEVC, every frame) and the log says so once.
"""
import http.client
import glob
import json
import os
import re
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from fakeplatform import FakePlatform  # noqa: E402
from platforms import Nginx  # noqa: E402
from rtmpclient import Client  # noqa: E402

TOOL = os.environ.get("KEBUN_ERTMP_FLV") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(t.KEBUN or "."))), "tests", "tools",
    "ertmp_flv")
SECONDS, FPS = 3, 25
KEYS = {"demo": t.KEY, "av1s": "av1-stream-key-01", "mt": "mt-stream-key-0001",
        "late": "late-stream-key-01", "h264": "h264-stream-key-01"}
OURS = ["avc1", "hvc1", "av01", "vp09", "Opus", "mp4a", "fLaC", "ac-3", "ec-3"]


# --- media -----------------------------------------------------------------------

def encode(d):
    """HEVC and AV1 clips, 320x240, 25 fps, a keyframe a second, AAC."""
    src = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=%d" % FPS,
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(SECONDS)]
    aac = ["-c:a", "aac", "-b:a", "64k", "-pix_fmt", "yuv420p"]
    clips = {
        "hevc": ["-c:v", "libx265", "-preset", "ultrafast",
                 "-x265-params", "keyint=%d:min-keyint=%d:log-level=error" % (FPS, FPS)],
        "av1": ["-c:v", "libsvtav1", "-preset", "12", "-g", str(FPS)],
    }
    out = {}
    for name, codec in clips.items():
        path = os.path.join(d, name + ".mp4")
        r = t.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"] + src +
                  codec + aac + [path], timeout=120)
        t.require(r.returncode == 0, "ffmpeg encodes the %s clip" % name, r.stderr[-500:], "")
        out[name] = path
    return out


def to_flv(d, name, *args):
    path = os.path.join(d, name + ".flv")
    r = t.run([TOOL] + list(args) + [path], timeout=60)
    t.require(r.returncode == 0, "ertmp_flv writes %s" % name, r.stderr[-500:], "")
    counts = dict((k, int(v)) for k, v in (l.split() for l in r.stdout.split("\n") if l))
    return read_flv(path), counts


def read_flv(path):
    """[(type, timestamp, payload)] of an FLV file's tags."""
    with open(path, "rb") as f:
        b = f.read()
    t.require(b[:3] == b"FLV", "ertmp_flv's output is FLV")
    o, out = struct.unpack(">I", b[5:9])[0] + 4, []
    while o + 11 <= len(b):
        typ, size = b[o], int.from_bytes(b[o + 1:o + 4], "big")
        ts = int.from_bytes(b[o + 4:o + 7], "big") | b[o + 7] << 24
        out.append((typ, ts, b[o + 11:o + 11 + size]))
        o += 11 + size + 4
    return out


def from_key(tags):
    """What a player that was waiting gets of `tags`: players start at the
    first keyframe, so audio frames before it are not sent."""
    out, keyed = [], False
    for typ, ts, p in tags:
        keyed = keyed or (typ == 9 and not is_seqhdr((typ, ts, p)))
        if keyed or is_seqhdr((typ, ts, p)):
            out.append((typ, p))
    return out


def is_seqhdr(tag):
    typ, _, p = tag
    if typ == 9:
        return p[0] & 0x80 and (p[0] & 0x0F == 0 or (p[0] & 0x0F == 6 and p[1] & 0x0F == 0))
    return p[0] >> 4 == 10 and p[1] == 0 or p[0] == 0x90


# --- RTMP peers --------------------------------------------------------------------

class Publisher:
    def __init__(self, kb, key):
        self.c = Client("127.0.0.1", kb.port)
        _, v = self.c.connect(fourCcList=["hvc1", "av01", "mp4a"])
        self.result = v
        self.msid = self.c.create_stream()
        self.c.set_chunk_size(4096)
        _, v = self.c.publish(key, self.msid)
        t.require(v[3].get("code") == "NetStream.Publish.Start", "publisher %s... publishes"
                  % key[:4], v[3], "NetStream.Publish.Start")

    def send(self, tags):
        for typ, ts, p in tags:
            self.c.send({9: 6, 8: 4}.get(typ, 5), typ, ts, self.msid, p)

    def close(self):
        self.c.close()


def player(kb, name, **caps):
    """A player whose connect declares `caps`; returns (client, play status)."""
    c = Client("127.0.0.1", kb.port)
    c.connect(**caps)
    msid = c.create_stream()
    _, v = c.play(name, msid)
    return c, v[3]


def media(c, n, timeout=20):
    """The next n media messages' (type, payload); stops early at a close or
    a status of level error, which is returned too."""
    out, err = [], None
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            m = c.read_message(max(0.05, deadline - time.monotonic()))
            if m.type in (8, 9):
                out.append((m.type, m.payload))
            elif m.type == 20:
                v = m.amf()
                if v and v[0] == "onStatus" and v[3].get("level") == "error":
                    err = v[3]
                    break
    except (TimeoutError, ConnectionError, OSError) as e:
        err = err or {"closed": str(e)}
    return out, err


def refused_status(c, timeout=10):
    """Read until NetStream.Play.Failed: (its info object, media seen before)."""
    got, err = media(c, 10 ** 6, timeout)
    return (err or {}), got


def closed(c, timeout=10):
    try:
        c.read_message(timeout)
        while True:
            c.read_message(timeout)
    except ConnectionError:
        return True
    except (TimeoutError, OSError):
        return False


# --- the API ---------------------------------------------------------------------------

def api_stream(kb, name):
    c = http.client.HTTPConnection("127.0.0.1", kb.http_port, timeout=10)
    c.request("GET", "/api/v1/streams/" + name)
    r = c.getresponse()
    body = r.read()
    c.close()
    return json.loads(body) if r.status == 200 else {}


def dest(kb, stream, name):
    for d in api_stream(kb, stream).get("destinations", []):
        if d.get("name") == name:
            return d
    return {}


def wait_for(what, fn, timeout=15):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    t.check(False, what, last, "true within %d s" % timeout)
    return None


def probe_frames(path):
    r = t.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
               "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "json", path],
              timeout=120)
    return json.loads(r.stdout or "{}").get("streams", [])


def decode_errors(path):
    r = t.run(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"], timeout=120)
    return r.stderr.strip() or ("exit %d" % r.returncode if r.returncode else "")


def recording(kb, stream):
    """The stream's one recording, once complete: its playlist."""
    def done():
        recs = sorted(glob.glob(os.path.join(kb.dir, "recordings", stream, "*Z")))
        if len(recs) != 1:
            return None
        try:
            with open(os.path.join(recs[0], "meta.json")) as f:
                return recs[0] if json.load(f).get("status") == "complete" else None
        except (OSError, ValueError):
            return None
    rec = wait_for("the %s recording is complete" % stream, done, 20)
    return os.path.join(rec, "index.m3u8") if rec else None


def check_recording(kb, stream, codec, frames):
    pl = recording(kb, stream)
    if not pl:
        return
    st = probe_frames(pl)
    video = [s for s in st if s.get("codec_type") == "video"]
    t.check(len(video) == 1 and video[0].get("codec_name") == codec and
            int(video[0].get("nb_read_frames", 0)) == frames,
            "%s recording: one %s video track with all %d frames" % (stream, codec, frames),
            video, "%s, %d frames" % (codec, frames))
    t.check(decode_errors(pl) == "", "%s recording decodes without an error" % stream,
            decode_errors(pl)[-300:], "")


# --- the test --------------------------------------------------------------------------

def main():
    if not os.access(TOOL, os.X_OK):
        raise SystemExit("ertmp_flv not built at %s (set KEBUN_ERTMP_FLV)" % TOOL)
    d = os.path.realpath(t.tempdir("kebun-ertmp-"))
    clips = encode(d)
    hevc, hc = to_flv(d, "hevc", clips["hevc"])
    av1, ac = to_flv(d, "av1", "--audio", "mp4a", clips["av1"])
    mt, mc = to_flv(d, "mt", "--track1", clips["av1"], clips["hevc"])
    t.require(hc == {"video0": SECONDS * FPS, "audio": hc.get("audio", 0)} and hc["audio"] > 100,
              "the HEVC clip has %d frames and its audio" % (SECONDS * FPS), hc)
    t.require(mc.get("video1") == SECONDS * FPS, "the multitrack clip has two tracks", mc)

    nginx = Nginx(d, "nginx", {"live": ""})
    legacy = FakePlatform("legacy", keep_payloads=True)
    legacy2 = FakePlatform("legacy2", keep_payloads=True)
    forced = FakePlatform("forced", keep_payloads=True)
    # An E-RTMP v2 platform: hvc1 in its map, any audio, no capsEx.
    declared = FakePlatform("declared", keep_payloads=True,
                            caps={"videoFourCcInfoMap": {"hvc1": 4.0},
                                  "audioFourCcInfoMap": {"*": 4.0}})
    push = lambda url, name, extra="": "push = %s name=%s%s\n" % (url, name, extra)  # noqa: E731
    kb = t.Kebun(streams=KEYS, server_extra="grace = 0", stream_extra={
        "demo": "record = on\n" +
                push(nginx.url("live", "hevc-key-1"), "nginx") +
                push(legacy.url("live", "legacy-key"), "legacy") +
                push(forced.url("live", "forced-key"), "forced", " ertmp=on") +
                push(declared.url("live", "declared-key"), "declared"),
        "av1s": "record = on\n",
        "mt": "record = on\n" + push(declared.url("live", "mt-key"), "declared"),
        "late": push(legacy2.url("live", "late-key"), "legacy"),
        "h264": push(nginx.url("live", "h264-key-1"), "nginx"),
    })

    # -- kebun's connect _result ------------------------------------------------------
    c = Client("127.0.0.1", kb.port)
    _, v = c.connect()
    props = v[2] if len(v) > 2 and isinstance(v[2], dict) else {}
    t.check(v[0] == "_result" and props.get("fourCcList") == OURS,
            "connect _result: fourCcList of the codecs kebun relays", props.get("fourCcList"),
            OURS)
    t.check(props.get("videoFourCcInfoMap") == {k: 4.0 for k in OURS[:4]} and
            props.get("audioFourCcInfoMap") == {k: 4.0 for k in OURS[4:]},
            "connect _result: FourCcInfoMaps, CanForward each",
            (props.get("videoFourCcInfoMap"), props.get("audioFourCcInfoMap")))
    t.check(props.get("capsEx") == 6.0, "connect _result: capsEx Multitrack | ModEx",
            props.get("capsEx"), 6.0)
    t.check(v[3].get("code") == "NetConnection.Connect.Success", "connect succeeded", v[3])
    c.close()

    # -- HEVC: players, destinations, recording -----------------------------------------
    p1, s1 = player(kb, "demo", fourCcList=["hvc1", "av01"])
    p2, s2 = player(kb, "demo")  # declares nothing, waits for the publisher
    t.check(s1.get("code") == "NetStream.Play.Start" and s2.get("code") == "NetStream.Play.Start",
            "players wait for the publisher", (s1, s2))
    pub = Publisher(kb, KEYS["demo"])
    t.check(pub.result[2].get("capsEx") == 6.0, "a publisher sees the same declaration")
    heads = [x for x in hevc if is_seqhdr(x)]
    frames = [x for x in hevc if not is_seqhdr(x)]
    t.require(len(heads) == 2, "the HEVC clip starts with its two sequence headers", len(heads))
    pub.send(heads)
    # The platforms answer connect: the codecs are known by then.
    wait_for("nginx: refused, not published to",
             lambda: dest(kb, "demo", "nginx").get("state") == "refused")
    d_nginx = dest(kb, "demo", "nginx")
    t.check(d_nginx.get("last_error") == "destination does not accept HEVC",
            "API: nginx's last_error names HEVC", d_nginx.get("last_error"),
            "destination does not accept HEVC")
    t.check(kb.wait_log("push nginx: destination does not accept HEVC (it declared Enhanced "
                        "RTMP: none); not published", after=0), "log: nginx refused, and why")
    wait_for("the legacy platform: refused",
             lambda: dest(kb, "demo", "legacy").get("state") == "refused")
    wait_for("forced and declared platforms live", lambda: forced.live() and declared.live())
    err, got = refused_status(p2)
    t.check(err.get("code") == "NetStream.Play.Failed" and "HEVC" in err.get("description", "")
            and not got, "a waiting legacy player gets Play.Failed naming HEVC, no media",
            (err, len(got)))
    t.check(closed(p2), "... and is disconnected")
    t.check(kb.wait_log("play refused (player does not accept HEVC; its connect declared "
                        "Enhanced RTMP: none)", after=0), "log: the player refused, and why")
    p3, s3 = player(kb, "demo")  # declares nothing, the stream is HEVC already
    t.check(s3.get("code") == "NetStream.Play.Failed" and "HEVC" in s3.get("description", ""),
            "a legacy player of a live HEVC stream: Play.Failed, never Play.Start", s3)
    p3.close()
    pub.send(frames)
    t.check(from_key(hevc) == [(x[0], x[2]) for x in hevc], "the HEVC clip starts at a keyframe")
    got, err = media(p1, len(hevc))
    t.check(not err and got == [(x[0], x[2]) for x in hevc],
            "the player that declared hvc1 gets every payload byte for byte",
            (err, len(got)), len(hevc))
    p1.close()
    for plat in (forced, declared):
        conn = plat.live()[0]
        wait_for("%s got every message" % plat.name, lambda: conn.media_count() >= len(hevc))
        _, md = conn.snapshot()
        t.check([(m.type, m.data) for m in md] == [(x[0], x[2]) for x in hevc],
                "platform %s gets every payload byte for byte" % plat.name, len(md), len(hevc))
    lc = legacy.connections()
    t.check(lc and all(c.names() == ["connect"] and not c.media for c in lc),
            "the legacy platform was connected to, never published to",
            [c.names() for c in lc], [["connect"]])
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGUSR1)
    t.check(kb.wait_log("status: push nginx refused for", after=mark),
            "SIGUSR1: nginx refused", kb.log()[-600:])
    line = [l for l in kb.log(after=mark).splitlines() if "status: push nginx refused" in l][-1]
    t.check(re.search(r"last error \(at [0-9TZ:-]+\): destination does not accept HEVC$", line),
            "SIGUSR1: the status line says why", line)
    # Another stream's H.264 reaches the same nginx meanwhile.
    ff = t.publish(kb.url(KEYS["h264"]), SECONDS, size="320x240", rate=FPS, gop=FPS)
    wait_for("the H.264 stream is live on nginx",
             lambda: dest(kb, "h264", "nginx").get("state") == "live")
    t.check(ff.wait(60) == 0, "ffmpeg published H.264 for %d s" % SECONDS)
    t.check(dest(kb, "demo", "forced").get("state") == "live", "forced is still live")
    pub.close()
    check_recording(kb, "demo", "hevc", SECONDS * FPS)
    t.check(kb.wait_log("stream=h264 peer=rtmp://127.0.0.1:%d/live/**** push nginx: broadcast "
                        "ended" % nginx.port, after=0), "the H.264 broadcast to nginx ended")
    def nginx_files(prefix):
        return [f for f in nginx.recordings("live") if os.path.basename(f).startswith(prefix)]
    h264 = wait_for("nginx recorded the H.264 stream", lambda: nginx_files("h264-key-1"))
    vs = [s for s in probe_frames(h264[-1]) if s.get("codec_type") == "video"] if h264 else []
    t.check(vs and vs[0].get("codec_name") == "h264" and int(vs[0]["nb_read_frames"]) > FPS,
            "nginx got the H.264 stream", vs)
    t.check(not nginx_files("hevc-key-1"), "nginx never got a publish of the HEVC stream",
            nginx_files("hevc-key-1"), [])

    # -- AV1 and E-RTMP AAC ---------------------------------------------------------------
    pa, sa = player(kb, "av1s", videoFourCcInfoMap={"av01": 1.0},
                    audioFourCcInfoMap={"mp4a": 1.0})
    pub = Publisher(kb, KEYS["av1s"])
    pub.send(av1)
    want = from_key(av1)
    t.check(len(want) == len(av1) - 1, "the AV1 clip has one audio frame before its keyframe")
    got, err = media(pa, len(want))
    t.check(not err and got == want,
            "a player that declared av01 and mp4a (v2 maps) gets every byte from the keyframe",
            (err, len(got)), len(want))
    pa.close()
    pub.close()
    check_recording(kb, "av1s", "av1", SECONDS * FPS)

    # -- a destination live before the HEVC arrives ----------------------------------------
    # H.264 first (ffmpeg's FLV, sent by our client), then HEVC sequence
    # headers, then H.264 again.
    avc = read_flv(t.make_clip(2, size="320x240", rate=FPS, gop=FPS))
    avc_heads = [x for x in avc if x[0] == 18 or (x[0] in (8, 9) and x[2][1] == 0)]
    pub = Publisher(kb, KEYS["late"])
    pub.send(avc[:len(avc) // 2])
    wait_for("the legacy platform gets the H.264", lambda: legacy2.live() and
             legacy2.live()[0].media_count() > 10)
    conn = legacy2.live()[0]
    pub.send(hevc[:2])
    wait_for("HEVC sequence headers: refused while live",
             lambda: dest(kb, "late", "legacy").get("state") == "refused")
    t.check(dest(kb, "late", "legacy").get("last_error") == "destination does not accept HEVC",
            "... naming HEVC", dest(kb, "late", "legacy"))
    t.check(wait_for("... and unpublished at once",
                     lambda: "deleteStream" in conn.names() and conn.closed),
            "FCUnpublish, deleteStream, closed", conn.names())
    _, md = conn.snapshot()
    t.check(not [m for m in md if m.type == 9 and m.data[0] & 0x80], "... having had no HEVC",
            [m.data[:5] for m in md if m.type == 9 and m.data[0] & 0x80][:3], [])
    # The publisher goes back to H.264: the codecs changed, it goes on.
    pub.send(avc_heads + avc[len(avc) // 2:])
    t.check(kb.wait_log("stream=late peer=%s push legacy: the stream's codecs changed: trying "
                        "again" % legacy2.url("live", "****"), after=0), "log: trying again")
    wait_for("H.264 again: published to the legacy platform again",
             lambda: len(legacy2.live()) == 2 and legacy2.live()[1].media_count() > 10)
    wait_for("... live again", lambda: dest(kb, "late", "legacy").get("state") == "live")
    pub.close()

    # -- multitrack ---------------------------------------------------------------------
    v2 = dict(videoFourCcInfoMap={"hvc1": 1.0, "av01": 1.0}, capsEx=2.0)
    pm, sm = player(kb, "mt", **v2)
    pub = Publisher(kb, KEYS["mt"])
    half = len(mt) // 2
    pub.send(mt[:half])
    wait_for("the destination without Multitrack: refused",
             lambda: dest(kb, "mt", "declared").get("state") == "refused")
    t.check(dest(kb, "mt", "declared").get("last_error") ==
            "destination does not accept Enhanced RTMP multitrack video",
            "API: it names multitrack", dest(kb, "mt", "declared").get("last_error"))
    late, sl = player(kb, "mt", **v2)
    v1, s1 = player(kb, "mt", fourCcList=["hvc1", "av01"])
    t.check(s1.get("code") == "NetStream.Play.Failed" and "multitrack" in
            s1.get("description", ""), "a player without capsEx Multitrack: Play.Failed", s1)
    v1.close()
    pub.send(mt[half:])
    got, err = media(pm, len(mt))
    t.check(not err and got == [(x[0], x[2]) for x in mt],
            "a player that declared Multitrack gets both tracks byte for byte",
            (err, len(got)), len(mt))
    got, err = media(late, 6)
    hdrs = [g for g in got if is_seqhdr((g[0], 0, g[1]))]
    first = [g for g in got if g[0] == 9 and not is_seqhdr((g[0], 0, g[1]))][:1]
    t.check(not err and len(hdrs) == 3 and
            sorted(h[1][2:6] for h in hdrs if h[0] == 9) == [b"av01", b"hvc1"],
            "a late player gets both tracks' sequence headers (and the audio's)",
            [(h[0], h[1][:8]) for h in got])
    t.check(first and first[0][1][0] >> 4 == 0x9 and first[0][1][2:6] == b"hvc1" and
            first[0][1][6] == 0, "... and starts at track 0's keyframe",
            first and first[0][1][:8])
    pm.close()
    late.close()
    pub.close()
    check_recording(kb, "mt", "hevc", SECONDS * FPS)
    said = kb.log().count("multitrack video: recording track 0 only (2 tracks)")
    t.check(said == 1, "the log says once that only track 0 is recorded", said, 1)

    for p in (legacy, legacy2, forced, declared):
        t.check(not p.errors, "platform %s saw no protocol error" % p.name, p.errors, [])
        p.stop()
    nginx.stop()
    kb.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
