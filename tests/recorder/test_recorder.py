#!/usr/bin/env python3
"""Recorder tests against real peers: rec_tool feeds ffmpeg-made FLV files
through the recorder's public API, then ffprobe and ffmpeg judge what it
wrote. One case per run (meson registers each as its own test):

  fmp4          30 s of H.264 + AAC: segments, playlist, A/V start, frame
                counts, meta.json, thumbnails, export (moov before mdat)
  mpegts_wrap   the same as MPEG-TS, timestamps wrapping past 2^32 ms
  codec_change  a second file at another size after a publisher gap: one
                recording, two parts, a discontinuity, clean decode; the
                same file again after a gap: one part, no discontinuity
  tracks        audio only, video only, video 3 s after audio, MP3 audio
                (not recorded, said so)
  ertmp         HEVC and AV1 in Enhanced RTMP messages (hvc1, av01)
  unit          hostile names create nothing; a full queue skips to a
                keyframe and counts
  garbage       random tag bodies behind plausible headers: no crash, no
                leak (under ASan), no flood of log lines
  retention     oldest finished recordings go by age and by size, never the
                live one
  crash         SIGKILL mid-recording, then the recovery pass: ENDLIST,
                "interrupted", no temp files, every listed segment decodes
  disk_full     a 2 MB tmpfs fills up: a clear failure, no crash, and a new
                part once space is freed (RLIMIT_FSIZE when not root)
  export_tracks audio-only part 1, video from part 2: the export has both
  slow_export   a crawling export (job thread) does not hold up another
                stream's segments, and shutdown does not wait for it; the
                next start does the exports left
  export_recovery  kill -9 in the middle of an export: the next start
                deletes kebun's stale temp files (only those, and none a
                live writer holds) and exports what was due
  denied        the recording directory turns read-only mid-recording:
                recording resumes as a new part in the same directory
  target_duration  EXT-X-TARGETDURATION is fixed when the recording starts;
                long keyframe intervals cut segments early, or are logged
  cli_export    two `kebun --export` of one recording at once: no shared
                temp file, one valid recording.mp4
  nolock        the loop thread's per-message call takes no lock (counted
                through --wrap), also while the gate skips
  nomem         malloc fails on the loop thread: a counted skip to the next
                keyframe, and gap and end still arrive
  shutdown      kb_recorder_free closes an open recording (ENDLIST, end,
                complete) and waits for its export up to shutdown_timeout;
                past the timeout the export is left pending and the next
                start makes it
  fsync         fsync = segment: every segment, init segment, playlist and
                meta.json is fsync'd before its rename and its directory
                after, and a segment before the playlist that lists it;
                off: no fsync at all
"""
import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOOL = os.environ["REC_TOOL"]
MEDIA = os.environ["REC_MEDIA"]
WORK = os.environ["REC_WORK"]
SRC = os.path.join(MEDIA, "rec_src.flv")
SRC2 = os.path.join(MEDIA, "rec_src2.flv")


def media(name):
    return os.path.join(MEDIA, name)

FRAME = 1 / 30  # the source's frame duration
SEGMENT = 4.0


class Fail(Exception):
    pass


def check(cond, what, *details):
    if not cond:
        raise Fail(what + "".join("\n  " + str(d) for d in details))


def check_eq(a, b, what, *details):
    check(a == b, what, "got:      %r" % (a,), "expected: %r" % (b,), *details)


