"""Shared helpers for kebun's integration tests.

Every test starts its own kebun on a loopback port no other test holds, with
its own config in its own temporary directory, drives it with real peers
(ffmpeg, ffprobe, rtmpdump, GStreamer) and stops it with SIGTERM, failing
when kebun does not exit cleanly or a sanitizer reported anything. Only
processes the test started are killed, by PID. Tests run in parallel, so:

- ports come from free_port(), which locks each port it hands out for the
  life of the test process and takes them below the kernel's ephemeral
  range, where no outgoing connection can take one meanwhile;
- publishers copy clips encoded once per build directory (clip(),
  make_clip()) instead of running an H.264 encoder each: encoders competing
  for two cores would disturb the tests that check real-time delivery;
- events are waited for in kebun's log after a cursor (mark(), then
  wait_log(text, after=mark)), never by sleeping, and never satisfied by a
  line that was there before.
"""
import atexit
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

KEBUN = os.environ.get("KEBUN", "")
SRCDIR = os.environ.get("KEBUN_SRCDIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Encoded clips, shared by every test of one build directory.
CLIPS = os.environ.get("KEBUN_CLIPS") or os.path.join(tempfile.gettempdir(), "kebun-test-clips")
KEY = "demo-key-change-me"

_children = []
_failures = []
_tempdirs = []


def _kill_children():
    """Even when a test dies on an exception, the processes it started go."""
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass


atexit.register(_kill_children)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def check(cond, what, got=None, want=None):
    """Record a failure (printing both sides) without stopping the test."""
    if cond:
        log("ok   " + what)
        return True
    detail = ""
    if got is not None or want is not None:
        detail = "\n       got:  %r\n       want: %r" % (got, want)
    log("FAIL " + what + detail)
    _failures.append(what)
    return False


def require(cond, what, got=None, want=None):
    """Like check(), but stop the test: later steps depend on this one."""
    if not check(cond, what, got, want):
        raise SystemExit(finish())


def wait_until(pred, timeout, interval=0.05):
    """Poll pred() until it is true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def tempdir(prefix="kebun-test-"):
    """A fresh directory, removed by finish() when every check passed (and
    kept, with its path logged, for a look at what went wrong otherwise)."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


# --- ports ------------------------------------------------------------------------

PORT_LOCKS = os.path.join(tempfile.gettempdir(), "kebun-test-ports")
_port_fds = []


def _port_range():
    """Ports below the ephemeral range: the kernel gives those to nobody
    unasked, so a port found free stays free until its test binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1024, low - 8192), low - 1


def free_port():
    """A loopback TCP port for one listener of this test. Each port handed
    out is locked (flock on PORT_LOCKS/PORT.lock) until this process exits,
    so tests running at the same time never pick the same one."""
    if not os.path.isdir(PORT_LOCKS):
        os.makedirs(PORT_LOCKS, exist_ok=True)
        try:
            os.chmod(PORT_LOCKS, 0o1777)  # shared by every user's tests, like /tmp
        except OSError:
            pass
    low, high = _port_range()
    n = high - low + 1
    first = random.randrange(n)
    for i in range(n):
        port = low + (first + i) % n
        try:
            fd = os.open(os.path.join(PORT_LOCKS, "%d.lock" % port), os.O_RDONLY | os.O_CREAT,
                         0o644)
        except OSError:
            continue  # another user's lock file we may not open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            # Free now, by something that is not a test (or a test's
            # leftover) too.
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            os.close(fd)
            continue
        _port_fds.append(fd)
        return port
    raise SystemExit("no free loopback port in %d-%d" % (low, high))


# --- processes ----------------------------------------------------------------------

def spawn(cmd, **kw):
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(cmd, **kw)
    _children.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    """Stop one child we started; returns its exit code."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    return p.returncode


def _niced():
    os.nice(10)


def run(cmd, timeout=60, **kw):
    """Run a command to its end (a check: ffprobe, a decode, openssl) under
    nice, so that it takes the CPU that the real-time parts of the tests
    running beside it (kebun, publishers, players) leave."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("preexec_fn", _niced)
    return subprocess.run(cmd, timeout=timeout, **kw)


def finish():
    for p in _children:
        if p.poll() is None:
            stop(p, signal.SIGKILL)
    if _failures:
        log("%d check(s) failed: %s" % (len(_failures), "; ".join(_failures)))
        for d in _tempdirs:
            log("kept for a look: " + d)
        return 1
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)
    log("all checks passed")
    return 0


def main(cases, argv=None):
    """Run the named cases (all when none is named) and finish. A file
    with independent parts registers each as its own meson test, so they
    run in parallel; by hand, `python3 test_x.py` runs them all."""
    names = (sys.argv[1:] if argv is None else argv) or list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        raise SystemExit("unknown case(s) %s; cases: %s" % (" ".join(unknown), " ".join(cases)))
    for n in names:
        log("== " + n)
        cases[n]()
    return finish()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sanitizer_env(asan_options=""):
    """The environment kebun runs in: in the sanitizer build, leaks are
    checked at exit and the first undefined behaviour stops the process
    (test_sanitizers.py proves both are reported)."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0" +
                   (":" + asan_options if asan_options else ""))
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    # h2o keeps per-thread recycled buffers for the life of the process
    # (tests/lsan.supp says which).
    env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(SRCDIR, "tests", "lsan.supp"))
    return env


