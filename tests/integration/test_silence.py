#!/usr/bin/env python3
"""Silent audio for streams without (silent_audio = auto).

- A video-only H.264 stream (a phone with its microphone off) reaches
  nginx-rtmp with an AAC track (48 kHz stereo) whose duration matches the
  video's within one frame and which starts with it; it decodes without an
  error; kebun's recording has the track too, as does a player.
- A stream whose audio starts 3 s in: silence first (after 2 s without
  audio), then kebun switches to the real audio at the next keyframe with
  exactly one new sequence header, logged; the audio on the platform has no
  gap and never goes back in time; it decodes without an error.
- silent_audio = off leaves a video-only stream alone.
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from platforms import Nginx  # noqa: E402

MUTE_KEY = "mute-key-00000001"
LATE_KEY = "late-key-00000001"
OFF_KEY = "off-key-000000001"
FPS = 25
SECONDS = 6


def flv_tags(path):
    """[(type, timestamp, payload)] of an FLV file's audio and video tags."""
    return [tag for tag in t.flv_tags(path) if tag[0] in (8, 9)]


def durations(path):
    """(video first, video end, audio first, audio end) in seconds, from
    ffprobe's packets (end = last pts + its frame's duration)."""
    pk = t.packets(path)
    v = [p[1] for p in pk if p[0] == "video" and p[1] is not None]
    a = [p[1] for p in pk if p[0] == "audio" and p[1] is not None]
    if not v or not a:
        return None
    return min(v), max(v) + 1.0 / FPS, min(a), max(a) + 1024 / 48000.0


def decode_errors(path):
    r = t.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-f", "null",
               "-"], timeout=60)
    return (r.stderr.strip().splitlines() + ([] if r.returncode == 0 else ["exit %d" %
                                                                          r.returncode]))


def wait_line(kb, stream, text, timeout=30):
    """A log line of this stream that holds text (each stream here is
    published once, so its whole log is the cursor)."""
    return t.wait_until(lambda: any("stream=%s " % stream in l and text in l
                                    for l in kb.log().splitlines()), timeout)


def platform_file(kb, nginx, stream, name):
    """nginx-rtmp's recording of the push, once kebun unpublished it (the
    broadcast is over at once: grace 0) and nginx wrote the last frame."""
    if not wait_line(kb, stream, "broadcast ended: unpublished"):
        return None
    last = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        files = [f for f in nginx.recordings("live") if os.path.basename(f).startswith(name)]
        if files:
            v = [ts for ty, ts, _ in flv_tags(files[-1]) if ty == 9]
            if v and max(v) >= (SECONDS - 1) * 1000 and max(v) == last:
                return files[-1]
            last = max(v) if v else None
        time.sleep(0.2)
    return None


def check_lengths(path, what):
    d = durations(path)
    t.require(d, "%s: has video and audio packets" % what, d)
    v0, v1, a0, a1 = d
    frame = 1.0 / FPS
    t.check(abs(a0 - v0) <= 1024 / 48000.0 + 0.001,
            "%s: the audio starts with the video (within one audio frame)" % what,
            (round(v0, 3), round(a0, 3)))
    t.check(abs((a1 - a0) - (v1 - v0)) <= frame + 0.001,
            "%s: the audio track's duration matches the video's within one frame" % what,
            (round(v1 - v0, 3), round(a1 - a0, 3)), "within %.3f s" % frame)


def check_aac(path, what):
    s = t.streams_by_type(t.probe(path))
    a = s.get("audio", {})
    t.check(a.get("codec_name") == "aac" and a.get("sample_rate") == "48000",
            "%s: an AAC 48 kHz track" % what, (a.get("codec_name"), a.get("sample_rate")),
            ("aac", "48000"))
    errs = decode_errors(path)
    t.check(not errs, "%s: decodes without an error" % what, errs[:5], [])


def mute(kb, nginx, work):
    """A video-only stream gets silence from its first frame."""
    path = t.spec_clip(t.late_audio_spec(SECONDS))
    player_out = os.path.join(work, "player.flv")
    player = t.record(kb.url("mute"), player_out)
    pub = t.publish_file(kb.url(MUTE_KEY), path)
    t.check(wait_line(kb, "mute", "publish started", 15), "mute: the publisher is accepted")
    t.check(wait_line(kb, "mute", "silent audio: no audio in the first 2.0 s of video, adding "
                      "silent AAC (48000 Hz stereo) from the first video frame", 15),
            "mute: kebun logs that it adds silence after 2 s without audio")
    audio = None
    deadline = time.monotonic() + 5  # the status is a snapshot, 250 ms old at most
    while time.monotonic() < deadline and not (audio or {}).get("silent"):
        doc = json.load(urllib.request.urlopen(
            "http://127.0.0.1:%d/api/v1/streams/mute" % kb.http_port, timeout=10))
        audio = doc.get("audio")
        time.sleep(0.05)
    t.check(audio and audio.get("codec") == "AAC" and audio.get("silent") is True and
            audio.get("sample_rate") == 48000, "mute: the API shows the audio as kebun's silence",
            audio)
    t.check(pub.wait(60) == 0, "mute: the publisher sent its clip")
    f = platform_file(kb, nginx, "mute", "PLATFORM-MUTE")
    t.stop(player)
    t.require(f, "mute: nginx-rtmp recorded the whole push")
    tags = flv_tags(f)
    # nginx-rtmp writes the header it cached at the file's start, then the
    # one it was sent: the same bytes twice, before any frame.
    first = next(ts for ty, ts, p in tags if ty == 8 and len(p) > 1 and p[1] == 1)
    heads = [(ts, p) for ty, ts, p in tags if ty == 8 and len(p) > 1 and p[1] == 0]
    t.check(heads and len({p for _, p in heads}) == 1 and all(ts <= first for ts, _ in heads),
            "mute: the platform got one AAC sequence header, before the first frame",
            [(ts, p.hex()) for ts, p in heads])
    check_aac(f, "mute on nginx-rtmp")
    check_lengths(f, "mute on nginx-rtmp")
    # kebun's own recording.
    rec = os.path.join(kb.dir, "recordings", "mute")
    mp4 = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not mp4:
        for d in sorted(os.listdir(rec)) if os.path.isdir(rec) else []:
            p = os.path.join(rec, d, "recording.mp4")
            if os.path.exists(p):
                mp4 = p
        time.sleep(0.1)
    t.require(mp4, "mute: kebun exported its recording")
    check_aac(mp4, "mute recording")
    check_lengths(mp4, "mute recording")
    # A player got it too.
    s = t.streams_by_type(t.probe(player_out))
    t.check(s.get("audio", {}).get("codec_name") == "aac",
            "mute: a player gets the silent track too", sorted(s))