def run(args, timeout=120, ok=True):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if ok and p.returncode != 0:
        raise Fail("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), p.returncode, p.stdout[-2000:], p.stderr[-4000:]))
    return p


def tool(*args, **kw):
    return run([TOOL] + [str(a) for a in args], **kw)


def kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def ffprobe(path, *args):
    p = run(["ffprobe", "-v", "error", "-of", "json"] + list(args) + [path])
    return json.loads(p.stdout)


def streams(path, count=False):
    """{'video': {...}, 'audio': {...}} with start_time, width, packets."""
    args = ["-show_entries", "stream=codec_type,start_time,width,height,nb_read_packets:"
            "format=duration"]
    if count:
        args.insert(0, "-count_packets")
    j = ffprobe(path, *args)
    out = {s["codec_type"]: s for s in j["streams"]}
    out["duration"] = float(j["format"].get("duration", 0))
    return out


def decode_errors(path, *extra):
    """What `ffmpeg -v error -i PATH -f null -` prints: must be nothing."""
    p = run(["ffmpeg", "-nostdin", "-v", "error"] + list(extra) + ["-i", path, "-f", "null", "-"],
            ok=False)
    return (p.stderr.strip() + ("" if p.returncode == 0 else " (exit %d)" % p.returncode))


def top_boxes(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off + 8 <= len(data):
        size = int.from_bytes(data[off:off + 4], "big")
        kind = data[off + 4:off + 8].decode("latin1")
        if size == 1:
            size = int.from_bytes(data[off + 8:off + 16], "big")
        out.append(kind)
        if size < 8:
            break
        off += size
    return out


def playlist(d):
    with open(os.path.join(d, "index.m3u8")) as f:
        text = f.read()
    segs = re.findall(r"#EXTINF:([0-9.]+),\n(\S+)", text)
    return text, [(float(t), n) for t, n in segs]


def recordings(root, stream):
    sdir = os.path.join(root, stream)
    if not os.path.isdir(sdir):
        return []
    return sorted(os.path.join(sdir, d) for d in os.listdir(sdir))


def meta(d):
    with open(os.path.join(d, "meta.json")) as f:
        return json.load(f)


def fresh(name):
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


_src_cache = {}


def source(path):
    if path not in _src_cache:
        _src_cache[path] = streams(path, count=True)
    return _src_cache[path]


def check_recording(d, fmp4=True, ended=True):
    """What every recording must satisfy, whatever happened to it."""
    text, segs = playlist(d)
    check(text.startswith("#EXTM3U\n"), "playlist header", text[:200])
    check_eq(re.search(r"#EXT-X-VERSION:(\d+)", text).group(1), "7" if fmp4 else "3",
             "EXT-X-VERSION")
    target = int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text).group(1))
    for dur, name in segs:
        check(round(dur) <= target, "EXTINF %s %.3f over the target %d" % (name, dur, target))
    check_eq(text.endswith("#EXT-X-ENDLIST\n"), ended, "EXT-X-ENDLIST at the end")
    if fmp4:
        check(text.count("#EXT-X-MAP") == text.count("#EXT-X-DISCONTINUITY") + 1,
              "one EXT-X-MAP per part", text)
    leftovers = [f for f in os.listdir(d) if f.endswith(".tmp")]
    check(not leftovers, "temp files left", leftovers)
    # Every segment probes on its own (fMP4: with its part's init segment).
    init = None
    tmp = tempfile.NamedTemporaryFile(suffix=".mp4", delete=False)
    tmp.close()
    try:
        for line in text.splitlines():
            m = re.match(r'#EXT-X-MAP:URI="([^"]+)"', line)
            if m:
                init = m.group(1)
            if line and not line.startswith("#"):
                path = os.path.join(d, line)
                if fmp4:
                    with open(tmp.name, "wb") as out:
                        for part in (init, line):
                            with open(os.path.join(d, part), "rb") as f:
                                out.write(f.read())
                    path = tmp.name
                s = streams(path)
                check("video" in s or "audio" in s, "segment %s probes" % line, s)
    finally:
        os.unlink(tmp.name)
    errs = decode_errors(os.path.join(d, "index.m3u8"))
    check(errs == "", "ffmpeg -v error -i index.m3u8 -f null - prints nothing", errs[:3000])
    m = meta(d)
    check_eq(m["segments"], len(segs), "meta.json segments")
    names = [n for _, n in segs]
    check_eq(m["bytes"], sum(os.path.getsize(os.path.join(d, n)) for n in names),
             "meta.json bytes = the segments' sizes")
    check(abs(m["duration"] - sum(t for t, _ in segs)) < 0.01, "meta.json duration",
          m["duration"], sum(t for t, _ in segs))
    return text, segs, m


def av_offset(s):
    return float(s["video"]["start_time"]) - float(s["audio"]["start_time"])


def check_like_source(d, src, extra_video=0, extra_audio=0):
    rec = streams(os.path.join(d, "index.m3u8"), count=True)
    check(abs(rec["duration"] - src["duration"]) <= SEGMENT,
          "recorded duration within one segment of the source's", rec["duration"],
          src["duration"])
    check(abs(av_offset(rec) - av_offset(src)) <= FRAME,
          "audio and video start within a frame of each other, as in the source",
          "recorded v-a: %.4f" % av_offset(rec), "source   v-a: %.4f" % av_offset(src))
    check_eq(int(rec["video"]["nb_read_packets"]),
             int(src["video"]["nb_read_packets"]) + extra_video, "video frames")
    check_eq(int(rec["audio"]["nb_read_packets"]),
             int(src["audio"]["nb_read_packets"]) + extra_audio, "audio frames")
    return rec


def temps(d):
    """Every temp file in a recording, hidden ones included."""
    return sorted(f for f in os.listdir(d) if f.endswith(".tmp"))


def check_export(d, rec):
    mp4 = os.path.join(d, "recording.mp4")
    check(os.path.exists(mp4), "recording.mp4 exported")
    boxes = top_boxes(mp4)
    check("moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat"),
          "moov before mdat (faststart)", boxes)
    e = streams(mp4, count=True)
    check(abs(e["duration"] - rec["duration"]) < 0.1, "export duration", e["duration"],
          rec["duration"])
    for kind in ("video", "audio"):
        check_eq(e[kind]["nb_read_packets"], rec[kind]["nb_read_packets"],
                 "export %s frames" % kind)
    errs = decode_errors(mp4)
    check(errs == "", "the export decodes cleanly", errs[:2000])


def exported_at_next_start(root, *names):
    """The start-up pass exports the recordings whose export was left due."""
    p = tool("recover", root, "export")
    for stream in names:
        d = recordings(root, stream)[0]
        m = meta(d)
        check_eq((m["export"], m["export_pending"]), ("recording.mp4", False),
                 stream + ": exported at the next start", p.stderr[-2000:])
        check_export(d, streams(os.path.join(d, "index.m3u8"), count=True))
        check_eq(temps(d), [], stream + ": no temp files")


# ---- cases ------------------------------------------------------------------

