#!/usr/bin/env python3
"""The pages in a real browser: kebun with its HTTP side on, an ffmpeg
publisher, nginx-rtmp platforms and Debian's headless Chromium driven by
playwright-core (web.mjs, one step per call). Checked:
- /watch/NAME plays over HTTP-FLV: currentTime advances over 3 s with no
  error event, and the latency from the publisher's clock (burned into the
  picture) to the screen is under 2 s; without MSE live playback it plays
  the live recording's HLS (natively, and through hls.js); the replay page
  of the recording being made plays it from its start; an idle stream's
  page waits, starts by itself when a broadcast begins and waits again
  after it;
- the dashboard shows the stream live with its thumbnail, platform A live
  and a broken destination retrying with its error; the preview plays;
  adding a destination without the token is refused with a clear message,
  a bad URL shows the API's error beside the form; adding platform B from
  the form makes it go live there (nginx's recording grows, the API says
  live); keys appear nowhere in the page; Remove and Kick work;
- /replay and /replay/NAME list the finished recording (thumbnail, local
  start time, duration); its page plays the MP4, seeks (Range) and plays
  on, offers the download and copies its link.
Screenshots of every page at 360x780 and 1280x800 go to KEBUN_WEB_LOGDIR
(meson-logs/web/ under the build directory), printed below.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import kbtest as t  # noqa: E402
from platforms import Nginx  # noqa: E402

TOKEN = "web-test-token-0123456789abcdef"
QUIET_KEY = "quiet-stream-key-123"
CHROMIUM = os.environ.get("KEBUN_CHROMIUM", "/usr/bin/chromium")

# The publisher's wall clock in each frame, for the latency measurement:
# the frame's pts becomes the wall clock in ms when the frame is made
# (-re paces the source in real time), then bit k of (ms / 10) mod 2^20
# is a black 24x24 cell at x = 8 + 24k on a white band at the top.
# web.mjs reads the cells back from every presented frame.
STAMP = ",".join(
    ["settb=1/1000", "setpts=floor(time(0)*1000)",
     "drawbox=x=0:y=0:w=496:h=40:c=white:t=fill"] +
    ["drawbox=x=%d:y=8:w=24:h=24:c=black:t=fill:enable='gte(mod(floor(t*100)/%d\\,2)\\,1)'"
     % (8 + 24 * k, 2 ** k) for k in range(20)] +
    ["setpts=N/(30*TB)"])


def api(base, path, method="GET"):
    req = urllib.request.Request(base + path, method=method,
                                 headers={"Authorization": "Bearer " + TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body.decode(errors="replace")
    except (OSError, ValueError) as e:
        return 0, str(e)


def wait_api(base, path, pred, timeout):
    """Polls path until pred(body) holds; returns the last body."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        code, body = api(base, path)
        if code == 200 and pred(body):
            return body
        time.sleep(0.25)
    return None if body is None else (body if pred(body) else None)


def dest(stream, id_):
    for d in (stream or {}).get("destinations", []):
        if d.get("id") == id_:
            return d
    return {}


def browser_step(step, cfg, timeout=180):
    """Runs one web.mjs step; its check lines go to our log."""
    t.log("browser step: " + step)
    p = t.spawn(["node", os.path.join(HERE, "web.mjs"), step, json.dumps(cfg)],
                stdout=None, stderr=subprocess.STDOUT, cwd=HERE)
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        t.stop(p, timeout=5)
        code = "timeout"
    return t.check(code == 0, "browser step %s: every check passed" % step, code, 0)


def prerequisites():
    t.require(shutil.which("node") is not None, "node is installed (apt install nodejs npm)")
    t.require(os.access(CHROMIUM, os.X_OK), "Chromium is installed at %s (apt install chromium)"
              % CHROMIUM)
    t.require(os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")),
              "playwright-core is installed in tests/web (scripts/setup runs `npm ci` there)")
    t.require(shutil.which("nginx") and os.path.exists("/usr/lib/nginx/modules/ngx_rtmp_module.so"),
              "nginx with the RTMP module is installed")



def publish_stamped(url, seconds):
    """ffmpeg encoding live (the one place a test does: each frame carries
    the wall clock it was made at, STAMP, which the page reads back to
    measure the latency), H.264 + AAC, 640x360 at 30 fps, a keyframe a
    second."""
    return t.spawn(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                    "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-t", str(seconds), "-vf", STAMP, "-c:v", "libx264", "-preset", "ultrafast",
                    "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", "-f", "flv", url])