def late(kb, nginx, work):
    """Audio that starts 3 s in replaces the silence at a keyframe."""
    path = t.spec_clip(t.late_audio_spec(SECONDS, 3))
    pub = t.publish_file(kb.url(LATE_KEY), path)
    t.check(wait_line(kb, "late", "publish started", 15), "late: the publisher is accepted")
    t.check(wait_line(kb, "late", "silent audio: no audio in the first 2.0 s of video", 15),
            "late: silence after 2 s without audio")
    t.check(wait_line(kb, "late", "silent audio: the publisher's audio began; switching to it "
                      "at the next keyframe", 15), "late: kebun logs that the real audio began")
    t.check(wait_line(kb, "late", "silent audio: switched to the publisher's audio at a keyframe",
                      15), "late: kebun logs the switch")
    t.check(pub.wait(60) == 0, "late: the publisher sent its clip")
    f = platform_file(kb, nginx, "late", "PLATFORM-LATE")
    t.require(f, "late: nginx-rtmp recorded the whole push")
    tags = flv_tags(f)
    first = next(ts for ty, ts, p in tags if ty == 8 and len(p) > 1 and p[1] == 1)
    heads = [(ts, p) for ty, ts, p in tags if ty == 8 and len(p) > 1 and p[1] == 0]
    later = [ts for ts, _ in heads if ts > first]
    t.check(len(later) == 1, "late: one new sequence header at the switch",
            [ts for ts, _ in heads], "the silence's before the first frame, then one")
    if len(later) == 1:
        keys = {ts for ty, ts, p in tags if ty == 9 and p[0] >> 4 == 1 and p[1] == 1}
        t.check(later[0] in keys and later[0] >= 2900,
                "late: the switch is at a video keyframe after the audio began",
                (later[0], sorted(keys)))
    audio = [ts for ty, ts, p in tags if ty == 8 and len(p) > 1 and p[1] == 1]
    steps = [b - a for a, b in zip(audio, audio[1:])]
    t.check(steps and min(steps) >= 0 and max(steps) <= 25,
            "late: the platform's audio never goes back in time and has no gap (<= 25 ms steps)",
            (min(steps or [0]), max(steps or [0])), "0..25 ms")
    check_aac(f, "late on nginx-rtmp")
    check_lengths(f, "late on nginx-rtmp")


def off(kb, nginx, work):
    path = t.spec_clip(t.late_audio_spec(SECONDS))
    pub = t.publish_file(kb.url(OFF_KEY), path)
    t.check(wait_line(kb, "off", "publish started", 15), "off: the publisher is accepted")
    t.check(pub.wait(60) == 0, "off: the publisher sent its clip")
    f = platform_file(kb, nginx, "off", "PLATFORM-OFF")
    t.require(f, "off: nginx-rtmp recorded the whole push")
    t.check(not [ty for ty, _, _ in flv_tags(f) if ty == 8],
            "off: silent_audio = off adds no audio")
    t.check(not wait_line(kb, "off", "silent audio", 0),
            "off: no silent-audio log line for the stream")


def main():
    work = t.tempdir("kebun-silence-")
    nginx = Nginx(work, "a", {"live": ""})
    extra = {
        "mute": "record = on\npush = %s name=a\n" % nginx.url("live", "PLATFORM-MUTE"),
        "late": "push = %s name=a\n" % nginx.url("live", "PLATFORM-LATE"),
        "off": "silent_audio = off\npush = %s name=a\n" % nginx.url("live", "PLATFORM-OFF"),
    }
    kb = t.Kebun(streams={"mute": MUTE_KEY, "late": LATE_KEY, "off": OFF_KEY},
                 server_extra="grace = 0s", stream_extra=extra)
    mute(kb, nginx, work)
    late(kb, nginx, work)
    off(kb, nginx, work)
    kb.stop()
    nginx.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
