#!/usr/bin/env python3
"""A slow player, and a slow platform, keep their sound.

A viewer on a weak link whose queue fills loses video first: video may fill
3/4 of player_queue and then skips to a keyframe that fits, while every
audio frame goes on as long as the audio fits. The same for a push
destination and push_queue. The drops are counted by kind.

- A raw RTMP player reads at half the stream's bitrate (its receive buffer
  small, so only kebun's side can hide it): it receives every audio frame
  from its first one on, in order, while video skips; after every video gap
  the next video frame is a keyframe; kebun's "play stopped" line counts
  exactly the video frames it did not get, and no audio.
- A platform reading at half the bitrate: every audio frame it receives
  follows the one before it (no audio gap), video skipped, and the API's
  drops_video / drops_audio say so.
- An HTTP-FLV viewer (GET /live/demo.flv, served by the relay's loop once
  the web side sent the head) reading at half the bitrate: the same as the
  raw player, from the chunked FLV it reads, and its stop line when it
  leaves counts the same way.
"""
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from fakeplatform import FakePlatform  # noqa: E402
from rtmpclient import Client  # noqa: E402

KEY = "slowlink-key-0001"
CLIP_S = 10
BITRATE = "12M"        # about 1.5 MB/s; both slow readers take half of it
QUEUE = 512 * 1024


def flv_tags(path):
    """[(type, timestamp, is_header, is_key)] of the audio and video tags of
    an FLV file. is_header: not a frame (a sequence header, or H.264's end
    of sequence, AVCPacketType 2, which ffmpeg writes at a clip's end)."""
    return [(ty, ts, p[1] != 1, ty == 9 and p[0] >> 4 == 1)
            for ty, ts, p in t.flv_tags(path) if ty in (8, 9) and len(p) > 1]


def media_of(ty, payload):
    """(is_header, is_key) of an RTMP audio or video message (H.264 / AAC);
    is_header as in flv_tags."""
    return payload[1] != 1, ty == 9 and payload[0] >> 4 == 1


def contiguous(sent, got):
    """got (timestamps) is a contiguous run of sent (timestamps), up to a
    constant offset (a push starts its timestamps at 0). Returns the index
    in sent where it starts, or None."""
    if not got:
        return None
    n = len(got)
    for i in range(len(sent) - n + 1):
        off = sent[i] - got[0]
        if all(sent[i + k] - got[k] == off for k in range(n)):
            return i
    return None


def slow_read(c, rate, until):
    """Read messages from a raw client at about rate bytes a second, up to
    UnpublishNotify (or until seconds). [(type, ts, payload)] of the media."""
    got = []
    start, base = time.monotonic(), c.received
    while time.monotonic() < until:
        ahead = (c.received - base) / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(min(ahead, 0.2))
        m = c.read_message(timeout=10)
        if m.type in (8, 9) and len(m.payload) > 1:
            got.append((m.type, m.ts, m.payload[:2]))
        elif m.type == 20:
            info = m.amf()
            code = info[3].get("code") if len(info) > 3 and isinstance(info[3], dict) else None
            if code == "NetStream.Play.UnpublishNotify":
                return got, True
    return got, False