def case_fmp4():
    root = fresh("fmp4")
    p = tool("record", root, "demo", "--thumb", 10000, SRC)
    st = kv(p.stdout)
    check_eq(st["live.state"], "2", "status while live: recording")
    check(st["live.dir"].startswith("demo/"), "status dir", st["live.dir"])
    check_eq(st["end.state"], "0", "status after the end: idle")
    recs = recordings(root, "demo")
    check_eq(len(recs), 1, "one recording")
    d = recs[0]
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", os.path.basename(d)),
          "directory named by its UTC start", d)
    text, segs, m = check_recording(d)
    check(all(abs(t - SEGMENT) < 0.05 for t, _ in segs[:-1]),
          "segments cut at the first keyframe after 4 s", segs)
    check(re.fullmatch(r"0000\d\d\.m4s", segs[0][1]), "segment names", segs[0][1])
    check(os.path.exists(os.path.join(d, "init.mp4")), "init.mp4")
    rec = check_like_source(d, source(SRC))
    check_eq(int(st["live.segments"]), len(segs) - 1,
             "status counts complete segments (the last one completes at the end)")
    check_eq(int(st["live.bytes"]), m["bytes"] - os.path.getsize(os.path.join(d, segs[-1][1])),
             "status bytes")
    for k, v in {"stream": "demo", "status": "complete", "format": "fmp4", "width": 640,
                 "height": 360, "sample_rate": 44100, "channels": 1, "parts": 1,
                 "dropped": 0, "last_error": None, "thumb": "thumb.jpg",
                 "export": "recording.mp4", "playlist": "index.m3u8"}.items():
        check_eq(m[k], v, "meta.json " + k)
    check_eq(m["codecs"], {"video": "H.264", "audio": "AAC"}, "meta.json codecs")
    for k in ("start", "end"):
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m[k] or ""), "meta.json " + k,
              m[k])
    thumb = streams(os.path.join(d, "thumb.jpg"))
    check_eq((thumb["video"]["width"], thumb["video"]["height"]), (320, 180), "thumb.jpg size")
    check_eq(sorted(os.listdir(os.path.join(d, "thumbs"))), ["000010.jpg", "000020.jpg"],
             "a thumbnail every 10 s")
    check_export(d, rec)
    # On demand: the same again through kb_recorder_export.
    os.unlink(os.path.join(d, "recording.mp4"))
    p = tool("export", root, "demo/" + os.path.basename(d))
    check_eq(kv(p.stdout).get("export"), "0", "on-demand export result")
    check_export(d, rec)
    p = tool("export", root, "demo/../demo", ok=False)
    check(p.returncode != 0, "export of a path with .. refused")


def case_mpegts_wrap():
    root = fresh("mpegts")
    # Timestamps start 7 s before 2^32 ms and wrap inside the recording.
    tool("record", root, "ts", "--format", "mpegts", "--ts-offset", 2**32 - 7000, SRC)
    recs = recordings(root, "ts")
    check_eq(len(recs), 1, "one recording")
    d = recs[0]
    text, segs, m = check_recording(d, fmp4=False)
    check(all(n.endswith(".ts") for _, n in segs), "MPEG-TS segments", segs)
    check("#EXT-X-MAP" not in text and "#EXT-X-DISCONTINUITY" not in text,
          "no map, no discontinuity: the wrap is invisible", text)
    rec = check_like_source(d, source(SRC))
    check_export(d, rec)


def case_codec_change():
    root = fresh("codec_change")
    p = tool("record", root, "cc", SRC, SRC2)
    recs = recordings(root, "cc")
    check_eq(len(recs), 1, "one recording for one broadcast")
    d = recs[0]
    text, segs, m = check_recording(d)
    check_eq(text.count("#EXT-X-DISCONTINUITY"), 1, "one discontinuity")
    check('#EXT-X-MAP:URI="init-2.mp4"' in text, "the second part has its own init", text)
    check_eq(m["parts"], 2, "meta.json parts")
    check_eq((m["width"], m["height"]), (320, 240), "meta.json: the current part's size")
    check("recording part 2 (codec parameters changed)" in p.stderr, "log line", p.stderr)
    s1, s2 = source(SRC), source(SRC2)
    rec = streams(os.path.join(d, "index.m3u8"), count=True)
    for kind in ("video", "audio"):
        check_eq(int(rec[kind]["nb_read_packets"]),
                 int(s1[kind]["nb_read_packets"]) + int(s2[kind]["nb_read_packets"]),
                 kind + " frames of both publishers")
    check(abs(rec["duration"] - (s1["duration"] + s2["duration"])) <= SEGMENT, "duration",
          rec["duration"])
    check_export(d, rec)
    # The same publisher back within the grace period: one part, seamless.
    tool("record", root, "same", "--export", 0, SRC, SRC)
    d = recordings(root, "same")[0]
    text, segs, m = check_recording(d)
    check("#EXT-X-DISCONTINUITY" not in text, "no discontinuity for the same parameters")
    check_eq(m["parts"], 1, "one part")
    rec = streams(os.path.join(d, "index.m3u8"), count=True)
    for kind in ("video", "audio"):
        check_eq(int(rec[kind]["nb_read_packets"]), 2 * int(s1[kind]["nb_read_packets"]),
                 kind + " frames of both sessions")


def one_recording(root, stream, *args):
    p = tool("record", root, stream, "--export", 0, *args)
    recs = recordings(root, stream)
    check_eq(len(recs), 1, "one recording of " + stream)
    return p, recs[0]


def case_tracks():
    root = fresh("tracks")
    for name, kinds in (("audio", ["audio"]), ("video", ["video"]), ("late", ["video", "audio"])):
        src = source(media("rec_%s.flv" % name))
        p, d = one_recording(root, name, media("rec_%s.flv" % name))
        text, segs, m = check_recording(d)
        check_eq(m["parts"], 1, name + ": one part")
        rec = streams(os.path.join(d, "index.m3u8"), count=True)
        check_eq(sorted(k for k in ("video", "audio") if k in rec), sorted(kinds),
                 name + ": tracks")
        for kind in kinds:
            check_eq(rec[kind]["nb_read_packets"], src[kind]["nb_read_packets"],
                     name + ": every " + kind + " frame")
            check(abs(float(rec[kind]["start_time"]) - float(src[kind]["start_time"])) < 0.03,
                  name + ": " + kind + " starts where it did", rec[kind], src[kind])
    p, d = one_recording(root, "mp3", media("rec_mp3.flv"))
    check("stream=mp3 audio MP3 is not recorded" in p.stderr, "unsupported codec said", p.stderr)
    text, segs, m = check_recording(d)
    check_eq(m["codecs"], {"video": "H.264", "audio": None}, "meta.json codecs")


