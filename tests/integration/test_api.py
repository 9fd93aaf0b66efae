#!/usr/bin/env python3
"""The JSON API (docs/API.md), field by field, against a real publisher
(ffmpeg), real platforms (nginx-rtmp) and real players.

- GET /streams and /streams/NAME: state, since, publisher, codecs and the
  picture's size and rate from the sequence headers, bitrate, players and
  bytes out, every destination (masked URL, state, error and its time) and
  the recording; no key anywhere, in the API or /metrics.
- 401 (no token, wrong token, nothing changed), 403 is never needed here,
  404, 405 with Allow, 409, 413, 400 with the config's own message.
- A destination added and removed at runtime leaves the other
  destination's TCP connection alone (ss), goes live on its platform, and
  is still there, marked "source": "api", after SIGHUP and after a restart
  (the state file next to the recordings, mode 0600); a config destination
  removed through the API stays removed across both.
- kick drops the publisher; recordings are listed, filtered, read, and a
  finished one deleted (a live one refused).
"""
import http.client
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from platforms import Nginx  # noqa: E402

TOKEN = "api-test-token-0123456789"
PLATFORM_KEY = "PLATFORM-SECRET-KEY-A1"
ADDED_KEY = "PLATFORM-SECRET-KEY-B2"


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, token=TOKEN, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return r.status, doc, raw.decode("utf-8", "replace"), dict(r.getheaders())

    def get(self, path):
        return self.call("GET", path, token=None)

    def stream(self, name="demo"):
        s, doc, _, _ = self.get("/api/v1/streams/" + name)
        return doc if s == 200 else None


def wait_for(what, fn, timeout=15):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    t.check(False, what, last, "true within %d s" % timeout)
    return None


def dest(doc, ident):
    for d in (doc or {}).get("destinations", []):
        if d["id"] == ident:
            return d
    return None


def iso(v):
    return isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", v)


def kebun_conns(pid, remote_port):
    r = t.run(["ss", "-Htnp", "state", "established", "dport", "= :%d" % remote_port])
    return {line.split()[2] for line in r.stdout.splitlines() if "pid=%d," % pid in line}


def check_stream_fields(api, a_port):
    doc = wait_for("the stream is live with its bitrate measured",
                   lambda: (lambda d: d if d and d["state"] == "live" and d["bitrate_in"] > 0
                            else None)(api.stream()))
    if not doc:
        return
    t.check(iso(doc["since"]), "since is an ISO time", doc["since"], "ISO 8601 UTC")
    t.check(doc["publisher"] and re.match(r"^127\.0\.0\.1:\d+$", doc["publisher"]["address"]),
            "publisher address", doc["publisher"], "127.0.0.1:PORT")
    t.check(doc["video"] == {"codec": "H.264", "width": 640, "height": 360, "fps": 30},
            "video from the sequence header: H.264 640x360 at 30 fps", doc["video"],
            {"codec": "H.264", "width": 640, "height": 360, "fps": 30})
    t.check(doc["audio"] == {"codec": "AAC", "silent": False, "sample_rate": 44100, "channels": 1},
            "audio from the AudioSpecificConfig: AAC 44.1 kHz mono", doc["audio"],
            {"codec": "AAC", "silent": False, "sample_rate": 44100, "channels": 1})
    t.check(50000 < doc["bitrate_in"] < 20000000, "bitrate_in is the stream's", doc["bitrate_in"],
            "50 kbit/s .. 20 Mbit/s")
    t.check(doc["watch"] == "/watch/demo" and doc["flv"] == "/live/demo.flv", "page URLs",
            [doc["watch"], doc["flv"]], ["/watch/demo", "/live/demo.flv"])
    a = wait_for("destination a goes live", lambda: (lambda d: d if d and d["state"] == "live"
                                                     and d["bytes"] > 0 else None)(
        dest(api.stream(), "a")))
    if a:
        t.check(a["url"] == "rtmp://127.0.0.1:%d/live/****" % a_port, "a's URL is masked",
                a["url"], "rtmp://127.0.0.1:PORT/live/****")
        t.check(a["source"] == "config" and a["name"] == "a" and iso(a["since"]),
                "a: source, name, since", a, "config, a, ISO")
        t.check(a["last_error"] is None and a["last_error_at"] is None and a["drops"] == 0,
                "a has no error and no drops", a, "null, null, 0")
    broken = wait_for("the broken destination shows its error",
                      lambda: (lambda d: d if d and d["last_error"] else None)(
                          dest(api.stream(), "broken")))
    if broken:
        t.check(broken["state"] in ("retrying", "connecting") and "refused" in broken["last_error"]
                and iso(broken["last_error_at"]),
                "broken: retrying with 'connection refused' and its time", broken,
                "retrying, ...refused..., ISO")
    # The recorder opens its first segment at the first keyframe it is
    # handed (on a busy machine, after the checks above): ask until it has.
    rec = wait_for("the recording's state and path",
                   lambda: (lambda r: r if r and r["state"] == "recording" and
                            (r["path"] or "").startswith("demo/") else None)(
                       api.stream()["recording"]))
    if rec:
        t.check(rec["segments"] >= 0 and rec["bytes"] >= 0 and rec["dropped"] == 0 and
                rec["last_error"] is None, "the recording's counters", rec,
                "segments, bytes, nothing dropped, no error")


