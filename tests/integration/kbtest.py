"""Shared helpers for kebun's integration tests.

Every test starts its own kebun on a free loopback port with its own config
in a temporary directory, drives it with real peers (ffmpeg, ffprobe,
rtmpdump, GStreamer) and stops it with SIGTERM, failing when kebun does not
exit cleanly or a sanitizer reported anything. Only processes the test
started are killed, by PID.
"""
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

KEBUN = os.environ.get("KEBUN", "")
SRCDIR = os.environ.get("KEBUN_SRCDIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KEY = "demo-key-change-me"

_children = []
_failures = []


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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def run(cmd, timeout=60, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, timeout=timeout, **kw)


def finish():
    for p in _children:
        if p.poll() is None:
            stop(p, signal.SIGKILL)
    if _failures:
        log("%d check(s) failed: %s" % (len(_failures), "; ".join(_failures)))
        return 1
    log("all checks passed")
    return 0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Kebun:
    """One kebun process with its own config and log file."""

    def __init__(self, streams=None, server_extra="", stream_extra=None, asan_options="",
                 dir=None, preexec=None, http_extra=""):
        if not KEBUN or not os.access(KEBUN, os.X_OK):
            raise SystemExit("KEBUN must point to the kebun binary (got %r)" % KEBUN)
        # A restart reuses the directory (and so the recordings) of a kebun
        # that was killed.
        self.dir = dir or tempfile.mkdtemp(prefix="kebun-test-")
        self.server_extra, self.stream_extra = server_extra, stream_extra
        self.port = free_port()
        streams = streams or {"demo": KEY}
        lines = ["[server]", "listen = 127.0.0.1:%d" % self.port, "log_level = debug"]
        if "recordings =" not in server_extra:
            lines.append("recordings = %s/recordings" % self.dir)
        lines += [server_extra, ""]
        # The web side listens on a port of its own (every test runs it).
        self.http_port = free_port()
        lines += ["[http]"]
        if "listen" not in http_extra:
            lines += ["listen = 127.0.0.1:%d" % self.http_port]
        if "web_root" not in http_extra:  # the pages of this checkout
            lines += ["web_root = %s" % os.path.join(SRCDIR, "relay", "http", "www")]
        lines += [http_extra, ""]
        for name, key in streams.items():
            lines += ["[stream %s]" % name, "key = %s" % key]
            lines += [(stream_extra or {}).get(name, ""), ""]
        self.conf = os.path.join(self.dir, "kebun.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))
        self.logpath = os.path.join(self.dir, "kebun.log")
        self.logf = open(self.logpath, "a")
        self.log_start = self.logf.tell()
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0" +
                       (":" + asan_options if asan_options else ""))
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(SRCDIR, "tests", "lsan.supp"))
        self.proc = spawn([KEBUN, "-c", self.conf], stderr=self.logf, env=env,
                          preexec_fn=preexec)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("kebun exited at start:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                # kebun logs this once its web side listens too.
                if "listen = off" in http_extra or "listening for HTTP" in self.log():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("kebun did not listen on port %d:\n%s" % (self.port, self.log()))

    def url(self, path):
        return "rtmp://127.0.0.1:%d/live/%s" % (self.port, path)

    def log(self):
        """This process's part of the log file."""
        with open(self.logpath) as f:
            f.seek(self.log_start)
            return f.read()

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

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


def publish_lavfi(url, seconds, size="640x360", rate=30, gop=30, sample_rate=44100,
                  extra_video=None, realtime=True):
    """ffmpeg publishing generated H.264 + AAC; returns the Popen."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    if realtime:
        cmd += ["-re"]
    cmd += ["-f", "lavfi", "-i", "testsrc=size=%s:rate=%d" % (size, rate),
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=%d" % sample_rate,
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
            "-tune", "zerolatency", "-g", str(gop), "-pix_fmt", "yuv420p"]
    cmd += extra_video or []
    cmd += ["-c:a", "aac", "-b:a", "64k", "-f", "flv", url]
    return spawn(cmd)


def publish_file(url, path, loop=False):
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", path, "-c", "copy", "-f", "flv", url]
    return spawn(cmd)


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


def make_clip(path, seconds, size="640x360", rate=30, gop=30, bitrate=None, noise=False):
    """Encode a test clip once (H.264 + AAC in FLV) for publishers that copy."""
    vf = "testsrc2=size=%s:rate=%d" % (size, rate)
    if noise:
        vf += ",noise=alls=60:allf=t"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "lavfi", "-i", vf, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
           "-pix_fmt", "yuv420p"]
    if bitrate:
        cmd += ["-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
    cmd += ["-c:a", "aac", "-f", "flv", path]
    r = run(cmd, timeout=120)
    require(r.returncode == 0, "test clip encoded", r.stderr, "")
    return path
