#!/usr/bin/env python3
"""Recording through the relay: what a buyer replays later.

- ffmpeg publishes 30 s: one recording with a playlist whose every segment
  decodes, the duration within one segment, every frame, audio and video
  starting together, meta.json complete, a thumbnail, and an exported MP4
  with moov before mdat.
- A publisher that drops and returns within the grace period continues the
  same recording; one that returns after it starts a new one.
- kill -9 mid-recording: after a restart the recording is closed (ENDLIST)
  and marked interrupted, and every listed segment decodes.
- The disk fills up: the recording fails with a clear log line while a
  player keeps receiving in real time, and resumes as a new part once space
  is back.
- `record = on` switched on by SIGHUP while the stream is live starts a
  recording at once, from the cached keyframe; retention limits changed by
  SIGHUP apply at once (the finished recording is deleted, never the live
  one).
- A hostile stream name is refused before any file is created.
"""
import glob
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from rtmpclient import Client  # noqa: E402

SEGMENT_S = 2
# Long enough for a returning ffmpeg to start on a busy machine (it may
# take two seconds) after the 1 s the grace test keeps it away.
GRACE_S = 5
SECONDS = 30  # the first broadcast, as long as the issue asks
SECOND_KEY = "second-stream-key-01"  # the grace test runs on it meanwhile


def recordings(kb, stream="demo"):
    return sorted(glob.glob(os.path.join(kb.dir, "recordings", stream, "*Z")))


