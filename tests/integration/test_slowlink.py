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
"""
import json
import os
import re
import socket
import sys
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


def check_player(kb, tags, got, drained, port):
    t.require(drained, "slow player: read its queue up to UnpublishNotify")
    audio = [ts for ty, ts, hdr, _ in tags if ty == 8 and not hdr]
    video = [ts for ty, ts, hdr, _ in tags if ty == 9 and not hdr]
    keys = {ts for ty, ts, hdr, key in tags if ty == 9 and not hdr and key}
    ga = [ts for ty, ts, p in got if ty == 8 and not media_of(ty, p)[0]]
    gv = [(ts, media_of(ty, p)[1]) for ty, ts, p in got if ty == 9 and not media_of(ty, p)[0]]
    t.require(ga and gv, "slow player: got audio and video", (len(ga), len(gv)))
    # Every audio frame from its first one on, in order, each once.
    first = audio.index(ga[0]) if ga[0] in audio else None
    t.check(first is not None and ga == audio[first:],
            "slow player: every audio frame from its first on, in order (none dropped)",
            (len(ga), len(audio) - (first or 0)), "equal")
    # Video skipped, and resumed at keyframes only.
    vts = [ts for ts, _ in gv]
    vfirst = video.index(vts[0]) if vts[0] in video else 0
    owed = video[vfirst:]
    t.check(len(gv) < len(owed), "slow player: video frames were skipped",
            (len(gv), len(owed)), "fewer received than sent")
    pos = {ts: i for i, ts in enumerate(video)}
    bad = [(a, b) for (a, _), (b, key) in zip(gv, gv[1:])
           if pos.get(b, -1) != pos.get(a, -2) + 1 and not key]
    t.check(not bad and all(ts in pos for ts in vts),
            "slow player: after every video gap the next video frame is a keyframe", bad[:3], [])
    t.check(gv[0][1], "slow player: the first video frame is a keyframe")
    # kebun's count of what it dropped is the player's loss.
    peer = "stream=demo peer=127.0.0.1:%d " % port
    t.check(kb.wait_log(peer + "player too slow, dropping video until a keyframe fits "
                        "(audio goes on)", after=0),
            "slow player: kebun logs that it drops video first")
    line = ""
    deadline = time.monotonic() + 10
    while not line and time.monotonic() < deadline:
        line = next((l for l in kb.log().splitlines() if peer + "play stopped" in l), "")
        time.sleep(0.05)
    m = re.search(r"(\d+) messages dropped \((\d+) video, (\d+) audio\)", line)
    t.require(m, "slow player: its stop line counts drops by kind", line,
              "... N messages dropped (V video, A audio)")
    # kebun counts every video message it did not send, H.264's end of
    # sequence included (the clip has one, after its last frame).
    eos = lambda ty, p: ty == 9 and len(p) > 1 and p[1] == 2
    lost = len(owed) - len(gv) + (1 - sum(1 for ty, _, p in got if eos(ty, p)))
    t.check((int(m.group(2)), int(m.group(3))) == (lost, 0),
            "slow player: the log counts the video frames it did not get, and no audio",
            m.group(0), "(%d video, 0 audio)" % lost)
    t.log("slow player: %d/%d video frames, %d/%d audio frames" %
          (len(gv), len(owed), len(ga), len(audio) - (first or 0)))
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
    pub = t.publish_file(kb.url(KEY), clip)
    t.require(kb.wait_log("publish started", after=0, timeout=15), "the publisher is accepted")
    got, drained = slow_read(c, rate, time.monotonic() + CLIP_S * 3 + 20)
    check_platform(kb, tags, plat)
    c.close()
    t.check(pub.wait(30) == 0, "the publisher finished its clip")
    check_player(kb, tags, got, drained, port)
    plat.stop()
    kb.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