class SlowViewer:
    """A raw HTTP-FLV client of /live/NAME.flv whose receive buffer is
    small, reading at about rate bytes a second on its own thread."""

    def __init__(self, port, name, rate):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.connect(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.sock.sendall(b"GET /live/%s.flv HTTP/1.1\r\nHost: kebun\r\n\r\n" % name.encode())
        self.rate = rate
        self.data = b""
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        start = time.monotonic()
        self.sock.settimeout(1.0)
        while not self.stop:
            ahead = len(self.data) / self.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(min(ahead, 0.2))
                continue
            try:
                b = self.sock.recv(16384)
            except socket.timeout:
                continue
            if not b:
                break
            self.data += b

    def idle_after(self, seconds, limit):
        """Wait until nothing arrived for `seconds` (the stream ended and
        the queue drained), at most `limit` seconds."""
        deadline = time.monotonic() + limit
        last, seen = time.monotonic(), len(self.data)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if len(self.data) != seen:
                last, seen = time.monotonic(), len(self.data)
            elif time.monotonic() - last >= seconds:
                return True
        return False

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()

    def response(self):
        """(head, [(type, ts, payload[:2])] of the media tags)."""
        head, _, body = self.data.partition(b"\r\n\r\n")
        flv = b""
        while body:
            line, sep, rest = body.partition(b"\r\n")
            if not sep:
                break
            n = int(line, 16)
            if n == 0 or len(rest) < n + 2:
                break
            flv += rest[:n]
            body = rest[n + 2:]
        got = [(ty, ts, p[:2]) for ty, ts, p in t.flv_tags_of(flv) if ty in (8, 9) and len(p) > 1]
        return head.decode("latin-1"), got


def check_player(kb, tags, got, drained, port, what="slow player", stop_line="play stopped",
                 skip_line="player too slow"):
    t.require(drained, "%s: read its queue to the stream's end" % what)
    audio = [ts for ty, ts, hdr, _ in tags if ty == 8 and not hdr]
    video = [ts for ty, ts, hdr, _ in tags if ty == 9 and not hdr]
    keys = {ts for ty, ts, hdr, key in tags if ty == 9 and not hdr and key}
    ga = [ts for ty, ts, p in got if ty == 8 and not media_of(ty, p)[0]]
    gv = [(ts, media_of(ty, p)[1]) for ty, ts, p in got if ty == 9 and not media_of(ty, p)[0]]
    t.require(ga and gv, "%s: got audio and video" % what, (len(ga), len(gv)))
    # Every audio frame from its first one on, in order, each once.
    first = audio.index(ga[0]) if ga[0] in audio else None
    t.check(first is not None and ga == audio[first:],
            "%s: every audio frame from its first on, in order (none dropped)" % what,
            (len(ga), len(audio) - (first or 0)), "equal")
    # Video skipped, and resumed at keyframes only.
    vts = [ts for ts, _ in gv]
    vfirst = video.index(vts[0]) if vts[0] in video else 0
    owed = video[vfirst:]
    t.check(len(gv) < len(owed), "%s: video frames were skipped" % what,
            (len(gv), len(owed)), "fewer received than sent")
    pos = {ts: i for i, ts in enumerate(video)}
    bad = [(a, b) for (a, _), (b, key) in zip(gv, gv[1:])
           if pos.get(b, -1) != pos.get(a, -2) + 1 and not key]
    t.check(not bad and all(ts in pos for ts in vts),
            "%s: after every video gap the next video frame is a keyframe" % what, bad[:3], [])
    t.check(gv[0][1], "%s: the first video frame is a keyframe" % what)
    # kebun's count of what it dropped is the player's loss.
    peer = "stream=demo peer=127.0.0.1:%d " % port
    t.check(kb.wait_log(peer + skip_line + ", dropping video until a keyframe fits "
                        "(audio goes on)", after=0),
            "%s: kebun logs that it drops video first" % what)
    line = ""
    deadline = time.monotonic() + 10
    while not line and time.monotonic() < deadline:
        line = next((l for l in kb.log().splitlines() if peer + stop_line in l), "")
        time.sleep(0.05)
    m = re.search(r"(\d+) messages dropped \((\d+) video, (\d+) audio\)", line)
    t.require(m, "%s: its stop line counts drops by kind" % what, line,
              "... N messages dropped (V video, A audio)")
    # kebun counts every video message it did not send, H.264's end of
    # sequence included (the clip has one, after its last frame).
    eos = lambda ty, p: ty == 9 and len(p) > 1 and p[1] == 2
    lost = len(owed) - len(gv) + (1 - sum(1 for ty, _, p in got if eos(ty, p)))
    t.check((int(m.group(2)), int(m.group(3))) == (lost, 0),
            "%s: the log counts the video frames it did not get, and no audio" % what,
            m.group(0), "(%d video, 0 audio)" % lost)
    t.log("%s: %d/%d video frames, %d/%d audio frames" %
          (what, len(gv), len(owed), len(ga), len(audio) - (first or 0)))
    return keys


def check_platform(kb, tags, plat):
    conns = plat.live()
    t.require(conns, "slow platform: kebun published to it")
    _, media = conns[0].snapshot()
    audio = [ts for ty, ts, hdr, _ in tags if ty == 8 and not hdr]
    video = [ts for ty, ts, hdr, _ in tags if ty == 9 and not hdr]
    ga = [md.ts for md in media if md.type == 8 and not md.is_seqhdr]
    gv = [md for md in media if md.type == 9 and not md.is_seqhdr]
    t.require(len(ga) > 100, "slow platform: it received audio", len(ga), "> 100")
    t.check(contiguous(audio, ga) is not None,
            "slow platform: the audio it received has no gap (every frame, in order)",
            len(ga))
    i = contiguous(video, [md.ts for md in gv])
    t.check(i is None, "slow platform: video frames were skipped", len(gv))
    api = json.load(urllib.request.urlopen(
        "http://127.0.0.1:%d/api/v1/streams/demo" % kb.http_port, timeout=10))
    d = next((x for x in api.get("destinations", []) if x.get("name") == "slow"), {})
    t.check(d.get("drops_video", 0) > 0 and d.get("drops_audio") == 0,
            "slow platform: the API counts its video drops, and no audio drop",
            (d.get("drops_video"), d.get("drops_audio")), "(> 0, 0)")
    t.check(d.get("drops") == d.get("drops_video", 0) + d.get("drops_audio", 0),
            "slow platform: drops is the sum of its kinds", d)
    t.check(kb.wait_log("push slow: platform too slow, dropping video until a keyframe fits "
                        "(audio goes on)", after=0),
            "slow platform: kebun logs that it drops video first")


def main():
    clip = t.make_clip(CLIP_S, noise=True, bitrate=BITRATE)
    tags = flv_tags(clip)
    span = max(ts for _, ts, _, _ in tags) / 1000.0
    t.require(span > CLIP_S - 1, "the clip's tags read", span)
    size = os.path.getsize(clip)
    rate = size / span / 2
    # The platform's receive buffer is small, so only kebun's side of the
    # connection can hide how slowly it reads.
    plat = FakePlatform("slow", rcvbuf=65536, read_rate=rate)
    kb = t.Kebun(streams={"demo": KEY},
                 server_extra="player_queue = %d\npush_queue = %d" % (QUEUE, QUEUE),
                 stream_extra={"demo": "push = %s name=slow" % plat.url("app", "slow-key-0001")})
    # The player joins before the publisher, so it is owed everything.
    c = Client("127.0.0.1", kb.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.connect()
    msid = c.create_stream()
    c.command("play", None, "demo", -1000.0, msid=msid, txn=0)
    port = c.sock.getsockname()[1]
    t.require(kb.wait_log("stream=demo peer=127.0.0.1:%d play" % port, after=0),
              "the raw player is waiting for the stream")
    viewer = SlowViewer(kb.http_port, "demo", rate)
    t.require(kb.wait_log("stream=demo peer=127.0.0.1:%d http-flv viewer started (waiting for "
                          "the publisher)" % viewer.port, after=0),
              "the HTTP-FLV viewer is waiting for the stream")
    pub = t.publish_file(kb.url(KEY), clip)
    t.require(kb.wait_log("publish started", after=0, timeout=15), "the publisher is accepted")
    got, drained = slow_read(c, rate, time.monotonic() + CLIP_S * 3 + 20)
    check_platform(kb, tags, plat)
    c.close()
    t.check(pub.wait(30) == 0, "the publisher finished its clip")
    check_player(kb, tags, got, drained, port)
    # The viewer has read what kebun queued for it once nothing more comes.
    drained = viewer.idle_after(3, CLIP_S * 3 + 20)
    viewer.close()
    head, got = viewer.response()
    t.check(head.startswith("HTTP/1.1 200 ") and "transfer-encoding: chunked" in head.lower()
            and "video/x-flv" in head, "http-flv viewer: a chunked video/x-flv response",
            head.splitlines()[:1], "HTTP/1.1 200, chunked")
    check_player(kb, tags, got, drained, viewer.port, what="slow http-flv viewer",
                 stop_line="http-flv viewer stopped (the viewer left)",
                 skip_line="http-flv viewer too slow")
    plat.stop()
    kb.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