class Kebun:
    """One kebun process with its own config and log file.

    Its log is read after a cursor: `mark = kb.mark()` before an action,
    `kb.wait_log(text, after=mark)` for what the action makes kebun log."""

    def __init__(self, streams=None, server_extra="", stream_extra=None, asan_options="",
                 dir=None, preexec=None, http_extra=""):
        if not KEBUN or not os.access(KEBUN, os.X_OK):
            raise SystemExit("KEBUN must point to the kebun binary (got %r)" % KEBUN)
        # A restart reuses the directory (and so the recordings) of a kebun
        # that was killed.
        self.dir = dir or tempdir()
        self.server_extra, self.stream_extra = server_extra, stream_extra
        self.streams = streams or {"demo": KEY}
        self.http_extra = http_extra
        self.conf = os.path.join(self.dir, "kebun.conf")
        self.logpath = os.path.join(self.dir, "kebun.log")
        env = sanitizer_env(asan_options)
        # free_port() hands out ports nobody else should take; if something
        # outside the tests took one anyway, start again on another.
        for attempt in range(5):
            self.port = free_port()
            # The web side listens on a port of its own (every test runs it).
            self.http_port = free_port()
            self._write_conf()
            self.logf = open(self.logpath, "ab")
            self.log_start = os.path.getsize(self.logpath)
            self.proc = spawn([KEBUN, "-c", self.conf], stderr=self.logf, env=env,
                              preexec_fn=preexec)
            if self._wait_listening():
                return
            self.logf.close()
            log("port %d was taken, starting kebun on another" % self.port)
        raise SystemExit("kebun found no free port in 5 attempts:\n" + self.log())

    def _write_conf(self):
        lines = ["[server]", "listen = 127.0.0.1:%d" % self.port, "log_level = debug"]
        if "recordings =" not in self.server_extra:
            lines.append("recordings = %s/recordings" % self.dir)
        lines += [self.server_extra, ""]
        lines += ["[http]"]
        if "listen" not in self.http_extra:
            lines += ["listen = 127.0.0.1:%d" % self.http_port]
        if "web_root" not in self.http_extra:  # the pages of this checkout
            lines += ["web_root = %s" % os.path.join(SRCDIR, "relay", "http", "www")]
        lines += [self.http_extra, ""]
        for name, key in self.streams.items():
            lines += ["[stream %s]" % name, "key = %s" % key]
            lines += [(self.stream_extra or {}).get(name, ""), ""]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))

    def _wait_listening(self):
        """True once kebun says it listens on its port (its own log line: a
        connection could reach whatever else holds the port); False when it
        exited because the port was taken."""
        listening = "listening for RTMP on 127.0.0.1:%d" % self.port
        # kebun logs this once its web side listens too (HTTP comes after RTMP).
        http = "listening for HTTP" if "listen = off" not in self.http_extra else listening
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log()
            if listening in text and http in text:
                return True
            if self.proc.poll() is not None:
                text = self.log()
                if "cannot listen on" in text and "address already in use" in text.lower():
                    return False
                raise SystemExit("kebun exited at start:\n" + text)
            time.sleep(0.05)
        raise SystemExit("kebun did not listen on port %d:\n%s" % (self.port, self.log()))

    def url(self, path):
        return "rtmp://127.0.0.1:%d/live/%s" % (self.port, path)

    def mark(self):
        """A cursor at the end of the log so far."""
        return os.path.getsize(self.logpath)

    def _read(self, after):
        with open(self.logpath, "rb") as f:
            f.seek(max(after or 0, self.log_start))
            return f.read()

    def log(self, after=None):
        """This process's part of the log file (from the cursor `after`)."""
        return self._read(after).decode("utf-8", "replace")

    def lines(self, after=None):
        return self.log(after).splitlines()

    def wait_log(self, text, after, timeout=10):
        """Wait for `text` in the log after the cursor `after` (a mark(), or
        0 for the whole log); return the cursor just past it, or None."""
        needle = text.encode()
        start = max(after, self.log_start)
        deadline = time.monotonic() + timeout
        while True:
            i = self._read(start).find(needle)
            if i >= 0:
                return start + i + len(needle)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def wait_re(self, pattern, after, timeout=10):
        """Like wait_log() for a regular expression; the match, or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log(after))
            if m or time.monotonic() >= deadline:
                return m
            time.sleep(0.05)

    def wait_count(self, text, n, after, timeout=10):
        """Wait until `text` appears n times after `after`; the count seen."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.log(after).count(text)
            if count >= n or time.monotonic() >= deadline:
                return count
            time.sleep(0.05)

    def stop(self):
        """SIGTERM, then check the exit and the sanitizers' verdict."""
        code = stop(self.proc)
        self.logf.close()
        text = self.log()
        check(code == 0, "kebun exits 0 on SIGTERM", code, 0)
        bad = [l for l in text.splitlines()
               if "ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l
               or "runtime error:" in l]
        check(not bad, "no sanitizer reports in kebun's log", bad[:5], [])
        return text


