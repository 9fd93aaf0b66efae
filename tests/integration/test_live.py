#!/usr/bin/env python3
"""HTTP-FLV viewers (GET /live/NAME.flv): the web side sends the response
head and hands the socket to the relay's loop, which serves the viewer like
an RTMP player.

- A raw client gets 200, video/x-flv, chunked, and FLV ("FLV" header, then
  tags) from the GOP cache on; ffmpeg reads the same URL and gets H.264
  and AAC that decode without an error.
- A viewer counts as a player in the API while it reads and stops counting
  when it leaves; kebun logs its start and stop with its address.
- HEAD answers 200 with no body, an unknown stream 404, POST 405.
- Viewers count against [server] max_connections: past it, a viewer is
  refused 503 with the reason.
- A viewer waiting on a stream that a reload removes gets the end of the
  chunked response and the connection closes.
"""
import http.client
import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402

OTHER_KEY = "other-stream-key-01"


class Viewer:
    """A raw HTTP client of /live/NAME.flv, reading as fast as it can."""

    def __init__(self, kb, name):
        self.sock = socket.create_connection(("127.0.0.1", kb.http_port), timeout=10)
        self.port = self.sock.getsockname()[1]
        self.sock.sendall(b"GET /live/%s.flv HTTP/1.1\r\nHost: kebun\r\n\r\n" % name.encode())
        self.data = b""

    def read_for(self, seconds):
        """Read for `seconds` or until the server closes. True when it closed."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                return False
            if not b:
                return True
            self.data += b
        return False

    def head(self):
        return self.data.partition(b"\r\n\r\n")[0].decode("latin-1")

    def body(self):
        """(the de-chunked body, the last chunk seen)."""
        body = self.data.partition(b"\r\n\r\n")[2]
        out, ended = b"", False
        while body:
            line, sep, rest = body.partition(b"\r\n")
            if not sep:
                break
            n = int(line, 16)
            if n == 0:
                ended = rest.startswith(b"\r\n")
                break
            if len(rest) < n + 2:
                break
            out += rest[:n]
            body = rest[n + 2:]
        return out, ended

    def close(self):
        self.sock.close()


def api(kb, path):
    c = http.client.HTTPConnection("127.0.0.1", kb.http_port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, json.loads(body or b"{}")


def request(kb, method, path):
    c = http.client.HTTPConnection("127.0.0.1", kb.http_port, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def players(kb, want, timeout=5):
    """The API's player count for demo, once it is `want` (or the last seen)."""
    got = [None]

    def seen():
        got[0] = api(kb, "/api/v1/streams/demo")[1].get("players")
        return got[0] == want
    t.wait_until(seen, timeout)
    return got[0]


def main():
    kb = t.Kebun(streams={"demo": t.KEY, "other": OTHER_KEY}, server_extra="max_connections = 3")
    pub = t.publish_file(kb.url(t.KEY), t.clip(10), loop=True)
    t.require(kb.wait_log("publish started", after=0, timeout=15), "the publisher is live")

    a = Viewer(kb, "demo")
    t.require(kb.wait_log("stream=demo peer=127.0.0.1:%d http-flv viewer started" % a.port,
                          after=0), "kebun logs the viewer's start with its address")
    a.read_for(2)
    head = a.head()
    t.check(head.startswith("HTTP/1.1 200 ") and "content-type: video/x-flv" in head.lower() and
            "transfer-encoding: chunked" in head.lower(), "200, video/x-flv, chunked",
            head.splitlines()[:1], "HTTP/1.1 200 OK")
    body, _ = a.body()
    tags = t.flv_tags_of(body)
    kinds = {ty for ty, _, _ in tags}
    t.check(body[:4] == b"FLV\x01" and 8 in kinds and 9 in kinds,
            "the body is FLV with audio and video tags", (body[:4], sorted(kinds)))
    video = [p for ty, _, p in tags if ty == 9 and len(p) > 1 and p[1] == 1]
    t.check(video and video[0][0] >> 4 == 1, "the first video frame is a keyframe (GOP cache)")
    t.check(players(kb, 1) == 1, "the API counts the viewer as a player", players(kb, 1), 1)

    # A real client: ffmpeg reads the same URL.
    out = os.path.join(kb.dir, "viewer.flv")
    r = t.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i",
               "http://127.0.0.1:%d/live/demo.flv" % kb.http_port, "-t", "3", "-c", "copy", out],
              timeout=30)
    t.check(r.returncode == 0, "ffmpeg reads /live/demo.flv", r.stderr[-300:], "exit 0")
    s = t.streams_by_type(t.probe(out))
    t.check(s.get("video", {}).get("codec_name") == "h264" and
            s.get("audio", {}).get("codec_name") == "aac", "ffmpeg got H.264 and AAC",
            {k: v.get("codec_name") for k, v in s.items()}, "h264 + aac")
    d = t.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", out, "-f", "null", "-"])
    t.check(d.returncode == 0 and not d.stderr.strip(), "what ffmpeg got decodes without an error",
            d.stderr.strip().splitlines()[:3], [])

    # Methods and names.
    st, body = request(kb, "HEAD", "/live/demo.flv")
    t.check(st == 200 and body == b"", "HEAD /live/demo.flv: 200, no body", st, 200)
    st, _ = request(kb, "GET", "/live/nope.flv")
    t.check(st == 404, "an unknown stream: 404", st, 404)
    st, _ = request(kb, "POST", "/live/demo.flv")
    t.check(st == 405, "POST: 405", st, 405)

    # max_connections = 3: the publisher, viewer a, and a viewer of the
    # other stream (waiting for its publisher) fill it.
    b = Viewer(kb, "other")
    t.require(kb.wait_log("stream=other peer=127.0.0.1:%d http-flv viewer started (waiting for "
                          "the publisher)" % b.port, after=0), "a viewer waits for the other stream")
    b.read_for(0.5)
    st, body = request(kb, "GET", "/live/demo.flv")
    t.check(st == 503 and b"max_connections (3) reached" in body,
            "past max_connections a viewer is refused 503 with the reason", (st, body[:80]),
            (503, "max_connections (3) reached"))

    # The viewer leaves: kebun notices, and it stops counting.
    mark = kb.mark()
    a.close()
    t.check(kb.wait_re(r"stream=demo peer=127\.0\.0\.1:%d http-flv viewer stopped \(the viewer "
                       r"left\), \d+ messages dropped" % a.port, after=mark),
            "kebun logs that the viewer left")
    t.check(players(kb, 0) == 0, "the API stops counting it", players(kb, 0), 0)

    # A reload that removes the stream ends its viewers' responses.
    with open(kb.conf) as f:
        conf = f.read()
    conf = re.sub(r"\[stream other\]\nkey = %s\n" % OTHER_KEY, "", conf)
    with open(kb.conf, "w") as f:
        f.write(conf)
    mark = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    closed = b.read_for(10)
    _, ended = b.body()
    t.check(closed and ended, "a removed stream's viewer gets the last chunk and the close",
            (closed, ended, b.data[-12:]), (True, True))
    t.check(kb.wait_log("http-flv viewer stopped (the stream was removed)", after=mark),
            "kebun logs why the viewer stopped")
    b.close()
    t.stop(pub)
    kb.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