def main():
    prerequisites()
    base_dir = t.tempfile.mkdtemp(prefix="kebun-web-")
    shots = os.environ.get("KEBUN_WEB_LOGDIR") or os.path.join(base_dir, "screenshots")
    os.makedirs(shots, exist_ok=True)
    t.log("screenshots go to " + shots)

    a = Nginx(base_dir, "platform-a", {"live": ""})
    b = Nginx(base_dir, "platform-b", {"live": ""})
    dead_port = t.free_port()  # nothing listens there: connection refused
    www = os.path.join(t.SRCDIR, "relay", "http", "www")
    secrets = [t.KEY, QUIET_KEY, "platform-a-secret-key", "broken-secret-key", "platform-b-secret-key"]
    kb = t.Kebun(
        streams={"demo": t.KEY, "quiet": QUIET_KEY},
        server_extra="grace = 2s\npush_retry_min = 500ms\npush_retry_max = 2s",
        http_extra="token = %s\nweb_root = %s" % (TOKEN, www),
        stream_extra={"demo": "record = on\n"
                              "push = rtmp://127.0.0.1:%d/live/platform-a-secret-key name=platform-a\n"
                              "push = rtmp://127.0.0.1:%d/live/broken-secret-key name=broken\n"
                      % (a.port, dead_port),
                      "quiet": "record = on\n"})
    base = "http://127.0.0.1:%d" % kb.http_port
    t.require(wait_api(base, "/api/v1/streams", lambda b: "streams" in b, 10) is not None,
              "kebun answers GET /api/v1/streams on " + base, api(base, "/api/v1/streams"))

    pub = publish_stamped(kb.url(t.KEY), 600)
    live = wait_api(base, "/api/v1/streams/demo",
                    lambda s: s.get("state") == "live" and dest(s, "platform-a").get("state") == "live"
                    and (s.get("recording") or {}).get("state") == "recording", 15)
    t.require(live is not None, "the API shows demo live, recording, with platform-a live",
              api(base, "/api/v1/streams/demo"))

    cfg = {
        "liveRecording": live["recording"]["path"],
        "base": base, "token": TOKEN, "shots": shots, "chromium": CHROMIUM, "stream": "demo",
        "secrets": secrets, "ffmpeg": shutil.which("ffmpeg"),
        "platformA": {"id": "platform-a", "masked": "rtmp://127.0.0.1:%d/live/****" % a.port},
        "broken": {"id": "broken"},
        "platformB": {"id": "platform-b", "server": "rtmp://127.0.0.1:%d/live" % b.port,
                      "key": "platform-b-secret-key", "recDir": os.path.join(b.dir, "rec-live")},
        "quiet": {"stream": "quiet", "publish": [
            "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100", "-t", "8",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", kb.url(QUIET_KEY)]},
    }

    browser_step("watch", cfg)
    if os.environ.get("KEBUN_WEB_ONLY_WATCH"):  # a developer's quicker look
        t.stop(pub)
        kb.stop()
        a.stop()
        b.stop()
        return t.finish()
    browser_step("dashboard", cfg)

    # The kick ended the broadcast: after the grace period the recording
    # is complete and its MP4 exported.
    try:
        pub.wait(15)
        kicked = True
    except subprocess.TimeoutExpired:
        kicked = False
        t.stop(pub)
    t.check(kicked, "the kicked publisher's ffmpeg ended by itself")
    rec = wait_api(base, "/api/v1/recordings?stream=demo",
                   lambda body: any(not r.get("live") and (r.get("urls") or {}).get("mp4")
                                    for r in body.get("recordings", [])), 30)
    t.require(rec is not None, "the recording is finished and its MP4 exported",
              api(base, "/api/v1/recordings?stream=demo"))
    cfg["recording"] = next(r for r in rec["recordings"]
                            if not r.get("live") and r["urls"].get("mp4"))
    t.log("recording %s, %.1f s" % (cfg["recording"]["id"], cfg["recording"]["duration"]))
    browser_step("replay", cfg)

    kb.stop()
    a.stop()
    b.stop()
    t.log("screenshots: " + shots)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
