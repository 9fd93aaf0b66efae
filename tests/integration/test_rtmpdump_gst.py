#!/usr/bin/env python3
"""librtmp (rtmpdump) plays; GStreamer's rtmp2sink publishes and rtmp2src plays.

These clients differ from ffmpeg where servers usually trip: librtmp falls
back to the simple handshake and sends acknowledgements, GStreamer's rtmp2
has its own chunk stream code and command sequence.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402


def check_av(path, what, size=None, rate=None):
    info = t.probe(path)
    st = t.streams_by_type(info)
    v, a = st.get("video", {}), st.get("audio", {})
    t.check(v.get("codec_name") == "h264", what + ": video is H.264", v.get("codec_name"), "h264")
    t.check(a.get("codec_name") == "aac", what + ": audio is AAC", a.get("codec_name"), "aac")
    if size:
        t.check((v.get("width"), v.get("height")) == size, what + ": resolution",
                (v.get("width"), v.get("height")), size)
    if rate:
        t.check(a.get("sample_rate") == str(rate), what + ": sample rate", a.get("sample_rate"),
                str(rate))
    return float(info.get("format", {}).get("duration", 0) or 0)


# How much a player must have written before it is stopped: more than the
# checks below ask for (2.5 s), so a player that got the stream passes and
# one that did not fails at the timeout.
PLAY_S = 3.0


def rtmpdump_plays(kb):
    mark = kb.mark()
    pub = t.publish_loop(kb.url(t.KEY), size="320x240", gop=15)
    t.require(kb.wait_log("publish started", after=mark), "ffmpeg publish accepted")
    out = os.path.join(kb.dir, "rtmpdump.flv")
    # -v: live. rtmpdump ends a live stream on SIGINT, closing its file.
    dump = t.spawn(["rtmpdump", "-q", "-v", "-r", kb.url("demo"), "-o", out])
    t.wait_until(lambda: t.flv_seconds(out) >= PLAY_S, 15, interval=0.2)
    code = t.stop(dump, sig=2)
    t.check(code in (0, 2), "rtmpdump played until stopped (exit 0 or 2 = incomplete live)", code,
            "0 or 2")
    t.check(os.path.exists(out) and os.path.getsize(out) > 10000, "rtmpdump wrote media",
            os.path.getsize(out) if os.path.exists(out) else 0, "> 10000")
    dur = check_av(out, "rtmpdump", size=(320, 240), rate=44100)
    t.check(dur >= 2.5, "rtmpdump received seconds of media", dur, ">= 2.5")
    mark = kb.mark()
    t.stop(pub)
    t.require(kb.wait_log("publish stopped", after=mark), "ffmpeg publisher gone")


def gstreamer(kb):
    mark = kb.mark()
    # rtmp2sink publishes H.264 + AAC (voaacenc) from live test sources.
    pub = t.spawn(["gst-launch-1.0", "-q",
                   "videotestsrc", "is-live=true", "!",
                   "video/x-raw,width=480,height=270,framerate=25/1", "!",
                   "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=25", "!",
                   "h264parse", "!", "flvmux", "streamable=true", "name=m", "!",
                   "rtmp2sink", "location=" + kb.url(t.KEY),
                   "audiotestsrc", "is-live=true", "!", "audio/x-raw,rate=48000", "!",
                   "voaacenc", "!", "aacparse", "!", "m."])
    t.require(kb.wait_log("publish started", after=mark, timeout=15),
              "GStreamer rtmp2sink publish accepted")

    # ffmpeg sees what GStreamer published.
    info = t.probe(kb.url("demo"))
    st = t.streams_by_type(info)
    t.check(st.get("video", {}).get("width") == 480, "ffprobe of the GStreamer stream: 480 wide",
            st.get("video", {}).get("width"), 480)
    t.check(st.get("audio", {}).get("sample_rate") == "48000",
            "ffprobe of the GStreamer stream: 48 kHz", st.get("audio", {}).get("sample_rate"),
            "48000")

    # rtmp2src plays into a file for a few seconds.
    out = os.path.join(kb.dir, "gst.flv")
    play = t.spawn(["gst-launch-1.0", "-q", "-e", "rtmp2src", "location=" + kb.url("demo"), "!",
                    "filesink", "location=" + out])
    t.wait_until(lambda: t.flv_seconds(out) >= PLAY_S, 15, interval=0.2)
    t.stop(play, sig=2)  # SIGINT with -e: EOS and a clean file
    t.check(os.path.exists(out) and os.path.getsize(out) > 10000, "rtmp2src wrote media",
            os.path.getsize(out) if os.path.exists(out) else 0, "> 10000")
    dur = check_av(out, "rtmp2src", size=(480, 270), rate=48000)
    t.check(dur >= 2.5, "rtmp2src received seconds of media", dur, ">= 2.5")
    t.stop(pub, sig=2)


def main():
    kb = t.Kebun()
    rtmpdump_plays(kb)
    gstreamer(kb)
    text = kb.stop()
    t.check(t.KEY not in text, "the stream key never appears in the log")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