def meta(rec):
    try:
        with open(os.path.join(rec, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def wait_status(rec, status, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if meta(rec).get("status") == status:
            return True
        time.sleep(0.2)
    return False


def decode_errors(playlist):
    r = t.run(["ffmpeg", "-v", "error", "-i", playlist, "-f", "null", "-"], timeout=120)
    return (r.stderr.strip() or ("exit %d" % r.returncode if r.returncode else ""))


def top_boxes(path):
    out = []
    with open(path, "rb") as f:
        while True:
            h = f.read(8)
            if len(h) < 8:
                break
            size, kind = struct.unpack(">I4s", h)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
                f.seek(size - 16, 1)
            else:
                f.seek(size - 8, 1)
            out.append(kind.decode("latin1"))
            if size == 0:
                break
    return out


def count_frames(path, kind):
    sel = "v:0" if kind == "video" else "a:0"
    r = t.run(["ffprobe", "-v", "error", "-select_streams", sel, "-count_packets",
               "-show_entries", "stream=nb_read_packets,start_time", "-of", "json", path],
              timeout=120)
    s = json.loads(r.stdout or "{}").get("streams", [{}])[0]
    return int(s.get("nb_read_packets", 0)), float(s.get("start_time", "nan"))


def whole_broadcast(kb, meanwhile):
    pub = t.publish(kb.url(t.KEY), SECONDS, size="640x360", gop=30)

    def status_recording():
        """Ask for the status until it shows the recording in progress
        (before the first frames it is 'waiting')."""
        mark = kb.mark()
        os.kill(kb.proc.pid, signal.SIGUSR1)
        if kb.wait_log("status: recording ", after=mark, timeout=3):
            return kb.wait_log("status: recording recording, demo/", after=mark, timeout=0)
        return None
    t.check(t.wait_until(status_recording, 10, interval=0.3),
            "SIGUSR1 status shows the recording in progress with its directory")
    meanwhile()  # another stream's test, while the 30 s run on (and it records apart)
    t.require(pub.wait(60) == 0, "publisher ran %d s" % SECONDS)
    recs = recordings(kb)
    t.require(len(recs) == 1, "one recording for the broadcast", recs, 1)
    rec = recs[0]
    t.check(wait_status(rec, "complete", GRACE_S + 10), "recording marked complete after the "
            "grace period", meta(rec).get("status"), "complete")
    m = meta(rec)
    playlist = os.path.join(rec, "index.m3u8")
    with open(playlist) as f:
        pl = f.read()
    t.check("#EXT-X-ENDLIST" in pl, "playlist ends with EXT-X-ENDLIST")
    t.check(decode_errors(playlist) == "", "every listed segment decodes without an error")
    segs = [l for l in pl.splitlines() if l and not l.startswith("#")]
    # Each segment on its own (an fMP4 one after init.mp4, as a player
    # fetches it) holds video and audio of about the playlist's duration.
    durs = [float(x) for x in re.findall(r"#EXTINF:([0-9.]+)", pl)]
    init = os.path.join(rec, "init.mp4")
    bad = []
    for seg, want in zip(segs, durs):
        path = os.path.join(rec, seg)
        if seg.endswith(".m4s"):
            joined = os.path.join(kb.dir, "joined.mp4")
            with open(joined, "wb") as out, open(init, "rb") as a, open(path, "rb") as b:
                out.write(a.read() + b.read())
            path = joined
        info = t.probe(path)
        kinds = sorted(s.get("codec_type") for s in info.get("streams", []))
        fmt = info.get("format", {})
        # ffprobe counts a fragment's duration from time 0, not from its start.
        got = float(fmt.get("duration", 0) or 0) - float(fmt.get("start_time", 0) or 0)
        if kinds != ["audio", "video"] or abs(got - want) > 0.2:
            bad.append((seg, kinds, got, want))
    t.check(segs and len(durs) == len(segs) and not bad, "every segment plays on its own with "
            "audio and video for its EXTINF duration", bad[:3], [])
    info = t.probe(playlist)
    dur = float(info.get("format", {}).get("duration", 0) or 0)
    t.check(abs(dur - SECONDS) <= SEGMENT_S, "recorded duration within one segment of %d s" %
            SECONDS, dur, SECONDS)
    st = t.streams_by_type(info)
    t.check(st.get("video", {}).get("width") == 640 and st.get("audio", {}).get("sample_rate")
            == "44100", "recording is H.264 640x360 + AAC 44100", st, "640x360, 44100")
    frames, vstart = count_frames(playlist, "video")
    t.check(frames == SECONDS * 30, "every video frame ffmpeg sent is recorded", frames,
            SECONDS * 30)
    aframes, astart = count_frames(playlist, "audio")
    # ffmpeg's AAC encoder: one frame per 1024 samples plus its priming frame.
    want_a = SECONDS * 44100 / 1024
    t.check(abs(aframes - want_a) <= 3, "every audio frame ffmpeg sent is recorded", aframes,
            "%.0f +- 3" % want_a)
    t.check(abs(vstart - astart) <= 1 / 30 + 1e-6, "audio and video start within one frame",
            (vstart, astart), "|v - a| <= 33 ms")
    t.check(m.get("width") == 640 and m.get("height") == 360 and m.get("segments") == len(segs),
            "meta.json has resolution and segment count", m, "640x360, %d segments" % len(segs))
    thumb = os.path.join(rec, "thumb.jpg")
    tinfo = t.streams_by_type(t.probe(thumb)).get("video", {})
    t.check(tinfo.get("codec_name") == "mjpeg", "thumb.jpg is a JPEG", tinfo, "mjpeg")
    mp4 = os.path.join(rec, "recording.mp4")
    deadline = time.monotonic() + 10
    while not os.path.exists(mp4) and time.monotonic() < deadline:
        time.sleep(0.2)
    boxes = top_boxes(mp4) if os.path.exists(mp4) else []
    t.check("moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat"),
            "exported MP4 has moov before mdat", boxes, "moov before mdat")
    d = float(t.probe(mp4).get("format", {}).get("duration", 0) or 0)
    t.check(abs(d - SECONDS) <= SEGMENT_S, "exported MP4 has the right duration", d, SECONDS)
    # On demand: kebun --export makes it again from the segments.
    os.unlink(mp4)
    r = t.run([t.KEBUN, "--export", rec], timeout=60)
    boxes = top_boxes(mp4) if os.path.exists(mp4) else []
    t.check(r.returncode == 0 and "moov" in boxes and boxes.index("moov") < boxes.index("mdat"),
            "kebun --export DIR remakes the MP4 on demand", (r.returncode, r.stderr[-200:],
                                                              boxes), "0, moov before mdat")


def grace(kb, stream, key):
    n0 = len(recordings(kb, stream))
    p = t.publish(kb.url(key), 2, size="320x240", gop=30)
    p.wait(30)
    time.sleep(1)  # the phone is away for 1 s, within the grace period: the test
    # The phone comes back with another resolution: same recording, a new
    # part after a discontinuity.
    p = t.publish(kb.url(key), 2, size="640x360", gop=30)
    p.wait(30)
    recs = recordings(kb, stream)
    t.check(len(recs) == n0 + 1, "a return within the grace period continues the recording",
            len(recs) - n0, 1)
    t.check(wait_status(recs[-1], "complete", GRACE_S + 10), "that recording completes after "
            "the grace period")
    dur = float(t.probe(os.path.join(recs[-1], "index.m3u8")).get("format", {}).get(
        "duration", 0) or 0)
    t.check(dur >= 3.5, "it holds both sessions' media", dur, ">= 3.5 s")
    with open(os.path.join(recs[-1], "index.m3u8")) as f:
        pl = f.read()
    t.check(pl.count("#EXT-X-DISCONTINUITY") == 1, "the new resolution starts after one "
            "EXT-X-DISCONTINUITY", pl.count("#EXT-X-DISCONTINUITY"), 1)
    t.check(decode_errors(os.path.join(recs[-1], "index.m3u8")) == "",
            "both parts decode without an error")
    p = t.publish(kb.url(key), 2, size="320x240", gop=30)
    p.wait(30)
    recs = recordings(kb, stream)
    t.check(len(recs) == n0 + 2, "a return after the grace period starts a new recording",
            len(recs) - n0, 2)
    t.check(wait_status(recs[-1], "complete", GRACE_S + 10), "the new one completes too")


def crash(kb):
    n0 = len(recordings(kb))
    pub = t.publish_loop(kb.url(t.KEY), size="320x240", gop=30)
    started = time.monotonic()
    t.wait_until(lambda: len(recordings(kb)) > n0, 5)
    first_media = time.monotonic()  # the recording exists once media arrives
    # About 7 s of publishing before the kill, so that whole segments exist
    # besides the one in progress: the test.
    time.sleep(max(0.0, 7 - (first_media - started)))
    os.kill(kb.proc.pid, signal.SIGKILL)
    sent = (time.monotonic() - first_media) * 30  # frames ffmpeg -re sent since
    kb.proc.wait()
    t.stop(pub)
    rec = recordings(kb)[-1]
    t.check(len(recordings(kb)) == n0 + 1 and meta(rec).get("status") == "live",
            "after kill -9 the recording is left 'live'", meta(rec).get("status"), "live")
    r = t.run([t.KEBUN, "--export", rec], timeout=60)
    t.check(r.returncode == 1 and "still open" in r.stderr, "an open recording is not exported",
            (r.returncode, r.stderr[-200:]), "exit 1, still open")
    kb2 = t.Kebun(server_extra=kb.server_extra, stream_extra=kb.stream_extra, dir=kb.dir)
    t.check(wait_status(rec, "interrupted", 10), "on restart the recording is marked interrupted",
            meta(rec).get("status"), "interrupted")
    with open(os.path.join(rec, "index.m3u8")) as f:
        t.check("#EXT-X-ENDLIST" in f.read(), "its playlist gets EXT-X-ENDLIST")
    t.check(not glob.glob(os.path.join(rec, "*.tmp")), "no temp files are left")
    t.check(decode_errors(os.path.join(rec, "index.m3u8")) == "",
            "every listed segment of the interrupted recording decodes")
    frames, _ = count_frames(os.path.join(rec, "index.m3u8"), "video")
    # Lost: at most the segment in progress, which is cut at the first
    # keyframe (1 s GOP) after SEGMENT_S.
    least = int(sent) - (SEGMENT_S + 1) * 30
    t.log("kill -9: %d video frames recorded of ~%d sent" % (frames, sent))
    t.check(frames >= least, "it keeps every frame sent before the kill but the segment in "
            "progress", frames, ">= %d of ~%d sent" % (least, sent))
    return kb2


def disk_full():
    """A small filesystem for the recordings while a player watches."""
    mnt = os.path.join(t.tempdir("kebun-disk-full-"), "small")
    os.makedirs(mnt)
    mounted = os.geteuid() == 0 and t.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                                           mnt]).returncode == 0
    filler = os.path.join(mnt, "filler")
    limits = None
    if mounted:
        with open(filler, "wb") as f:
            f.write(b"\0" * (2 * 1024 * 1024))
        t.log("recordings on a 4 MB tmpfs with 2 MB taken")
    else:
        # Not root: a file size limit makes writes fail the same way.
        limits = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # noqa
        t.log("recordings under RLIMIT_FSIZE = 1 MB (not root, no tmpfs)")
    try:
        kb = t.Kebun(server_extra="recordings = %s\ngrace = 1s\nsegment_duration = 1s" % mnt,
                     stream_extra={"demo": "record = on"}, preexec=limits)
        clip = t.make_clip(10, noise=True, bitrate="4M")
        pub = t.publish_file(kb.url(t.KEY), clip, loop=True)
        t.require(kb.wait_log("publish started", after=0), "publisher live")
        c = Client("127.0.0.1", kb.port)
        c.connect()
        c.play("demo", c.create_stream())
        first = last = None
        start = time.monotonic()
        freed = False
        while time.monotonic() - start < 11:
            m = c.read_message(timeout=5)
            if m.type in (8, 9):
                first = m.ts if first is None else first
                last = m.ts
            if not freed and "recording failed" in kb.log():
                # The status the API will serve says so too (once the
                # recorder's status has caught up: it is sampled).
                status, deadline = "", time.monotonic() + 5
                while "status: recording failed" not in status and time.monotonic() < deadline:
                    mark = kb.mark()
                    os.kill(kb.proc.pid, signal.SIGUSR1)
                    m = kb.wait_re(r".*status: recording.*", after=mark, timeout=3)
                    status = m.group(0) if m else ""
                t.check("status: recording failed" in status and ("No space" in status or
                                                                  "too large" in status),
                        "the status shows the recording failed and why", status,
                        "recording failed, ... last error: ...No space...")
                if mounted:
                    os.unlink(filler)
                freed = True
        span = (last or 0) - (first or 0)
        t.check(span >= 9500, "the player kept receiving in real time through the disk "
                "failure", span, ">= 9500 ms in 11 s")
        text = kb.log()
        failed = [l for l in text.splitlines() if "recording failed" in l]
        t.check(failed and ("No space left on device" in failed[0] or
                            "File too large" in failed[0]),
                "the failure is logged clearly", failed[:1], "recording failed: ... No space")
        if mounted:
            t.check(kb.wait_log("recording resumed as part", after=0, timeout=10),
                    "recording resumes as a new part once space is back")
        recs = sorted(glob.glob(os.path.join(mnt, "demo", "*Z")))
        m = meta(recs[-1]) if recs else {}
        t.check("No space" in (m.get("last_error") or "") or "too large" in (m.get("last_error")
                                                                           or ""),
                "meta.json keeps the last error", m.get("last_error"), "...No space...")
        c.close()
        t.stop(pub)
        kb.stop()
    finally:
        if mounted:
            t.run(["umount", "-l", mnt])