def case_ertmp():
    root = fresh("ertmp")
    for name, codec, tag, fmt in (("hevc", "HEVC", "hvc1", "fmp4"), ("av1", "AV1", "av01", "fmp4"),
                                  ("hevc", "HEVC", None, "mpegts")):
        src = source(media("rec_%s.mp4" % name))
        p, d = one_recording(root, name + fmt, "--format", fmt, media("rec_%s.mp4" % name))
        text, segs, m = check_recording(d, fmp4=fmt == "fmp4")
        check_eq(m["codecs"]["video"], codec, "meta.json video codec")
        check_eq((m["width"], m["height"]), (320, 240), "meta.json size")
        j = ffprobe(os.path.join(d, "index.m3u8"), "-count_packets", "-show_entries",
                    "stream=codec_type,codec_tag_string,nb_read_packets")
        got = {s["codec_type"]: s for s in j["streams"]}
        if tag:
            check_eq(got["video"]["codec_tag_string"], tag, "sample entry")
        for kind in ("video", "audio"):
            check_eq(got[kind]["nb_read_packets"], src[kind]["nb_read_packets"],
                     "%s %s frames" % (name, kind))


def case_unit():
    root = fresh("unit")
    p = tool("unit", root, SRC)
    check_eq(os.listdir(os.path.join(root, "names")), [], "hostile names created nothing")
    for bad in ('"x?"', '".."', '"a/b"'):
        check("stream name %s refused" % bad in p.stderr, "refusal logged for " + bad, p.stderr)
    check("recorder queue full" in p.stderr and "resumed at a keyframe" in p.stderr,
          "queue skip logged", p.stderr)
    recs = recordings(os.path.join(root, "queue"), "queue")
    check_eq(len(recs), 1, "the queue test's recording")
    text, segs, m = check_recording(recs[0])
    dropped = int(kv(p.stdout)["queue_dropped"])
    check(dropped > 0, "messages were dropped", dropped)
    check_eq(m["dropped"], dropped, "meta.json dropped")


def case_garbage():
    root = fresh("garbage")
    for seed in (1, 2, 3, 4):
        p = tool("garbage", root, seed, timeout=60)
        check("AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr,
              "no sanitizer report", p.stderr[-3000:])
        said = [l for l in p.stderr.splitlines() if not l.startswith(("debug ", "["))]
        check(len(said) < 20, "hostile input does not flood the log", "\n".join(said))
    for d in recordings(root, "garbage"):
        check(not [f for f in os.listdir(d) if f.endswith(".tmp")], "no temp files left", d)


def make_recording(root, stream, seconds):
    tool("record", root, stream, "--export", 0, "--limit-ms", seconds * 1000, SRC)


def case_retention():
    root = fresh("retention")
    for _ in range(3):
        make_recording(root, "ret", 4)
    a, b, c = recordings(root, "ret")
    # A ended ten days ago.
    m = meta(a)
    m["end"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 10 * 86400))
    with open(os.path.join(a, "meta.json"), "w") as f:
        json.dump(m, f)
    p = tool("retention", root, "ret", 5 * 86400 * 1000, 0)
    check_eq(recordings(root, "ret"), [b, c], "older than 5 days: deleted")
    check("retention deleted recording %s" % os.path.basename(a) in p.stderr, "logged",
          p.stderr)
    size_c = sum(os.path.getsize(os.path.join(c, f)) for f in os.listdir(c))
    tool("retention", root, "ret", 0, size_c + 4096)
    check_eq(recordings(root, "ret"), [c], "over the size: the oldest went")
    # A live recording is never deleted, even when it alone is over the limit.
    p = tool("retention", root, "ret", 0, 1, SRC)
    left = recordings(root, "ret")
    check_eq(len(left), 1, "only the live one left", left, p.stderr)
    check(left[0] != c, "the finished one went, the live one stayed", left)
    check_eq(meta(left[0])["status"], "complete", "the live one completed at shutdown")