# --- media --------------------------------------------------------------------------

def _clip_path(name, args):
    # The name carries the parameters and a digest of the whole command, so
    # changing how a clip is made makes a new one.
    digest = hashlib.sha1(json.dumps(args).encode()).hexdigest()[:8]
    return os.path.join(CLIPS, "%s-%s.flv" % (name, digest))


def _cached(spec, timeout=300):
    """The clip of a spec (name, ffmpeg arguments), made by `ffmpeg ARGS
    FILE` once per build directory.

    Under meson the clips of CLIPS_USED are made before any test starts
    (the `clips` targets), so no encoder competes with a test that checks
    real-time delivery; asking for another one there fails the test until
    it is added to CLIPS_USED. By hand, a missing clip is made on first use
    (under a lock: tests asking at the same time wait for one encoder)."""
    name, args = spec
    path = _clip_path(name, args)
    if os.path.exists(path):
        return path
    if os.environ.get("KEBUN_CLIPS") and not _making_clips:
        require(False, "clip %s is made before the tests" % os.path.basename(path),
                "not in kbtest.CLIPS_USED", "listed there")
    os.makedirs(CLIPS, exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            tmp = "%s.%d.tmp" % (path, os.getpid())
            started = time.monotonic()
            r = run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"] + args +
                    ["-f", "flv", tmp], timeout=timeout)
            if r.returncode != 0:
                require(False, "clip %s encoded" % os.path.basename(path), r.stderr[-500:], "")
            os.rename(tmp, path)
            log("encoded %s in %.1f s" % (os.path.basename(path), time.monotonic() - started))
    return path