def reload_record():
    """record switched on, then retention changed, by SIGHUP while live."""
    extra = "grace = 1s\nsegment_duration = %ds" % SEGMENT_S
    kb = t.Kebun(server_extra=extra, stream_extra={"demo": "record = off"})
    pub = t.publish(kb.url(t.KEY), 6, size="320x240", gop=30)
    t.require(kb.wait_log("publish start", after=0, timeout=10), "publisher live")
    # Two seconds of a live stream that is not recorded, then the switch
    # mid-broadcast: the test.
    time.sleep(2)
    t.check(recordings(kb) == [], "nothing is recorded while record = off")

    def reload(old, new):
        with open(kb.conf) as f:
            conf = f.read()
        with open(kb.conf, "w") as f:
            f.write(conf.replace(old, new))
        os.kill(kb.proc.pid, signal.SIGHUP)

    switched = time.monotonic()
    mark = kb.mark()
    reload("record = off", "record = on")
    t.check(kb.wait_log("recording starts mid-broadcast", after=mark, timeout=5),
            "SIGHUP with record = on starts recording the live stream")
    t.require(pub.wait(30) == 0, "publisher ran 6 s")
    left = time.monotonic() - switched  # what was sent after the switch
    recs = recordings(kb)
    t.require(len(recs) == 1, "one recording, begun mid-broadcast", recs, 1)
    t.check(wait_status(recs[0], "complete", 10), "it completes after the grace period",
            meta(recs[0]).get("status"), "complete")
    playlist = os.path.join(recs[0], "index.m3u8")
    t.check(decode_errors(playlist) == "", "it decodes without an error (starts at a keyframe)")
    frames, _ = count_frames(playlist, "video")
    # It begins at the keyframe cached before the switch (1 s GOP).
    t.check(frames >= int(left * 30) - 15, "it holds every frame sent after the switch",
            frames, ">= %d" % (int(left * 30) - 15))

    # A second broadcast is live while retention shrinks to nothing: the
    # finished recording goes at once, the live one stays.
    pub = t.publish(kb.url(t.KEY), 6, size="320x240", gop=30)
    t.wait_until(lambda: len(recordings(kb)) >= 2, 10, interval=0.1)
    both = recordings(kb)
    t.require(len(both) == 2, "the second broadcast records", both, 2)
    mark = kb.mark()
    reload("record = on", "record = on\nretention_size = 1")
    t.check(kb.wait_log("retention deleted recording", after=mark, timeout=5),
            "retention changed by SIGHUP applies at once")
    left = recordings(kb)
    t.check(left == both[1:], "the finished recording is deleted, the live one kept", left,
            both[1:])
    t.check(meta(left[0]).get("status") == "live" if left else False,
            "the live recording keeps recording", meta(left[0]) if left else None, "live")
    t.stop(pub)
    kb.stop()


