"""bench-smoke: prove the benchmark tools work, in a few seconds.

Starts kebun on a free loopback port, runs kebun-load against it (one
publisher of generated frames, a few players, a little churn) and
kebun-floor with a few receivers, and checks only that they did their job:
players received media, latency samples exist, the JSON parses. No timing
is asserted: this box's load decides those, and scripts/bench reports them.
Only the kebun process this test started is stopped, by PID.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

KEBUN = os.environ.get("KEBUN", "")
LOAD = os.environ.get("KEBUN_LOAD", "")
FLOOR = os.environ.get("KEBUN_FLOOR", "")
failures = []
passed = []


def check(cond, what, got=None):
    if cond:
        passed.append(what)
        print("ok   " + what, flush=True)
    else:
        print("FAIL %s (got %r)" % (what, got), flush=True)
        failures.append(what)
    return cond


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    for name, path in (("KEBUN", KEBUN), ("KEBUN_LOAD", LOAD), ("KEBUN_FLOOR", FLOOR)):
        if not path or not os.access(path, os.X_OK):
            print("%s must point to the binary (got %r)" % (name, path))
            return 1
    tmp = tempfile.mkdtemp(prefix="kebun-bench-smoke-")
    port, http_port = free_port(), free_port()
    conf = os.path.join(tmp, "kebun.conf")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\napp = live\nlog_level = warn\n"
                "recordings = %s/recordings\n\n[http]\nlisten = 127.0.0.1:%d\n\n"
                "[stream s0]\nkey = benchkey-0\n" % (port, tmp, http_port))
    log = open(os.path.join(tmp, "kebun.log"), "w")
    # As the integration tests run it (kbtest.sanitizer_env): h2o keeps
    # per-thread recycled buffers for the life of the process.
    env = dict(os.environ)
    env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp"))
    kebun = subprocess.Popen([KEBUN, "-c", conf], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        if not wait_port(port, kebun):
            check(False, "kebun listens", kebun.poll())
            return 1
        cmd = [LOAD, "--publish-url", "rtmp://127.0.0.1:%d/live/benchkey-%%d" % port,
               "--url", "rtmp://127.0.0.1:%d/live/s%%d" % port,
               "--publishers", "1", "--players", "5", "--ramp", "0", "--generate", "1000",
               "--warmup", "2.2", "--settle", "0.5", "--duration", "2",
               "--churn", "5", "--churn-hold", "0.3",
               "--server-pid", str(kebun.pid), "--json", "--quiet", "--label", "smoke"]
        print("$ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
        sys.stderr.write(r.stderr)
        check(r.returncode == 0, "kebun-load exits 0", r.returncode)
        try:
            j = json.loads(r.stdout)
        except ValueError as e:
            check(False, "kebun-load prints JSON", "%s: %r" % (e, r.stdout[:400]))
            return 1
        p = j["players"]
        check(j["ok"], "the run completed", j.get("abort_reason"))
        check(j["publishers"]["live"] == 1, "the publisher went live", j["publishers"])
        check(p["live_at_end"] == 5, "5 players playing", p)
        check(p["msgs_window"] > 0 and p["bytes_window"] > 0, "players received messages", p)
        check(j["ms"]["latency"]["count"] > 0, "latency measured", j["ms"]["latency"])
        check(j["ms"]["ttfk"]["count"] == 5, "every player got a keyframe", j["ms"]["ttfk"])
        check(j["churn"]["started"] > 0, "churn players started", j["churn"])
        check(j["ms"]["churn_accept"]["count"] > 0, "churn players played", j["ms"]["churn_accept"])
        check(len(j["server"]) == 1 and j["server"][0]["rss_kib_window_end"] > 0,
              "server sampled", j["server"])
        # The same with HTTP-FLV viewers (the web side's /live/NAME.flv).
        cmd = [LOAD, "--publish-url", "rtmp://127.0.0.1:%d/live/benchkey-%%d" % port,
               "--url", "http://127.0.0.1:%d/live/s%%d.flv" % http_port,
               "--publishers", "1", "--players", "5", "--ramp", "0", "--generate", "1000",
               "--warmup", "2.2", "--settle", "0.5", "--duration", "2",
               "--server-pid", str(kebun.pid), "--json", "--quiet", "--label", "smoke-flv"]
        print("$ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
        sys.stderr.write(r.stderr)
        try:
            j = json.loads(r.stdout)
            p = j["players"]
            check(r.returncode == 0 and p["live_at_end"] == 5 and p["msgs_window"] > 0,
                  "5 HTTP-FLV viewers received messages", p)
            check(j["ms"]["latency"]["count"] > 0 and j["ms"]["ttfk"]["count"] == 5,
                  "HTTP-FLV latency measured, every viewer got a keyframe", j["ms"])
        except ValueError:
            check(False, "kebun-load (HTTP-FLV) prints JSON", r.stdout[:400])
    finally:
        if kebun.poll() is None:
            os.kill(kebun.pid, signal.SIGTERM)
        try:
            kebun.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(kebun.pid, signal.SIGKILL)
            kebun.wait()
        log.close()
    if not check(kebun.returncode == 0, "kebun exits cleanly on SIGTERM", kebun.returncode):
        with open(os.path.join(tmp, "kebun.log")) as f:
            sys.stdout.write("kebun's log ends:\n" + f.read()[-3000:])

    cmd = [FLOOR, "--receivers", "4", "--duration", "1", "--generate", "1000", "--json"]
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "kebun-floor exits 0", r.returncode)
    try:
        j = json.loads(r.stdout)
        check(j["writes"] > 0 and j["bytes"] > 0, "kebun-floor wrote", j)
    except ValueError:
        check(False, "kebun-floor prints JSON", r.stdout[:400])
    cmd[-1:] = ["--interval-ms", "40", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    try:
        j = json.loads(r.stdout)
        check(r.returncode == 0 and j["writes"] > 0, "kebun-floor --interval-ms works", j)
    except ValueError:
        check(False, "kebun-floor --interval-ms prints JSON", r.stdout[:400])

    print("%d passed, %d failed" % (len(passed), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
