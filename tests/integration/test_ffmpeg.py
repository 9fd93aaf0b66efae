#!/usr/bin/env python3
"""ffmpeg publishes H.264 + AAC; ffprobe and ffmpeg play it back over RTMP.

A player that joined before the publisher records the whole broadcast: it
must see H.264 and AAC with the published resolution and sample rate, and a
duration within one GOP of what was sent, with timestamps that never go
backwards.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402

SECONDS = 6
GOP_S = 1.0  # -g 30 at 30 fps


def main():
    kb = t.Kebun()
    out = os.path.join(kb.dir, "played.flv")

    # A player that arrives first waits for the publisher.
    player = t.record(kb.url("demo"), out)
    t.require(kb.wait_log("play started (waiting for the publisher)", after=0),
              "player waits for a publisher that has not started")

    mark = kb.mark()
    pub = t.publish(kb.url(t.KEY), SECONDS, size="640x360", rate=30, gop=30,
                    sample_rate=44100)
    t.require(kb.wait_log("publish started", after=mark), "publish accepted")

    # A second player probes while the stream is live.
    info = t.probe(kb.url("demo"))
    st = t.streams_by_type(info)
    v, a = st.get("video", {}), st.get("audio", {})
    t.check(v.get("codec_name") == "h264", "live probe: video is H.264", v.get("codec_name"), "h264")
    t.check((v.get("width"), v.get("height")) == (640, 360), "live probe: 640x360",
            (v.get("width"), v.get("height")), (640, 360))
    t.check(a.get("codec_name") == "aac", "live probe: audio is AAC", a.get("codec_name"), "aac")
    t.check(a.get("sample_rate") == "44100", "live probe: 44100 Hz", a.get("sample_rate"), "44100")

    pub_code = pub.wait(60)
    t.check(pub_code == 0, "publisher finished cleanly", pub_code, 0)
    # The player ends when kebun tells it the stream was unpublished.
    try:
        code = player.wait(15)
    except Exception:
        code = None
    t.check(code == 0, "player ended cleanly after the unpublish", code, 0)

    info = t.probe(out)
    st = t.streams_by_type(info)
    v, a = st.get("video", {}), st.get("audio", {})
    t.check(v.get("codec_name") == "h264" and (v.get("width"), v.get("height")) == (640, 360),
            "recording: H.264 640x360", v, "h264 640x360")
    t.check(a.get("codec_name") == "aac" and a.get("sample_rate") == "44100",
            "recording: AAC 44100 Hz", a, "aac 44100")
    dur = float(info.get("format", {}).get("duration", 0))
    t.check(abs(dur - SECONDS) <= GOP_S, "recorded duration within one GOP of %d s" % SECONDS,
            dur, SECONDS)

    pk = t.packets(out)
    for kind in ("video", "audio"):
        dts = [p[2] for p in pk if p[0] == kind and p[2] is not None]
        back = [(x, y) for x, y in zip(dts, dts[1:]) if y < x]
        t.check(len(dts) > 10 and not back, "%s timestamps never go backwards" % kind,
                back[:3], [])
    first_video = next((p for p in pk if p[0] == "video"), None)
    t.check(first_video is not None and first_video[3], "the player's first video frame is a keyframe",
            first_video, "keyframe")
    frames = sum(1 for p in pk if p[0] == "video")
    t.check(abs(frames - SECONDS * 30) <= 30, "video frame count within one GOP of %d" % (SECONDS * 30),
            frames, SECONDS * 30)

    text = kb.stop()
    t.check(t.KEY not in text, "the stream key never appears in the log")
    t.check("publish stopped after" in text, "log has the publish stop line with duration")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