def hostile_name():
    d = t.tempdir("kebun-hostile-")
    conf = os.path.join(d, "k.conf")
    with open(conf, "w") as f:
        f.write("[server]\nrecordings = %s/rec\n[stream ../../etc]\nkey = abcdefgh123\n"
                "record = on\n" % d)
    r = t.run([t.KEBUN, "--check-config", conf])
    t.check(r.returncode == 1 and "a stream name is" in r.stderr,
            "a stream name with .. and / is refused", r.stderr, "refused")
    p = subprocess.run([t.KEBUN, "-c", conf, "--listen", "127.0.0.1:%d" % t.free_port()],
                       capture_output=True, text=True, timeout=10)
    t.check(p.returncode == 1 and not os.path.exists(os.path.join(d, "rec")),
            "kebun refuses to start and creates no file", (p.returncode, os.listdir(d)),
            (1, ["k.conf"]))


def recording_kebun():
    extra = "grace = %ds\nsegment_duration = %ds" % (GRACE_S, SEGMENT_S)
    return t.Kebun(streams={"demo": t.KEY, "second": SECOND_KEY}, server_extra=extra,
                   stream_extra={"demo": "record = on", "second": "record = on"})


def broadcast():
    kb = recording_kebun()
    whole_broadcast(kb, lambda: grace(kb, "second", SECOND_KEY))
    kb.stop()


def crash_and_restart():
    kb2 = crash(recording_kebun())
    kb2.stop()


if __name__ == "__main__":
    sys.exit(t.main({"broadcast": broadcast, "crash": crash_and_restart, "disk_full": disk_full,
                     "reload": reload_record, "hostile": hostile_name}))