def check_players(kb, api):
    player = t.record(kb.url("demo"), os.path.join(kb.dir, "player.flv"), seconds=30)
    doc = wait_for("an RTMP player is counted and sent bytes",
                   lambda: (lambda d: d if d and d["players"] == 1 and d["bytes_out"] > 100000
                            else None)(api.stream()))
    t.check(doc is not None, "players and bytes_out follow a real player")
    t.stop(player)


def check_errors(api):
    s, doc, _, _ = api.call("POST", "/api/v1/streams/demo/destinations",
                            {"push": "rtmp://127.0.0.1:9/live/NOPE"}, token=None)
    t.check(s == 401 and "token" in doc["error"], "401 without the token", (s, doc), 401)
    s, doc, _, hdr = api.call("POST", "/api/v1/streams/demo/kick", token="wrong-token-xxxxxxxxxx")
    t.check(s == 401 and doc["error"] == "wrong token", "401 with a wrong token", (s, doc), 401)
    t.check(api.stream()["state"] == "live", "a wrong token changes nothing (still live)")
    s, doc, _, _ = api.get("/api/v1/streams/nosuch")
    t.check(s == 404 and "nosuch" in doc["error"], "404 for an unknown stream", (s, doc), 404)
    s, doc, _, _ = api.get("/api/v1/nothing")
    t.check(s == 404 and "error" in doc, "404 for an unknown endpoint", (s, doc), 404)
    s, doc, _, _ = api.call("DELETE", "/api/v1/streams/demo/destinations/nosuch")
    t.check(s == 404, "404 for an unknown destination", (s, doc), 404)
    s, doc, _, hdr = api.call("DELETE", "/api/v1/streams/demo")
    allow = {k.lower(): v for k, v in hdr.items()}.get("allow")
    t.check(s == 405 and allow == "GET, HEAD", "405 with Allow for a wrong method",
            (s, allow), (405, "GET, HEAD"))
    s, doc, _, _ = api.call("POST", "/api/v1/streams/demo/destinations", "x" * 5000,
                            headers={"Content-Type": "text/plain"})
    t.check(s == 413 and "max_body" in doc["error"], "413 for a body over max_body", (s, doc),
            413)
    s, doc, _, _ = api.call("POST", "/api/v1/streams/demo/destinations", "{not json")
    t.check(s == 400 and "JSON" in doc["error"], "400 for a body that is not JSON", (s, doc), 400)
    s, doc, raw, _ = api.call("POST", "/api/v1/streams/demo/destinations",
                              {"push": "ftp://host/app/SECRET-IN-BAD-VALUE"})
    t.check(s == 400 and "SECRET-IN-BAD-VALUE" not in raw, "400 for a bad push value, key not "
            "echoed", (s, doc), 400)
    s, doc, _, _ = api.call("POST", "/api/v1/streams/demo/destinations",
                            {"push": "rtmp://127.0.0.1:1/live/KEYZZZZ name=broken"})
    t.check(s == 409 and "already" in doc["error"], "409 for a destination the stream has",
            (s, doc), 409)