def live_spec(seconds, size="640x360", rate=30, gop=30, sample_rate=44100):
    return ("live-%s-%dfps-g%d-%dHz-%ss" % (size, rate, gop, sample_rate, seconds), [
        "-f", "lavfi", "-i", "testsrc=size=%s:rate=%d" % (size, rate),
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=%d" % sample_rate,
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(gop), "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])


def clip(seconds, size="640x360", rate=30, gop=30, sample_rate=44100):
    """H.264 + AAC as a live encoder sends it (zero latency, no B-frames):
    testsrc at `rate` fps with a keyframe every `gop` frames, a 440 Hz sine."""
    return _cached(live_spec(seconds, size, rate, gop, sample_rate))


def clip_spec(seconds, size="640x360", rate=30, gop=30, bitrate=None, noise=False):
    vf = "testsrc2=size=%s:rate=%d" % (size, rate)
    if noise:
        vf += ",noise=alls=60:allf=t"
    args = ["-f", "lavfi", "-i", vf, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
            "-pix_fmt", "yuv420p"]
    if bitrate:
        args += ["-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
    args += ["-c:a", "aac"]
    return ("clip-%s-%dfps-g%d-%s%s-%ss" % (size, rate, gop, bitrate or "crf",
                                           "-noise" if noise else "", seconds), args)


def late_audio_spec(seconds, audio_from=None, size="320x240", rate=25):
    """H.264 with a keyframe every second and no audio, or AAC 48 kHz stereo
    from `audio_from` seconds in (a phone whose microphone comes on late)."""
    args = ["-f", "lavfi", "-i", "testsrc2=size=%s:rate=%d" % (size, rate)]
    if audio_from is not None:
        args += ["-itsoffset", str(audio_from), "-f", "lavfi", "-i",
                 "sine=frequency=440:sample_rate=48000:duration=%d" % (seconds - audio_from),
                 "-ac", "2"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate),
             "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac"] if audio_from is not None else ["-an"]
    return ("video-%s-%dfps-audio-from-%s-%ss" % (size, rate, audio_from, seconds), args)


def spec_clip(spec):
    """The clip of a spec from CLIPS_USED."""
    return _cached(spec)


def make_clip(seconds, size="640x360", rate=30, gop=30, bitrate=None, noise=False):
    """A test clip (H.264 + AAC in FLV) for publishers that copy; `bitrate`
    holds the video at that rate, `noise` makes every frame expensive."""
    return _cached(clip_spec(seconds, size, rate, gop, bitrate, noise))


# Every clip the tests publish (clip() is live_spec, make_clip() clip_spec).
# The `clips` targets make them before the tests run, in CLIP_SHARDS
# shards that ninja runs in parallel.
CLIPS_USED = [
    live_spec(2, "320x240"), live_spec(2, "640x360"), live_spec(3, "160x120"),
    live_spec(4, "320x240"), live_spec(6, "320x240"), live_spec(6, "640x360"),
    live_spec(10, "320x240"), live_spec(10, "640x360"), live_spec(30, "640x360"),
    live_spec(10, "320x240", 30, 15), live_spec(10, "320x240", 30, 60),
    clip_spec(10, "640x360", 30, 30, "1M"),
    clip_spec(10, "640x360", 30, 30, "4M", True),
    clip_spec(10, "640x360", 30, 30, "12M", True),
    clip_spec(20, "640x360", 30, 30, "16M", True),
    late_audio_spec(6), late_audio_spec(6, 3),
    live_spec(3, "320x240", 25, 25), clip_spec(2, "320x240", 25, 25),
]
CLIP_SHARDS = 4
_making_clips = False


def make_clips(shard, stamp):
    """Make the clips of CLIPS_USED that fall to `shard` (of CLIP_SHARDS),
    remove clips no longer used, then write `stamp`."""
    global _making_clips
    _making_clips = True
    made = [_cached(spec) for i, spec in enumerate(CLIPS_USED) if i % CLIP_SHARDS == shard]
    # A change of CLIPS_USED or of the commands leaves clips behind.
    wanted = {_clip_path(*spec) for spec in CLIPS_USED}
    for name in os.listdir(CLIPS):
        path = os.path.join(CLIPS, name)
        if name.endswith(".flv") and path not in wanted:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    with open(stamp, "w") as f:
        f.write("\n".join(sorted(os.path.basename(p) for p in made)) + "\n")


def publish_file(url, path, loop=False, seconds=None):
    """ffmpeg publishing a file in real time without re-encoding (-c copy);
    `loop` repeats it until stopped (or for `seconds`)."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", path]
    if seconds:
        cmd += ["-t", str(seconds)]
    cmd += ["-c", "copy", "-f", "flv", url]
    return spawn(cmd)


def publish(url, seconds, size="640x360", rate=30, gop=30, sample_rate=44100):
    """ffmpeg publishing `seconds` of H.264 + AAC (clip()) in real time."""
    return publish_file(url, clip(seconds, size, rate, gop, sample_rate))


def publish_loop(url, size="640x360", rate=30, gop=30, sample_rate=44100):
    """Like publish(), until the test stops it (a 10 s clip, looped)."""
    return publish_file(url, clip(10, size, rate, gop, sample_rate), loop=True)


def record(url, out, seconds=None, extra=None):
    """ffmpeg playing url and copying it into out (FLV)."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    cmd += extra or []
    cmd += ["-i", url]
    if seconds:
        cmd += ["-t", str(seconds)]
    cmd += ["-c", "copy", "-f", "flv", out]
    return spawn(cmd)


def probe(target, timeout=20):
    r = run(["ffprobe", "-hide_banner", "-v", "error", "-show_entries",
             "stream=codec_type,codec_name,width,height,sample_rate:format=duration,start_time",
             "-of", "json", target], timeout=timeout)
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    return json.loads(r.stdout)


def streams_by_type(info):
    out = {}
    for s in info.get("streams", []):
        out[s.get("codec_type")] = s
    return out


def packets(path):
    """[(stream codec_type, pts seconds, dts seconds, is_key)] in file order."""
    r = run(["ffprobe", "-v", "error", "-show_entries",
             "packet=codec_type,pts_time,dts_time,flags", "-of", "json", path], timeout=60)
    if r.returncode != 0:
        return []
    out = []
    for p in json.loads(r.stdout).get("packets", []):
        def f(k):
            v = p.get(k)
            return float(v) if v not in (None, "N/A") else None
        out.append((p.get("codec_type"), f("pts_time"), f("dts_time"), "K" in p.get("flags", "")))
    return out


def flv_tags(path):
    """[(type, timestamp, payload)] of an FLV file; of one still being
    written, the tags complete so far."""
    try:
        with open(path, "rb") as f:
            d = f.read()
    except OSError:
        return []
    return flv_tags_of(d)


def flv_tags_of(d):
    """[(type, timestamp, payload)] of FLV bytes (the complete tags)."""
    if len(d) < 9 or d[:3] != b"FLV":
        return []
    o = int.from_bytes(d[5:9], "big") + 4
    out = []
    while o + 11 <= len(d):
        n = int.from_bytes(d[o + 1:o + 4], "big")
        if o + 11 + n > len(d):
            break
        ts = int.from_bytes(d[o + 4:o + 7], "big") | d[o + 7] << 24
        out.append((d[o] & 0x1F, ts, d[o + 11:o + 11 + n]))
        o += 11 + n + 4
    return out


def flv_seconds(path):
    """Seconds of video in an FLV file (so far): last minus first timestamp."""
    ts = [ts for ty, ts, _ in flv_tags(path) if ty == 9]
    return (ts[-1] - ts[0]) / 1000.0 if ts else 0.0


if __name__ == "__main__":
    # python3 kbtest.py --make-clips SHARD STAMP (meson's `clips` targets,
    # with KEBUN_CLIPS in the environment).
    if sys.argv[1:2] != ["--make-clips"] or len(sys.argv) != 4:
        sys.exit("usage: KEBUN_CLIPS=DIR python3 kbtest.py --make-clips SHARD STAMP")
    make_clips(int(sys.argv[2]), sys.argv[3])
