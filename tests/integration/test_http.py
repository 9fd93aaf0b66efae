#!/usr/bin/env python3
"""The web side under hostile clients, and /metrics.

Hostile HTTP, each bounded and answered with its status, while a real RTMP
player (ffmpeg) keeps receiving in real time:
- malformed request lines get 400 and a closed connection;
- a 64 KiB header gets 431 (over [http] max_header);
- 500 slowloris connections sending a byte a second are all closed at
  [http] request_timeout, and kebun's memory stays bounded;
- `..`, `%2e%2e`, encoded slashes, a NUL and a symlink out of the
  recordings never leave the recordings directory (and the state file,
  which holds keys, is never served);
- a 100 MB body is refused (413) without being read;
- 2000 requests on one keep-alive connection are all answered;
- files: HEAD, Range (206), If-None-Match (304), and a playlist is never
  answered 304 (it is rewritten while recorded);
- past [http] max_connections a connection is closed at once.

/metrics is parsed by prometheus_client's strict text parser (Debian's
python3-prometheus-client) plus the checks it does not make: one family per
name, a TYPE for every sample, counters named _total and never going down
between two scrapes, the expected families present, no address or key.
"""
import gzip
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402

TOKEN = "http-test-token-0123456789"
SLOW = 500


def raw(port, data, timeout=5):
    """Send bytes on a fresh connection; return what comes back until close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else None


def get(port, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def player_speed(kb, seconds):
    """Real time check: an ffmpeg player copies `seconds` of stream; the
    media time it got over the wall time it took."""
    out = os.path.join(kb.dir, "player-%d.flv" % time.monotonic_ns())
    start = time.monotonic()
    p = t.record(kb.url("demo"), out, seconds=seconds)
    p.wait(seconds + 20)
    took = time.monotonic() - start
    info = t.probe(out)
    dur = float(info.get("format", {}).get("duration", 0) or 0)
    return dur, took


def hostile(kb):
    port = kb.http_port
    # Malformed request lines.
    for bad in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40,
                b"GET /" + b"a" * 500000 + b" HTTP/1.1\r\n\r\n"):
        r = raw(port, bad)
        t.check(status_of(r) == 400, "a malformed request (%r...) gets 400" % bad[:12], r[:60],
                "HTTP/1.1 400")
    # 64 KiB of headers.
    big = "x" * 65536
    s, h, body = get(port, "/api/v1/streams", headers={"X-Big": big})
    t.check(s == 431, "64 KiB of headers: 431", s, 431)
    s, h, body = get(port, "/", headers={"X-Big": big})
    t.check(s == 431, "64 KiB of headers on a page: 431", s, 431)
    # A body of 100 MB, announced: refused before it is read.
    sk = socket.create_connection(("127.0.0.1", port), timeout=10)
    sk.sendall(b"POST /api/v1/streams/demo/destinations HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
               b"Content-Length: 104857600\r\n\r\n" + b"y" * 65536)
    resp = b""
    try:
        while b"\r\n\r\n" not in resp:
            b = sk.recv(4096)
            if not b:
                break
            resp += b
    except OSError:
        pass
    sk.close()
    t.check(status_of(resp) == 413, "a 100 MB body: 413 before it is read", resp[:40], 413)
    # Escapes from the recordings directory.
    rec = os.path.join(kb.dir, "recordings")
    outside = os.path.join(kb.dir, "outside.txt")
    with open(outside, "w") as f:
        f.write("SECRET-OUTSIDE")
    os.makedirs(os.path.join(rec, "demo", "2026-01-01T00-00-00Z"), exist_ok=True)
    os.symlink(outside, os.path.join(rec, "demo", "2026-01-01T00-00-00Z", "link.txt"))
    os.symlink(kb.dir, os.path.join(rec, "demo", "escape"))
    with open(os.path.join(rec, ".kebun-destinations.conf"), "w") as f:
        f.write("[stream demo]\n")
    for path in ("/rec/../outside.txt", "/rec/%2e%2e/outside.txt", "/rec/..%2foutside.txt",
                 "/rec/%2e%2e%2f%2e%2e%2fetc/passwd", "/rec/demo/2026-01-01T00-00-00Z/link.txt",
                 "/rec/demo/escape/outside.txt", "/rec/.kebun-destinations.conf",
                 "/rec/demo/../.kebun-destinations.conf", "/rec/demo/x/index.m3u8%00.txt",
                 "/%2e%2e/%2e%2e/etc/passwd", "/../kebun.conf", "/.hidden"):
        r = raw(port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        t.check(status_of(r) in (400, 403, 404) and b"SECRET-OUTSIDE" not in r and
                b"[stream" not in r and b"root:" not in r,
                "%s stays inside (status %s)" % (path, status_of(r)), r[:80], "400/403/404")
    # 2000 requests on one keep-alive connection.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ok = 0
    for i in range(2000):
        c.request("GET", "/api/v1/streams")
        r = c.getresponse()
        r.read()
        ok += r.status == 200
    c.close()
    t.check(ok == 2000, "2000 requests on one keep-alive connection all answered", ok, 2000)


def slowloris(kb):
    port = kb.http_port
    rss0 = t.rss_kib(kb.proc.pid)
    socks = []
    for i in range(SLOW):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /api/v1/streams HTTP/1.1\r\n")
            socks.append(s)
        except OSError:
            break
    t.check(len(socks) == SLOW, "%d slow connections opened" % SLOW, len(socks), SLOW)
    start = time.monotonic()
    speed = [None]
    import threading
    th = threading.Thread(target=lambda: speed.__setitem__(0, player_speed(kb, 5)))
    th.start()
    closed = 0
    # A byte a second on each, until kebun closes them (request_timeout 3 s).
    deadline = start + 15
    while socks and time.monotonic() < deadline:
        alive = []
        for s in socks:
            try:
                s.sendall(b"X")
                alive.append(s)
            except OSError:
                closed += 1
                s.close()
        socks = alive
        time.sleep(1)
    took = time.monotonic() - start
    rss1 = t.rss_kib(kb.proc.pid)
    for s in socks:
        s.close()
    th.join()
    t.check(not socks, "every slowloris connection closed by kebun", len(socks), 0)
    t.check(took < 10, "within request_timeout plus a sweep", "%.1f s" % took, "< 10 s")
    t.check(rss1 - rss0 < 40 * 1024, "memory stays bounded under 500 slow clients",
            "%+d KiB" % (rss1 - rss0), "< +40 MiB")
    dur, wall = speed[0]
    t.check(dur >= 4.5 and wall < dur + 3, "an RTMP player kept real time meanwhile",
            "%.1f s of media in %.1f s" % (dur, wall), "5 s of media in < 8 s")


def files(kb, api_port):
    # A finished recording's files: HEAD, Range, 304, and a playlist never 304.
    rec = os.path.join(kb.dir, "recordings", "demo")
    deadline = time.monotonic() + 20
    ident = None
    while time.monotonic() < deadline and not ident:
        for d in sorted(os.listdir(rec)) if os.path.isdir(rec) else []:
            if os.path.exists(os.path.join(rec, d, "init.mp4")) and \
               os.path.exists(os.path.join(rec, d, "index.m3u8")):
                ident = d
        time.sleep(0.3)
    if not t.check(ident is not None, "a recording with init.mp4 exists"):
        return
    base = "/rec/demo/%s/" % ident
    s, h, body = get(api_port, base + "init.mp4", method="HEAD")
    size = os.path.getsize(os.path.join(rec, ident, "init.mp4"))
    t.check(s == 200 and int(h.get("content-length", -1)) == size and body == b"",
            "HEAD gives the size and no body", (s, h.get("content-length")), (200, size))
    s, h, body = get(api_port, base + "init.mp4", headers={"Range": "bytes=4-11"})
    t.check(s == 206 and len(body) == 8 and h.get("content-range", "").startswith("bytes 4-11/"),
            "Range gives 206 and the bytes asked for", (s, len(body), h.get("content-range")),
            (206, 8))
    s, h, body = get(api_port, base + "init.mp4")
    etag = h.get("etag")
    s2, h2, body2 = get(api_port, base + "init.mp4", headers={"If-None-Match": etag or "x"})
    t.check(etag and s2 == 304, "If-None-Match with the ETag gives 304", (etag, s2), 304)
    s, h, body = get(api_port, base + "index.m3u8")
    s2, h2, body2 = get(api_port, base + "index.m3u8", headers={"If-None-Match": h.get("etag", "")})
    t.check(s == 200 and s2 == 200 and "no-cache" in h.get("cache-control", "") and
            h.get("content-type") == "application/vnd.apple.mpegurl",
            "a playlist is never 304 and not cached", (s, s2, h.get("cache-control"),
                                                      h.get("content-type")), (200, 200))
    segs = [f for f in os.listdir(os.path.join(rec, ident)) if f.endswith(".m4s")]
    if segs:
        s, h, body = get(api_port, base + segs[0], method="HEAD")
        t.check(h.get("content-type") == "video/iso.segment", ".m4s is video/iso.segment",
                h.get("content-type"), "video/iso.segment")
        s, h, body = get(api_port, base + segs[0], headers={"Accept-Encoding": "gzip"})
        t.check(s == 200 and "content-encoding" not in h, "video is never gzipped",
                (s, h.get("content-encoding")), (200, None))
    # Pages and the players go gzipped to a browser that takes it.
    www = os.path.join(t.SRCDIR, "relay", "http", "www")
    for path, f in (("/vendor/hls.js/hls.light.min.js", "vendor/hls.js/hls.light.min.js"),
                    ("/watch/demo", "watch.html"), ("/", "index.html")):
        want = open(os.path.join(www, f), "rb").read()
        s, h, body = get(api_port, path, headers={"Accept-Encoding": "gzip"})
        plain = gzip.decompress(body) if h.get("content-encoding") == "gzip" else None
        t.check(s == 200 and plain == want and len(body) < len(want) / 2,
                "%s is sent gzipped (and unpacks to the file)" % path,
                (s, h.get("content-encoding"), len(body), len(want)), (200, "gzip"))
        s, h, body = get(api_port, path)
        t.check(s == 200 and body == want and "content-encoding" not in h,
                "%s is sent plain to a client that does not ask for gzip" % path,
                (s, h.get("content-encoding")), (200, None))


def metrics_families(text):
    """Parse with prometheus_client (Debian's python3-prometheus-client)."""
    code = ("import sys, json\n"
            "from prometheus_client.parser import text_string_to_metric_families as f\n"
            "out = []\n"
            "for fam in f(sys.stdin.read()):\n"
            "    out.append([fam.name, fam.type, [[s.name, s.labels, s.value] for s in fam.samples]])\n"
            "print(json.dumps(out))\n")
    # Debian's package is for Debian's python3, whatever python3 runs this.
    r = subprocess.run(["/usr/bin/python3", "-c", code], input=text, capture_output=True,
                       text=True, timeout=30)
    t.require(r.returncode == 0, "prometheus_client parses /metrics", r.stderr[-500:], "parsed")
    import json
    return json.loads(r.stdout)


def metrics(kb):
    port = kb.http_port

    def scrape():
        s, h, body = get(port, "/metrics")
        t.check(s == 200 and h.get("content-type", "").startswith("text/plain; version=0.0.4"),
                "/metrics is the text format 0.0.4", (s, h.get("content-type")), 200)
        return body.decode()
    text1 = scrape()
    fams1 = metrics_families(text1)
    names = [f[0] for f in fams1]
    t.check(len(names) == len(set(names)), "each family once", names, "no duplicates")
    # Every sample line belongs to a family whose TYPE was declared.
    declared = set(re.findall(r"^# TYPE (\S+) (\S+)$", text1, re.M))
    types = {n: ty for n, ty in declared}
    for line in text1.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            t.check(name in types, "%s has a TYPE" % name) if name not in types else None
            if types.get(name) == "counter":
                t.check(name.endswith("_total"), "counter %s ends in _total" % name) \
                    if not name.endswith("_total") else None
    for want in ("kebun_build_info", "kebun_process_resident_memory_bytes", "kebun_connections",
                 "kebun_stream_live", "kebun_stream_players", "kebun_stream_received_bytes_total",
                 "kebun_destination_up", "kebun_destination_sent_bytes_total",
                 "kebun_destination_reconnects_total", "kebun_destination_dropped_messages_total",
                 "kebun_recorder_written_bytes_total", "kebun_recorder_segments_total",
                 "kebun_recorder_failures_total", "kebun_recorder_dropped_messages_total",
                 "kebun_http_requests_total"):
        t.check(want in types, "/metrics has %s" % want, sorted(types), want)
    t.check(re.search(r'^kebun_stream_live\{stream="demo"\} 1$', text1, re.M),
            "the live stream shows live 1")
    t.check(re.search(r'^kebun_destination_up\{stream="demo",destination="a"\} ', text1, re.M),
            "destinations are labelled by stream and id")
    t.check(re.search(r'kebun_http_requests_total\{handler="api",code="200"\} \d+', text1),
            "requests are counted by handler and code")
    for bad in ("127.0.0.1", t.KEY, "PUSHKEY-METRICS", TOKEN):
        t.check(bad not in text1, "no address or key in /metrics (%s...)" % bad[:8])
    time.sleep(1.5)
    text2 = scrape()
    fams2 = metrics_families(text2)

    def counters(fams):
        out = {}
        for name, typ, samples in fams:
            if typ == "counter":
                for sname, labels, value in samples:
                    out[(sname, tuple(sorted(labels.items())))] = value
        return out
    c1, c2 = counters(fams1), counters(fams2)
    went_down = [(k, c1[k], c2.get(k)) for k in c1 if k in c2 and c2[k] < c1[k]]
    t.check(not went_down, "counters never go down between two scrapes", went_down, [])
    grew = c2.get(("kebun_stream_received_bytes_total", (("stream", "demo"),)), 0) > \
        c1.get(("kebun_stream_received_bytes_total", (("stream", "demo"),)), 0)
    t.check(grew, "bytes received grow while the stream is live")


def public_reads(pub_clip):
    """Off loopback every /api/ request needs the token, reads too; buyers'
    pages read /public/v1/ instead, which anyone may: streams without their
    publisher address and destinations, and the recordings, read-only."""
    port = t.free_port()
    # Every address, so that it is not a loopback listen; the test still
    # talks to 127.0.0.1 only.
    kb = t.Kebun(stream_extra={"demo": "push = rtmp://127.0.0.1:9/live/HIDDEN-KEY-01 name=x\n"},
                 http_extra="listen = 0.0.0.0:%d\ntoken = %s\n" % (port, TOKEN))
    pub = t.publish_file(kb.url(t.KEY), pub_clip, loop=True)
    t.require(kb.wait_log("publish started", after=0, timeout=15),
              "public reads: the publisher is accepted")
    auth = {"Authorization": "Bearer " + TOKEN}
    deadline = time.monotonic() + 5  # the status is a snapshot, 250 ms old at most
    while time.monotonic() < deadline:
        st, _, body = get(port, "/api/v1/streams/demo", auth)
        if json.loads(body or b"{}").get("state") == "live":
            break
        time.sleep(0.05)
    for path in ("/api/v1/streams/demo", "/api/v1/streams", "/api/v1/recordings"):
        st, _, _ = get(port, path)
        t.check(st == 401, "off loopback, %s without the token is refused" % path, st, 401)
    st, _, _ = get(port, "/api/v1/streams/demo", {"Authorization": "Bearer wrong-token-0000000"})
    t.check(st == 401, "a read with a wrong token is refused", st, 401)
    st, _, body = get(port, "/api/v1/streams/demo", auth)
    doc = json.loads(body or b"{}")
    t.check(st == 200 and doc.get("publisher") and len(doc.get("destinations", [])) == 1,
            "with the token, a read shows the publisher and destinations", (st, sorted(doc)))
    st, _, body = get(port, "/public/v1/streams/demo")
    doc = json.loads(body or b"{}")
    t.check(st == 200 and doc.get("state") == "live" and "publisher" not in doc and
            "destinations" not in doc and doc.get("flv") == "/live/demo.flv",
            "/public/v1/streams/NAME: the public view, without the token",
            (st, sorted(doc)), "200 without publisher and destinations")
    t.check(b"HIDDEN-KEY" not in body and t.KEY.encode() not in body,
            "the public view holds no key")
    st, _, body = get(port, "/public/v1/streams")
    doc = json.loads(body or b"{}")
    t.check(st == 200 and [s.get("name") for s in doc.get("streams", [])] == ["demo"] and
            all("destinations" not in s for s in doc.get("streams", [])),
            "/public/v1/streams: the public view of every stream", (st, body[:200]))
    st, _, _ = get(port, "/public/v1/recordings")
    t.check(st == 200, "/public/v1/recordings: the recordings", st, 200)
    for method, path in (("POST", "/public/v1/streams/demo/kick"),
                         ("POST", "/public/v1/streams/demo/destinations"),
                         ("DELETE", "/public/v1/recordings/demo/x")):
        st, _, _ = get(port, path, method=method)
        t.check(st in (404, 405), "%s %s changes nothing: there is no such endpoint" %
                (method, path), st, "404 or 405")
    st, h, _ = get(port, "/public/v1/recordings", method="DELETE")
    t.check(st == 405 and h.get("allow") == "GET, HEAD", "/public/v1/ takes GET and HEAD only",
            (st, h.get("allow")), (405, "GET, HEAD"))
    t.stop(pub)
    kb.stop()


def main():
    work = t.tempdir("kebun-http-")
    from platforms import Nginx
    a = Nginx(work, "a", {"live": ""})
    kb = t.Kebun(stream_extra={"demo": "record = on\npush = %s name=a\n" %
                               a.url("live", "PUSHKEY-METRICS")},
                 http_extra="token = %s\nmax_header = 16K\nrequest_timeout = 3s\n"
                            "max_connections = 700\n" % TOKEN)
    clip = t.clip(10, size="320x240")
    pub = t.publish_file(kb.url(t.KEY), clip, loop=True)
    t.require(kb.wait_log("publish started", after=0, timeout=15), "the publisher is accepted")
    hostile(kb)
    slowloris(kb)
    files(kb, kb.http_port)
    metrics(kb)
    public_reads(clip)
    # Past max_connections: closed at accept.
    kb_low = t.Kebun(http_extra="max_connections = 5\n")
    mark = kb_low.mark()
    held = [socket.create_connection(("127.0.0.1", kb_low.http_port)) for _ in range(5)]
    # Until kebun has accepted the five, a sixth may still be served: ask
    # again until one is closed at once (or 5 s).
    deadline = time.monotonic() + 5
    while True:
        extra = raw(kb_low.http_port, b"GET /api/v1/streams HTTP/1.1\r\nHost: x\r\n\r\n",
                    timeout=3)
        if extra == b"" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    t.check(extra == b"", "past max_connections a connection is closed at once", extra[:40], b"")
    t.check(kb_low.wait_log("max_connections 5 reached", after=mark, timeout=5),
            "the log says why")
    for s in held:
        s.close()
    kb_low.stop()
    t.stop(pub)
    kb.stop()
    a.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