def main():
    base = os.environ.get("TMPDIR", "/tmp")
    import tempfile
    work = tempfile.mkdtemp(prefix="kebun-api-", dir=base)
    a = Nginx(work, "a", {"live": ""})
    b = Nginx(work, "b", {"live": ""})
    streams = {"demo": t.KEY}
    stream_extra = {"demo": "record = on\n"
                    "push = %s name=a\n" % a.url("live", PLATFORM_KEY) +
                    "push = rtmp://127.0.0.1:1/live/KEYZZZZ name=broken\n"}
    server = "grace = 1s\npush_retry_min = 200ms\npush_retry_max = 1s\n"
    http = "token = %s\nmax_body = 4K\n" % TOKEN
    kb = t.Kebun(streams=streams, stream_extra=stream_extra, server_extra=server, http_extra=http)
    api = Api(kb.http_port)
    start = kb.mark()
    pub = t.publish_loop(kb.url(t.KEY))
    t.require(kb.wait_log("publish started", after=start, timeout=15),
              "the publisher is accepted")

    check_stream_fields(api, a.port)
    check_players(kb, api)
    check_errors(api)

    # Add a destination at runtime: a's connection stays as it is.
    a_conns = kebun_conns(kb.proc.pid, a.port)
    t.check(len(a_conns) == 1, "kebun has one connection to platform a", a_conns, "one")
    s, doc, raw, _ = api.call("POST", "/api/v1/streams/demo/destinations",
                              {"push": "%s name=b" % b.url("live", ADDED_KEY)})
    t.check(s == 201 and doc["id"] == "b" and doc["source"] == "api" and
            doc["url"] == "rtmp://127.0.0.1:%d/live/****" % b.port and ADDED_KEY not in raw,
            "201: the new destination, from the API, key masked", (s, doc), "201 b api")
    b_live = wait_for("the added destination goes live on platform b",
                      lambda: (lambda d: d if d and d["state"] == "live" else None)(
                          dest(api.stream(), "b")))
    t.check(b_live is not None, "destination b is live")
    wait_for("platform b records what kebun sends", lambda: b.recordings("live"))
    t.check(kebun_conns(kb.proc.pid, a.port) == a_conns, "a's connection untouched by the add",
            kebun_conns(kb.proc.pid, a.port), a_conns)
    state_path = os.path.join(kb.dir, "recordings", ".kebun-destinations.conf")
    t.check(os.path.exists(state_path) and (os.stat(state_path).st_mode & 0o777) == 0o600,
            "the state file is written, mode 0600", oct(os.stat(state_path).st_mode)
            if os.path.exists(state_path) else None, "0o600")
    # Remove the config's broken destination through the API.
    s, doc, _, _ = api.call("DELETE", "/api/v1/streams/demo/destinations/broken")
    t.check(s == 200 and doc == {"removed": "broken"}, "DELETE a config destination", (s, doc),
            {"removed": "broken"})
    t.check(dest(api.stream(), "broken") is None, "it is gone from the stream")
    t.check(kebun_conns(kb.proc.pid, a.port) == a_conns, "a's connection untouched by the removal")

    # SIGHUP: both changes stay, and a keeps its connection.
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    t.check(kb.wait_log("config reloaded", after=mark), "SIGHUP reloads")
    t.check("push b removed by reload" not in kb.log(after=mark), "the reload keeps b")
    doc = api.stream()
    t.check(dest(doc, "b") and dest(doc, "b")["source"] == "api" and dest(doc, "broken") is None,
            "after SIGHUP: b (source api) is there, broken is not",
            [d["id"] for d in doc["destinations"]], ["a", "b"])
    t.check(kebun_conns(kb.proc.pid, a.port) == a_conns, "a's connection untouched by SIGHUP")

    # Kick the publisher.
    mark = kb.mark()
    s, doc, _, _ = api.call("POST", "/api/v1/streams/demo/kick")
    t.check(s == 200 and re.match(r"^127\.0\.0\.1:\d+$", doc.get("kicked", "")),
            "kick answers with the publisher's address", (s, doc), "kicked: 127.0.0.1:PORT")
    t.check(kb.wait_log("publisher kicked through the API", after=mark, timeout=5),
            "the log says who kicked")
    t.check(pub.wait(10) is not None, "the kicked publisher's connection is closed")
    wait_for("the stream leaves live after the kick", lambda: api.stream()["state"] != "live")
    s, doc, _, _ = api.call("POST", "/api/v1/streams/demo/kick")
    t.check(s == 409, "409 kicking nobody", (s, doc), 409)

    # Recordings: the broadcast ended after its 1 s grace.
    recs = wait_for("the finished recording is listed",
                    lambda: (lambda r: r if r and not r[0]["live"] and r[0]["end"] else None)(
                        api.get("/api/v1/recordings?stream=demo")[1]["recordings"]))
    if recs:
        r0 = recs[0]
        t.check(r0["stream"] == "demo" and r0["status"] == "complete" and r0["duration"] > 0.5 and
                r0["urls"]["playlist"] == "/rec/demo/%s/index.m3u8" % r0["id"] and
                r0["urls"]["page"] == "/replay/demo/%s" % r0["id"],
                "a recording: stream, status, duration, URLs", r0, "complete demo recording")
        s, one, _, _ = api.get("/api/v1/recordings/demo/" + r0["id"])
        t.check(s == 200 and one["id"] == r0["id"] and one["codecs"]["video"] == "H.264",
                "GET one recording", (s, one), "its meta.json")
        s, pl, _, _ = api.get(r0["urls"]["playlist"])
        t.check(s == 200, "its playlist is served", s, 200)
        future = "2099-01-01T00:00:00Z"
        t.check(api.get("/api/v1/recordings?from=" + future)[1]["recordings"] == [],
                "from= filters", None, [])
        t.check(len(api.get("/api/v1/recordings?to=" + future)[1]["recordings"]) >= 1,
                "to= filters")
        s, doc, _, _ = api.get("/api/v1/recordings?from=yesterday")
        t.check(s == 400, "400 for a bad from=", (s, doc), 400)
        s, doc, _, _ = api.call("DELETE", "/api/v1/recordings/demo/" + r0["id"])
        t.check(s == 200 and doc == {"deleted": "demo/" + r0["id"]}, "DELETE a finished recording",
                (s, doc), {"deleted": "demo/" + r0["id"]})
        t.check(api.get("/api/v1/recordings/demo/" + r0["id"])[0] == 404, "then it is gone")
    # A live recording is refused.
    pub = t.publish_loop(kb.url(t.KEY))
    live = wait_for("the new broadcast's recording is live",
                    lambda: (lambda s: s["recording"]["path"] if s["recording"]["state"] ==
                             "recording" else None)(api.stream()))
    if live:
        s, doc, _, _ = api.call("DELETE", "/api/v1/recordings/" + live)
        t.check(s == 409 and "being recorded" in doc["error"], "409 deleting the live recording",
                (s, doc), 409)

    # Nothing anywhere holds a key.
    everything = "".join(api.get(p)[2] for p in ("/api/v1/streams", "/api/v1/streams/demo",
                                                 "/api/v1/recordings", "/metrics"))
    for secret in (t.KEY, PLATFORM_KEY, ADDED_KEY, TOKEN):
        t.check(secret not in everything, "no key in the API or /metrics (%s...)" % secret[:6])

    # A restart: b (api) is back, broken (removed) is not.
    t.stop(pub)
    kb.stop()
    kb2 = t.Kebun(streams=streams, stream_extra=stream_extra, server_extra=server,
                  http_extra=http, dir=kb.dir)
    api2 = Api(kb2.http_port)
    doc = api2.stream()
    ids = [(d["id"], d["source"]) for d in doc["destinations"]]
    t.check(ids == [("a", "config"), ("b", "api")],
            "after a restart: a from the config, b from the API, broken still removed", ids,
            [("a", "config"), ("b", "api")])
    s, doc, _, _ = api2.call("DELETE", "/api/v1/streams/demo/destinations/b")
    t.check(s == 200, "b removed for good", (s, doc), 200)
    text = kb2.stop()
    for secret in (t.KEY, PLATFORM_KEY, ADDED_KEY, TOKEN):
        t.check(secret not in text, "no key in the log (%s...)" % secret[:6])
    a.stop()
    b.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