def case_crash():
    root = fresh("crash")
    proc = subprocess.Popen([TOOL, "record", root, "crash", "--pace", "8", SRC],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            recs = recordings(root, "crash")
            if recs and os.path.exists(os.path.join(recs[0], "index.m3u8")):
                if len(playlist(recs[0])[1]) >= 3:
                    break
            time.sleep(0.05)
        check(proc.poll() is None, "still recording when killed")
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    d = recordings(root, "crash")[0]
    check_eq(meta(d)["status"], "live", "left open by the crash")
    p = tool("recover", root)
    check("closed as interrupted" in p.stderr, "recovery logged", p.stderr)
    text, segs, m = check_recording(d)
    check_eq(m["status"], "interrupted", "meta.json status")
    check(m["end"] is not None, "meta.json end set")
    check(len(segs) >= 3, "the listed segments kept", segs)
    rec = streams(os.path.join(d, "index.m3u8"), count=True)
    listed = sum(t for t, _ in segs)
    # Every frame before the end of the last listed segment is there.
    expect = round(listed / FRAME)
    check(abs(int(rec["video"]["nb_read_packets"]) - expect) <= 2,
          "video frames of the listed segments", rec["video"]["nb_read_packets"], expect)
    # A second pass finds nothing to do.
    p = tool("recover", root)
    check("interrupted" not in p.stderr, "recovery is done once", p.stderr)


def case_disk_full():
    root = fresh("disk_full")
    mnt = os.path.join(root, "mnt")
    os.makedirs(mnt)
    # REC_NO_MOUNT=1 tries the unprivileged variant as root too.
    mounted = os.geteuid() == 0 and not os.environ.get("REC_NO_MOUNT") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
        capture_output=True).returncode == 0
    if not mounted:
        return disk_full_rlimit(root)
    try:
        # Leave about 250 kB: the recording fills it some 10 s in.
        st = os.statvfs(mnt)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 250 * 1024))
        rec_root = os.path.join(mnt, "rec")
        proc = subprocess.Popen([TOOL, "record", rec_root, "full", "--pace", "6", "--export",
                                 "0", SRC], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        log = []
        for line in proc.stderr:
            log.append(line)
            if "recording failed" in line and os.path.exists(filler):
                os.unlink(filler)  # space comes back
        out = proc.stdout.read()
        rc = proc.wait()
        log = "".join(log)
        check_eq(rc, 0, "no crash; exit status")
        check(re.search(r"stream=full recording failed: write \S+: No space left on device",
                        log), "a clear failure line", log)
        check(re.search(r"stream=full recording resumed as part 2", log), "resumed", log)
        st = kv(out)
        check_eq(st["live.state"], "2", "recording again before the end")
        check("No space left on device" in st["live.last_error"], "status last_error",
              st["live.last_error"])
        recs = recordings(rec_root, "full")
        check_eq(len(recs), 1, "the same recording directory")
        text, segs, m = check_recording(recs[0])
        check(m["parts"] >= 2, "a new part after the failure", m["parts"])
        check(text.count("#EXT-X-DISCONTINUITY") >= 1, "a discontinuity", text)
        check_eq(m["status"], "complete", "meta.json status")
        check("No space left on device" in (m["last_error"] or ""), "meta.json last_error",
              m["last_error"])
    finally:
        subprocess.run(["umount", "-l", mnt])


def disk_full_rlimit(root):
    """Without root: every file over 60 kB fails with EFBIG (a segment is
    bigger): the recording fails clearly, and the process lives on."""
    rec_root = os.path.join(root, "rec")
    p = tool("record", rec_root, "full", "--export", 0, "--fsize", 60000, SRC)
    check(re.search(r"stream=full recording failed: write \d{6}\.m4s: File too large", p.stderr),
          "a clear failure line", p.stderr)
    st = kv(p.stdout)
    check_eq(st["live.state"], "3", "status: failed")
    check("File too large" in st["live.last_error"], "status last_error")
    d = recordings(rec_root, "full")[0]
    check_eq(meta(d)["status"], "failed", "meta.json status")


def packets(path, kind):
    s = streams(path, count=True)
    return int(s[kind]["nb_read_packets"]) if kind in s else 0


def case_export_tracks():
    """A recording that starts audio-only and gets video in part 2 exports
    both tracks (the export's tracks are the union over all parts)."""
    root = fresh("export_tracks")
    audio, video = media("rec_audio.flv"), SRC2
    p = tool("record", root, "ao", audio, video)
    recs = recordings(root, "ao")
    check_eq(len(recs), 1, "one recording")
    d = recs[0]
    # Not check_recording: ffmpeg's HLS demuxer does not pick up a track
    # that appears after a discontinuity. Each part decodes on its own.
    text, segs = playlist(d)
    m = meta(d)
    for n, files in ((1, ["init.mp4", segs[0][1], segs[1][1]]),
                     (2, ["init-2.mp4"] + [n for _, n in segs[2:]])):
        part = os.path.join(root, "part%d.mp4" % n)
        with open(part, "wb") as out:
            for f in files:
                with open(os.path.join(d, f), "rb") as i:
                    out.write(i.read())
        check_eq(sorted(k for k in ("video", "audio") if k in streams(part)),
                 ["audio"] if n == 1 else ["audio", "video"], "part %d's tracks" % n)
        check_eq(decode_errors(part), "", "part %d decodes" % n)
    check_eq(m["parts"], 2, "two parts: audio only, then audio and video")
    check_eq(m["export"], "recording.mp4", "meta.json export")
    mp4 = os.path.join(d, "recording.mp4")
    e = streams(mp4, count=True)
    check("video" in e, "the export has the video that started in part 2", e, p.stderr[-2000:])
    check_eq(int(e["video"]["nb_read_packets"]), int(source(video)["video"]["nb_read_packets"]),
             "export video frames")
    check_eq(int(e["audio"]["nb_read_packets"]),
             int(source(audio)["audio"]["nb_read_packets"]) +
             int(source(video)["audio"]["nb_read_packets"]), "export audio frames")
    part1 = sum(t for t, _ in segs[:2])
    check(abs(float(e["video"]["start_time"]) - part1) < 0.2,
          "the video track starts where part 2 did", e["video"]["start_time"], part1)
    check_eq(decode_errors(mp4), "", "the export decodes cleanly")


def case_slow_export():
    """Stream "long" ends and its export crawls; stream "other" records 30 s
    meanwhile. rec_tool checks that other's segments are all written within
    5 s and that kb_recorder_free returns within 2 s, without waiting for
    the export."""
    root = fresh("slow_export")
    p = tool("slowexport", root, SRC, ok=False)
    check_eq(p.returncode, 0, "rec_tool slowexport", p.stdout, p.stderr[-3000:])
    st = kv(p.stdout)
    for stream in ("long", "other"):
        recs = recordings(root, stream)
        check_eq(len(recs), 1, "one recording of " + stream)
        d = recs[0]
        m = meta(d)
        check_eq(m["status"], "complete", stream + ": complete")
        check_eq((m["export"], m["export_pending"]), (None, True),
                 stream + ": export left for the next start")
        check_eq(temps(d), [], stream + ": no temp file left by the cancelled export")
    check(re.search(r"stream=long export of \S+ stopped \(shutdown\)", p.stderr),
          "the cancelled export is logged", p.stderr[-2000:])
    # The next start exports both, from the backlog.
    exported_at_next_start(root, "long", "other")
    check_eq(int(st["other.segments"]), 7, "other's segments while the export ran")


def case_export_recovery():
    root = fresh("export_recovery")
    # A: killed in the middle of its export (20 ms per packet: ~45 s).
    proc = subprocess.Popen([TOOL, "record", root, "a", "--slow-export", "20", SRC],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        tmp = []
        while time.time() < deadline and not tmp:
            recs = recordings(root, "a")
            tmp = [f for f in temps(recs[0]) if "recording.mp4" in f] if recs else []
            time.sleep(0.05)
        check(tmp, "the export's temp file appeared")
        check(proc.poll() is None, "still exporting when killed")
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    a = recordings(root, "a")[0]
    m = meta(a)
    check_eq((m["status"], m["export"]), ("complete", None), "A: complete, not exported")
    check(temps(a), "A: the export's temp file is left by the kill")
    pending_after_kill = m.get("export_pending")
    # B: finished without an export, then a crash of an older kebun in the
    # middle of one (its fixed temp name): export due too.
    tool("record", root, "b", "--export", 0, "--limit-ms", 5000, SRC)
    b = recordings(root, "b")[0]
    # C: no export wanted. A stale meta.json temp goes; one another process
    # still writes (locked), and files that are not kebun's, stay.
    tool("record", root, "c", "--export", 0, "--limit-ms", 5000, SRC)
    c = recordings(root, "c")[0]
    with open(os.path.join(b, "recording.mp4.tmp"), "wb") as f:
        f.write(b"\0" * 1000)
    stale = os.path.join(c, ".meta.json.abc123.tmp")
    held = os.path.join(c, ".recording.mp4.zz9zz9.tmp")
    foreign = [os.path.join(c, "notes.tmp"), os.path.join(c, ".notes.abc123.tmp")]
    for path in [stale, held] + foreign:
        with open(path, "w") as f:
            f.write("x")
    lock = open(held, "r+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = tool("recover", root, "export")
        check(os.path.exists(held), "a temp file a live writer holds is left alone")
    finally:
        lock.close()
    os.unlink(held)  # its writer finishes (renames it)
    check(not os.path.exists(stale), "C: the stale meta.json temp is deleted")
    for path in foreign:
        check(os.path.exists(path), "a file that is not kebun's is left alone: " + path)
    for d, name in ((a, "A"), (b, "B")):
        m = meta(d)
        check_eq(temps(d), [], name + ": stale temp files deleted")
        check_eq((m["export"], m.get("export_pending")), ("recording.mp4", False),
                 name + ": exported at the next start", p.stderr[-3000:])
        check_export(d, streams(os.path.join(d, "index.m3u8"), count=True))
    check(not os.path.exists(os.path.join(c, "recording.mp4")), "C: no export (none was due)")
    check_eq(pending_after_kill, True, "A's meta.json said the export was due before it began")
    # Done once: a second start has nothing to export.
    p = tool("recover", root, "export")
    check("exporting" not in p.stderr, "nothing left to export", p.stderr)


def case_denied():
    """The recording directory becomes read-only (EACCES) in the middle of a
    recording, then writable again: the recording resumes as part 2 in the
    same directory. Root ignores permission bits, so as root rec_tool drops
    to uid 65534 first."""
    root = fresh("denied")
    rec_root = os.path.join(root, "rec")
    os.makedirs(rec_root)
    args = [TOOL, "record", rec_root, "den", "--pace", "4", "--export", "0"]
    if os.geteuid() == 0:
        os.chmod(root, 0o777)
        os.chmod(rec_root, 0o777)
        args += ["--uid", "65534"]
    logf = open(os.path.join(root, "log"), "w+")
    proc = subprocess.Popen(args + [SRC], stdout=subprocess.PIPE, stderr=logf, text=True)
    d = None
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            recs = recordings(rec_root, "den")
            if recs and os.path.exists(os.path.join(recs[0], "index.m3u8")) and \
                    len(playlist(recs[0])[1]) >= 2:
                d = recs[0]
                break
            time.sleep(0.02)
        check(d, "two segments written")
        os.chmod(d, 0o555)
        while time.time() < deadline:
            logf.seek(0)
            if "recording failed" in logf.read():
                break
            time.sleep(0.02)
        time.sleep(1.5)  # a retry or two fail too
        os.chmod(d, 0o755)
        out, _ = proc.communicate(timeout=60)
    finally:
        if d:
            os.chmod(d, 0o755)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logf.seek(0)
    log = logf.read()
    check_eq(proc.returncode, 0, "exit status", log[-3000:])
    check(re.search(r"stream=den recording failed: \S+ \S+: Permission denied", log),
          "a clear failure line", log[-3000:])
    check(re.search(r"stream=den recording resumed as part 2", log), "resumed as part 2",
          log[-3000:])
    check_eq(recordings(rec_root, "den"), [d], "the same recording directory", log[-3000:])
    text, segs, m = check_recording(d)
    check_eq((m["status"], m["parts"]), ("complete", 2), "meta.json status and parts")
    check_eq(text.count("#EXT-X-DISCONTINUITY"), 1, "one discontinuity")
    check("Permission denied" in (m["last_error"] or ""), "meta.json last_error",
          m["last_error"])


def target(text):
    return int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text).group(1))


def case_target_duration():
    root = fresh("target_duration")
    # A 2 s first segment (the publisher leaves), then 4 s ones: the value
    # decided at the start stays through every rewrite.
    p = tool("record", root, "snap", "--export", 0, "--snap", 1, "--first-ms", 2000, SRC, SRC)
    snaps = [int(v) for k, v in (l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)
             if k == "snap"]
    d = recordings(root, "snap")[0]
    text, segs, m = check_recording(d)
    want = math.ceil(SEGMENT) + 2
    check_eq(snaps + [target(text)], [want] * 3,
             "EXT-X-TARGETDURATION after the gap, before the end and at the end")
    check(segs[0][0] < 2.5 and segs[1][0] > 3.5, "a short segment, then long ones", segs)
    # Keyframes every 3.6 s: waiting for the one after 4 s would make a
    # 7.2 s segment, so each segment ends at the keyframe before.
    gop = media("rec_gop.flv")
    p, d = one_recording(root, "gop", gop)
    text, segs, m = check_recording(d)
    check_eq(target(text), want, "EXT-X-TARGETDURATION")
    check(all(abs(t - 3.6) < 0.05 for t, _ in segs[:-1]), "cut at the keyframe before", segs)
    check("target duration" not in p.stderr, "no warning", p.stderr)
    check_eq(packets(os.path.join(d, "index.m3u8"), "video"), packets(gop, "video"),
             "every video frame")
    # A 1 s target (EXT-X-TARGETDURATION 3) with 3.6 s between keyframes
    # cannot be met: the value stays, and the log says why.
    p, d = one_recording(root, "long", "--segment", 1000, gop)
    text, segs = playlist(d)
    check_eq(target(text), 3, "EXT-X-TARGETDURATION for a 1 s target")
    check(re.search(r"segment 000001.m4s lasts 3.6 s, over the playlist's target duration "
                    r"\(3 s\)", p.stderr), "the long segment is logged", p.stderr)
    check_eq(p.stderr.count("target duration"), 1, "logged once per recording", p.stderr)
    check_eq(decode_errors(os.path.join(d, "index.m3u8")), "", "still decodes")


def case_cli_export():
    """kebun --export twice at once on one recording (as beside a running
    server): each writes a temp file of its own; both succeed and the
    result is one valid recording.mp4."""
    root = fresh("cli_export")
    tool("record", root, "cli", "--export", 0, SRC)
    d = recordings(root, "cli")[0]
    procs = [subprocess.Popen([TOOL, "cliexport", d, "2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    # Both are in the middle of their export at the same time.
    deadline = time.time() + 20
    seen = []
    while time.time() < deadline and len(seen) < 2 and all(p.poll() is None for p in procs):
        seen = temps(d)
        time.sleep(0.01)
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    for out, err, rc in results:
        check_eq(rc, 0, "both exports succeed", out, err[-2000:])
    check_export(d, streams(os.path.join(d, "index.m3u8"), count=True))
    check_eq(len([f for f in seen if f.startswith(".recording.mp4.")]), 2,
             "two temp files of their own", seen)
    check_eq(temps(d), [], "no temp files left")
    m = meta(d)
    check_eq((m["export"], m["export_pending"]), ("recording.mp4", False), "meta.json export")


def case_retention_off():
    """A retention pass waiting behind a slow export takes the limits of a
    reload that switched retention off: it deletes nothing."""
    root = fresh("retention_off")
    p = tool("retoff", root, SRC, ok=False)
    check_eq(p.returncode, 0, "rec_tool retoff", p.stdout, p.stderr[-3000:])
    st = kv(p.stdout)
    check_eq(st.get("b.kept"), "1", "b's recording is kept once retention is off", p.stdout)
    check(not re.search(r"retention deleted", p.stderr), "nothing is deleted", p.stderr[-2000:])


def case_temp_race():
    """A start-up's clean-up of stale temp files never takes the temp file
    of a writer at work (kebun --export beside a starting server)."""
    root = fresh("temp_race")
    p = tool("tmprace", os.path.join(root, "rec"), "4000", ok=False)
    check_eq(p.returncode, 0, "rec_tool tmprace", p.stdout, p.stderr[-2000:])
    check_eq(kv(p.stdout).get("failed"), "0", "no write lost its temp file", p.stdout)



def case_nolock():
    root = fresh("nolock")
    p = tool("nolock", root, SRC, ok=False)
    st = kv(p.stdout)
    check_eq(p.returncode, 0, "rec_tool nolock", p.stdout, p.stderr[-2000:])
    check_eq(st.get("locks"), "0", "no pthread_mutex_lock in kb_recorder_stream_msg", p.stdout)
    check(int(st.get("dropped", 0)) > 0, "the gate skipped while the worker was held", p.stdout)


def case_nomem():
    root = fresh("nomem")
    p = tool("nomem", root, SRC, ok=False)
    check_eq(p.returncode, 0, "rec_tool nomem", p.stdout, p.stderr[-2000:])
    check("recorder skipped a message (out of memory)" in p.stderr, "the failure is logged",
          p.stderr[-2000:])
    check(int(kv(p.stdout).get("dropped", 0)) > 0, "what was skipped is counted", p.stdout)
    d = recordings(root, "nomem")
    check_eq(len(d), 1, "one recording")
    text, segs, m = check_recording(d[0])
    check_eq(m["status"], "complete", "the end arrived while malloc failed")
    # Fed up to 12 s; a skip that never ended would have stopped at 5 s.
    check(m["duration"] > 10, "recording resumed at the keyframe after memory came back",
          m["duration"])
    check_eq(m["dropped"], int(kv(p.stdout)["dropped"]), "meta.json dropped")


def shutdown_log(p):
    return [l for l in p.stderr.splitlines() if "shutdown" in l or "left for the next" in l]


def case_shutdown():
    root = fresh("shutdown")
    # 1. The recording is still open when the recorder stops; its export
    # (slowed to some 2 s) is waited for.
    p = tool("record", root, "open", "--stop", "open", "--shutdown-timeout", 30000,
             "--slow-export", 1, SRC)
    d = recordings(root, "open")
    check_eq(len(d), 1, "one recording")
    text, segs, m = check_recording(d[0])
    check_eq((m["status"], m["export"], m["export_pending"]), ("complete", "recording.mp4", False),
             "closed as complete and exported before the recorder stopped", p.stderr[-2000:])
    check(m["end"] is not None, "meta.json end set")
    check_export(d[0], streams(os.path.join(d[0], "index.m3u8"), count=True))
    check(re.search(r"shutdown: waiting up to 30\.0 s for exports", p.stderr),
          "the wait is logged", shutdown_log(p))
    check(int(kv(p.stdout)["free.ms"]) >= 1000, "kb_recorder_free waited for the export",
          p.stdout)
    # 2. A short timeout: the export (20 ms a packet) is cut off and stays due.
    p = tool("record", root, "short", "--stop", "ended", "--shutdown-timeout", 300,
             "--slow-export", 20, SRC)
    d = recordings(root, "short")[0]
    text, segs, m = check_recording(d)
    check_eq((m["status"], m["export"], m["export_pending"]), ("complete", None, True),
             "complete, export left for the next start", p.stderr[-2000:])
    check_eq(temps(d), [], "no temp file left by the cancelled export")
    check(re.search(r"shutdown: exports still running after 0\.3 s", p.stderr),
          "the timeout is logged", shutdown_log(p))
    check(re.search(r"stream=short export of \S+ stopped \(shutdown\)", p.stderr),
          "the cancelled export is logged", shutdown_log(p))
    free_ms = int(kv(p.stdout)["free.ms"])
    check(300 <= free_ms < 3000, "kb_recorder_free waited the timeout, not the export", free_ms)
    # 3. No wait at all.
    p = tool("record", root, "nowait", "--stop", "ended", "--shutdown-timeout", 0,
             "--slow-export", 20, SRC)
    m = meta(recordings(root, "nowait")[0])
    check_eq((m["status"], m["export_pending"]), ("complete", True), "shutdown_timeout 0")
    check("waiting up to" not in p.stderr, "no wait logged", shutdown_log(p))
    # The next start makes both.
    exported_at_next_start(root, "short", "nowait")


def sync_events(stderr):
    out = []
    for line in stderr.splitlines():
        parts = line.split(" ")
        if parts[0] in ("sync", "rename") and len(parts) >= 2:
            out.append(tuple(parts))
    return out


def case_fsync():
    root = fresh("fsync")
    p = tool("record", root, "sync", "--fsync", 1, "--trace-sync", 1, "--export", 0,
             "--segment", 2000, SRC)
    d = recordings(root, "sync")[0]
    text, segs, m = check_recording(d)
    ev = sync_events(p.stderr)
    names = [n for _, n in segs] + ["init.mp4"]
    for name in names:
        final = os.path.join(d, name)
        i = next((k for k, e in enumerate(ev) if e[0] == "rename" and e[2] == final), None)
        check(i is not None, name + " renamed into place", ev[:10])
        check(i > 0 and ev[i - 1] == ("sync", final + ".tmp"),
              name + ": its data is fsync'd before the rename", ev[max(0, i - 3):i + 3])
        check(i + 1 < len(ev) and ev[i + 1] == ("sync", d),
              name + ": its directory is fsync'd after the rename", ev[i:i + 3])
    # Every playlist and meta.json write: fsync, rename, directory fsync.
    for listed in ("index.m3u8", "meta.json"):
        final = os.path.join(d, listed)
        idx = [k for k, e in enumerate(ev) if e[0] == "rename" and e[2] == final]
        check(len(idx) >= len(segs), "%s rewritten after each segment" % listed, len(idx))
        for k in idx:
            check(ev[k - 1] == ("sync", ev[k][1]) and ev[k + 1] == ("sync", d),
                  listed + ": fsync, rename, directory fsync", ev[k - 1:k + 2])
    # Each segment is on the disk before the first playlist that lists it:
    # the playlist written right after its rename.
    for _, name in segs:
        final = os.path.join(d, name)
        i = next(k for k, e in enumerate(ev) if e[0] == "rename" and e[2] == final)
        nxt = next((k for k in range(i, len(ev)) if ev[k][0] == "rename" and
                    ev[k][2] == os.path.join(d, "index.m3u8")), None)
        check(nxt is not None and nxt > i + 1, name + " synced before a playlist lists it")
    # off: nothing is fsync'd.
    p = tool("record", root, "nosync", "--trace-sync", 1, "--export", 0, "--limit-ms", 5000, SRC)
    check_recording(recordings(root, "nosync")[0])
    check_eq([e for e in sync_events(p.stderr) if e[0] == "sync"], [], "fsync = off: no fsync")


def main():
    case = sys.argv[1]
    os.makedirs(WORK, exist_ok=True)
    t0 = time.time()
    try:
        globals()["case_" + case]()
    except Fail as e:
        print("FAIL %s: %s" % (case, e))
        return 1
    print("ok %s (%.1f s)" % (case, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
