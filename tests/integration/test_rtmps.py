#!/usr/bin/env python3
"""RTMPS ingest: [server] listen_tls, tls_cert, tls_key.

One kebun serves RTMP and RTMPS with a certificate from a CA the test makes
(platforms.make_ca), with handshake_timeout 3 s and max_connections 200.
Its OpenSSL runs under a configuration that allows TLS 1.0 and 1.1 (as an
old system's might), so only kebun's own floor stands between a TLS 1.1
client and the stream. Checked with real peers:
- refused configs, each with FILE:LINE and nothing of the key's contents:
  a missing file, garbage where the certificate should be, a certificate
  that does not decode (kebun does not start), a key that is not the
  certificate's;
- ffmpeg (gnutls, verifying the chain and 127.0.0.1 against the test CA)
  publishes over rtmps://; ffmpeg plays it over rtmps:// and ffprobe checks
  codecs and duration; a plain RTMP player gets the same stream;
- openssl s_client: TLS 1.1 refused with a protocol_version alert (while
  the same s_client gets TLS 1.1 from openssl s_server under the same
  OpenSSL configuration), TLS 1.2 and 1.3 accepted;
- plain RTMP to the rtmps port (a raw C0+C1, then ffmpeg with rtmp://) is
  closed with a log line that says so; rtmps:// to the plain port likewise;
- 300 clients (in a process of their own) that send a ClientHello and
  nothing more: the ones past max_connections are closed at once without
  an answer, the others answered and closed at handshake_timeout,
  while an RTMPS player keeps receiving in real time; afterwards new TLS
  connections are served again;
- SIGHUP with a certificate whose key does not match: refused with
  FILE:LINE, the old certificate is still served; SIGHUP with a renewed
  pair: new connections get it (s_client's fingerprint) while the
  publisher's TCP connection and the player carry on.
"""
import json
import os
import re
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbtest as t  # noqa: E402
from platforms import make_ca  # noqa: E402
from rtmpclient import Client  # noqa: E402

HANDSHAKE_TIMEOUT_S = 3
MAX_CONNECTIONS = 200
FLOOD = 300

# OpenSSL as an old system might set it up: any protocol version, any
# cipher. kebun must refuse TLS < 1.2 by itself.
WEAK_OPENSSL_CONF = """openssl_conf = init
[init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = sys
[sys]
MinProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
"""


def copy(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.replace(dst + ".tmp", dst)  # a renewal tool replaces the file whole


def fingerprint_of_file(path):
    r = t.run(["openssl", "x509", "-in", path, "-noout", "-fingerprint", "-sha256"])
    return r.stdout.strip().split("=", 1)[-1]


def served_fingerprint(port, env=None):
    """The SHA-256 fingerprint of the certificate kebun serves now, as
    openssl s_client sees it."""
    r = t.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
               "localhost"], input="", env=env, timeout=20)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    if not m:
        return None
    r = t.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=m.group(0))
    return r.stdout.strip().split("=", 1)[-1]


def s_client(port, version, env):
    """openssl s_client limited to one protocol version: what it agreed."""
    r = t.run(["openssl", "s_client", "-brief", "-connect", "127.0.0.1:%d" % port,
               "-" + version], input="", env=env, timeout=20)
    out = r.stdout + r.stderr
    m = re.search(r"^Protocol version: (\S+)", out, re.M)
    return {"ok": "CONNECTION ESTABLISHED" in out, "protocol": m.group(1) if m else None,
            "out": out}


def tls_client(port, ca):
    """An RTMP client inside TLS, verifying kebun against `ca`."""
    c = Client("127.0.0.1", port)
    ctx = ssl.create_default_context(cafile=ca)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    return c


class Player(threading.Thread):
    """A player of `name` recording (timestamp, arrival) of each video message."""

    def __init__(self, client, name):
        super().__init__(daemon=True)
        self.c = client
        self.c.connect()
        msid = self.c.create_stream()
        m, v = self.c.play(name, msid)
        t.require(v[3].get("code") == "NetStream.Play.Start", "the RTMPS player of %s started" %
                  name, v[3], "NetStream.Play.Start")
        self.video = []
        self.error = None
        self.done = threading.Event()
        self.start()

    def run(self):
        while not self.done.is_set():
            try:
                m = self.c.read_message(timeout=0.5)
            except TimeoutError:
                continue
            except Exception as e:  # the connection ended
                self.error = e
                return
            if m.type == 9:
                self.video.append((m.ts, time.monotonic()))

    def window(self, t0, t1):
        return [(ts, at) for ts, at in self.video if t0 <= at <= t1]

    def stop(self):
        self.done.set()
        self.join(5)
        self.c.close()


def check_real_time(what, frames, seconds):
    """frames: [(media ms, arrival)] over `seconds` of wall time."""
    t.check(len(frames) >= 25 * seconds, what + ": video kept arriving (30 fps source)",
            len(frames), ">= %d" % (25 * seconds))
    if len(frames) < 2:
        return
    stalls = max(b[1] - a[1] for a, b in zip(frames, frames[1:]))
    media = (frames[-1][0] - frames[0][0]) / 1000.0
    wall = frames[-1][1] - frames[0][1]
    t.log("%s: %.2f s of media in %.2f s, longest wait %.2f s" % (what, media, wall, stalls))
    # The machine is shared (the whole suite runs at once on two cores): a
    # wait under 2.5 s tolerates its scheduling of this test's own player
    # thread, and the loop blocked for longer, or a player dropped or
    # falling behind for good, would not pass.
    t.check(stalls < 2.5 and abs(media - wall) < 1.5,
            what + ": media time received keeps up with wall time",
            {"longest wait s": round(stalls, 2), "media s": round(media, 2),
             "wall s": round(wall, 2)}, "wait < 2.5 s, media ~ wall within 1.5 s")


# --- configs kebun refuses ---------------------------------------------------

def refused_configs(base, certs, other):
    d = os.path.join(base, "refused")
    os.makedirs(d)
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("this is not a certificate\n")
    broken = os.path.join(d, "broken.pem")  # armour right, contents not DER
    with open(broken, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n"
                "-----END CERTIFICATE-----\n")
    with open(certs["key"]) as f:
        key_body = [l for l in f.read().splitlines() if l and not l.startswith("-----")]
    cases = [
        # (what, cert, key, exit status, line, message)
        ("a missing certificate file", os.path.join(d, "missing.pem"), certs["key"], 1, 5,
         "tls_cert: %s: cannot open: No such file or directory" % os.path.join(d, "missing.pem")),
        ("garbage instead of the certificate", garbage, certs["key"], 1, 5,
         "tls_cert: %s holds no PEM certificate" % garbage),
        ("the certificate as the key", certs["cert"], certs["cert"], 1, 6,
         "tls_key: %s holds no PEM private key" % certs["cert"]),
        ("a certificate that does not decode", broken, certs["key"], 1, 5,
         "tls_cert: %s: the certificate cannot be read" % broken),
        ("a key that is not the certificate's", certs["cert"], other["key"], 1, 6,
         "tls_key: %s is not the private key of the certificate in %s" %
         (other["key"], certs["cert"])),
    ]
    for what, cert, key, status, line, message in cases:
        conf = os.path.join(d, "kebun.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:%d\nlisten_tls = 127.0.0.1:%d\n"
                    "recordings = %s/rec\ntls_cert = %s\ntls_key = %s\n[http]\nlisten = off\n"
                    "[stream demo]\nkey = %s\n" % (t.free_port(), t.free_port(), d, cert, key,
                                                   t.KEY))
        try:
            r = t.run([t.KEBUN, "-c", conf], timeout=20)
            code, out = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            code, out = "still running after 20 s", ""
        want = "%s:%d: [server] %s" % (conf, line, message)
        t.check(code == status and want in out,
                "refused at start, with file:line: %s" % what,
                (code, [l for l in out.splitlines() if "error" in l or conf in l][:3]),
                (status, want))
        t.check(not any(b in out for b in key_body) and t.KEY not in out,
                "the refusal shows nothing of the key or the stream key (%s)" % what)
        if status == 1:  # all of them: the pair is loaded with the config
            r = t.run([t.KEBUN, "--check-config", conf])
            t.check(r.returncode == 1 and want in r.stderr,
                    "kebun --check-config reports it too: %s" % what, (r.returncode, r.stderr),
                    (1, want))


# --- the flood ----------------------------------------------------------------

def flood(port, n):
    """n TCP connections that each send one TLS ClientHello and then nothing.
    Prints [connected at, closed at or None, bytes received] for each as
    JSON. Runs in a process of its own (`--flood`), so that it does not
    hold up the measuring player's thread."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        hello = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), hello, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        rec = [time.monotonic(), None, 0]
        try:
            s.sendall(hello.read())
        except OSError:
            rec[1] = time.monotonic()  # already refused
        s.setblocking(False)
        conns.append(rec)
        if rec[1] is None:
            sel.register(s, selectors.EVENT_READ, rec)
        else:
            s.close()
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S + 10
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            try:
                data = key.fileobj.recv(65536)  # the server's flight, then the end
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            key.data[2] += len(data)
            if not data:
                key.data[1] = time.monotonic()
                sel.unregister(key.fileobj)
                key.fileobj.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    json.dump(conns, sys.stdout)


def main():
    started = time.monotonic()
    base = t.tempdir("kebun-rtmps-")
    certs = make_ca(base, "a")
    renewed = make_ca(base, "b")
    refused_configs(base, certs, renewed)

    # kebun reads the pair from files we can replace (a renewal).
    live = os.path.join(base, "live")
    os.makedirs(live)
    cert, key = os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem")
    copy(certs["cert"], cert)
    copy(certs["key"], key)
    weak = os.path.join(base, "openssl-weak.cnf")
    with open(weak, "w") as f:
        f.write(WEAK_OPENSSL_CONF)
    weak_env = dict(os.environ, OPENSSL_CONF=weak)

    tls_port = t.free_port()
    os.environ["OPENSSL_CONF"] = weak  # for kebun only
    try:
        kb = t.Kebun(server_extra="listen_tls = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n"
                                  "handshake_timeout = %ds\nmax_connections = %d"
                                  % (tls_port, cert, key, HANDSHAKE_TIMEOUT_S, MAX_CONNECTIONS))
    finally:
        del os.environ["OPENSSL_CONF"]
    t.require(kb.wait_log("listening for RTMPS on 127.0.0.1:%d" % tls_port, after=0),
              "kebun listens for RTMPS")
    fp_a = fingerprint_of_file(certs["cert"])
    t.check("RTMPS certificate loaded from %s (CN=localhost, SHA-256 %s" % (cert, fp_a)
            in kb.log(), "the log names the certificate it serves (fingerprint)", None, fp_a)

    # --- ffmpeg publishes over rtmps://, verifying kebun's certificate. ---
    clip = t.clip(10)
    url = "rtmps://127.0.0.1:%d/live/" % tls_port
    pub = t.spawn(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                   "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv",
                   "-tls_verify", "1", "-ca_file", certs["ca"], url + t.KEY])
    t.require(kb.wait_log("stream=demo peer=127.0.0.1:", after=0, timeout=15) and
              re.search(r"stream=demo peer=\S+ publish started", kb.log()),
              "ffmpeg publishes over rtmps:// (certificate verified against the test CA)")
    pub_peer = re.search(r"stream=demo peer=(\S+) publish started", kb.log()).group(1)
    t.check(re.search(r"peer=%s connection accepted \(rtmps\)" % re.escape(pub_peer), kb.log()),
            "the publisher came in through the TLS listener")
    out = os.path.join(base, "played.flv")
    r = t.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
               "-tls_verify", "1", "-ca_file", certs["ca"], "-i", url + "demo", "-t", "4",
               "-c", "copy", "-f", "flv", out], timeout=60)
    t.check(r.returncode == 0, "ffmpeg plays the stream over rtmps://", r.stderr[-300:], "")
    info = t.probe(out)
    st = t.streams_by_type(info)
    v, a = st.get("video", {}), st.get("audio", {})
    dur = float(info.get("format", {}).get("duration", 0))
    t.check((v.get("codec_name"), v.get("width"), a.get("codec_name")) == ("h264", 640, "aac")
            and 3.5 <= dur <= 5.0, "what it played: H.264 640x360 + AAC, about 4 s",
            (v.get("codec_name"), v.get("width"), a.get("codec_name"), dur),
            ("h264", 640, "aac", "3.5..5"))
    st = t.streams_by_type(t.probe(kb.url("demo")))
    t.check(st.get("video", {}).get("codec_name") == "h264" and
            st.get("audio", {}).get("codec_name") == "aac",
            "a plain RTMP player gets the same stream", st, "h264 + aac")

    # --- TLS 1.2 and 1.3 only. ---
    control_port = t.free_port()
    control = t.spawn(["openssl", "s_server", "-accept", str(control_port), "-cert",
                       certs["cert"], "-key", certs["key"], "-naccept", "1", "-www"], env=weak_env,
                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    while control.poll() is None and "ACCEPT" not in control.stdout.readline():
        pass  # s_server says ACCEPT once it listens
    c = s_client(control_port, "tls1_1", weak_env)
    t.stop(control)
    t.require(c["ok"] and c["protocol"] == "TLSv1.1",
              "control: under this OpenSSL configuration openssl s_server speaks TLS 1.1",
              c["protocol"], "TLSv1.1")
    c = s_client(tls_port, "tls1_1", weak_env)
    t.check(not c["ok"] and "alert protocol version" in c["out"],
            "kebun refuses TLS 1.1 (protocol_version alert)", c["out"][-300:],
            "alert protocol version")
    t.check(kb.wait_log("TLS handshake failed: unsupported protocol", after=0),
            "kebun logs why it refused TLS 1.1")
    for version, name in (("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")):
        c = s_client(tls_port, version, weak_env)
        t.check(c["ok"] and c["protocol"] == name, "kebun accepts %s" % name, c["protocol"], name)

    # --- The wrong protocol on each port. ---
    before = kb.mark()
    s = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    s.sendall(b"\x03" + bytes(1536))
    try:
        closed = s.recv(100) == b""
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        closed = False
    s.close()
    t.check(closed, "plain RTMP (C0+C1) to the rtmps port: the connection is closed")
    plain_line = "TLS handshake failed: the client speaks plain RTMP to the rtmps port"
    t.check(kb.wait_log(plain_line, after=before) and
            re.search(r" warn peer=127\.0\.0\.1:\d+ " + plain_line, kb.log(after=before)),
            "... with a clear warning naming the peer", kb.log(after=before)[-300:], plain_line)
    r = t.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip,
               "-t", "1", "-c", "copy", "-f", "flv",
               "rtmp://127.0.0.1:%d/live/%s" % (tls_port, t.KEY)], timeout=30)
    t.check(r.returncode != 0 and kb.log(after=before).count(plain_line) >= 2,
            "ffmpeg with rtmp:// on the rtmps port fails, and the log says why",
            (r.returncode, kb.log(after=before).count(plain_line)), ("!= 0", 2))
    r = t.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip,
               "-t", "1", "-c", "copy", "-f", "flv",
               "rtmps://127.0.0.1:%d/live/%s" % (kb.port, t.KEY)], timeout=30)
    t.check(r.returncode != 0 and
            kb.wait_log("the client speaks rtmps:// to a plain RTMP port", after=before),
            "ffmpeg with rtmps:// on the plain port fails, and the log says why")

    # --- 300 stuck TLS handshakes against a player in real time. ---
    player = Player(tls_client(tls_port, certs["ca"]), "demo")
    time.sleep(1)
    before = kb.mark()
    cpu0 = cpu_seconds(kb.proc.pid)
    t0 = time.monotonic()
    r = t.run([sys.executable, os.path.abspath(__file__), "--flood", str(tls_port), str(FLOOD)],
              timeout=120)
    t1 = time.monotonic()
    t.require(r.returncode == 0, "the flood ran", r.stderr[-500:], "")
    conns = json.loads(r.stdout)
    t.log("kebun's CPU time during the flood: %.2f s" % (cpu_seconds(kb.proc.pid) - cpu0))
    text = kb.log(after=before)
    # Refused at accept: closed before kebun answered anything. Taken in:
    # answered (ServerHello...), then closed by the sweep.
    quick = [c for c in conns if c[1] is not None and c[2] == 0 and
             c[1] - c[0] < HANDSHAKE_TIMEOUT_S - 0.5]
    timed = [c for c in conns if c[1] is not None and c[2] > 0 and
             HANDSHAKE_TIMEOUT_S - 0.2 <= c[1] - c[0] <= HANDSHAKE_TIMEOUT_S + 4]
    never = [c for c in conns if c[1] is None]
    refused = text.count("connection refused (max_connections %d reached)" % MAX_CONNECTIONS)
    swept = len(re.findall(r"connection closed after [3-5]\.\d s in TLS handshake, \d+ bytes in, "
                           r"\d+ out \(no publish or play in time \(handshake_timeout\)\)", text))
    t.log("flood: %d closed at once (%d refusals logged), %d at handshake_timeout (%d log "
          "lines), %d never; the player got %d video frames in %.1f s"
          % (len(quick), refused, len(timed), swept, len(never), len(player.window(t0, t1)),
             t1 - t0))
    # The publisher and the player hold two of the slots.
    t.check(not never, "every stuck client was closed", len(never), 0)
    # On a busy machine the flood may take longer to open than the timeout:
    # a slot a swept client freed before the last one connected serves again.
    last_start = max(c[0] for c in conns)
    freed = len([c for c in timed if c[1] < last_start])
    t.check(len(quick) >= FLOOD - MAX_CONNECTIONS - freed and len(quick) == refused,
            "the clients past max_connections are closed at once, each with a log line",
            (len(quick), refused, freed), ">= %d - freed slots, equal"
            % (FLOOD - MAX_CONNECTIONS))
    t.check(len(timed) + len(quick) == FLOOD and swept == len(timed) and
            len(timed) >= MAX_CONNECTIONS - 10,
            "the others are closed at handshake_timeout (%d s), stuck in the TLS handshake"
            % HANDSHAKE_TIMEOUT_S, (len(timed), swept), "~%d, equal" % (MAX_CONNECTIONS - 2))
    check_real_time("the RTMPS player during the flood", player.window(t0, t1), t1 - t0)
    t.check(player.error is None, "the player stayed connected", player.error, None)
    c = s_client(tls_port, "tls1_3", weak_env)
    t.check(c["ok"], "after the flood a new TLS connection is served", c["out"][-200:], "ok")

    # --- SIGHUP: a key that does not match is refused, the old pair stays. ---
    copy(renewed["cert"], cert)
    before = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    want = "%s:%d: [server] tls_key: %s is not the private key of the certificate in %s" % (
        kb.conf, kb_line(kb.conf, "tls_key"), key, cert)
    t.check(kb.wait_log("reload refused", after=before) and kb.wait_log(want, after=before),
            "a reload with a key that is not the certificate's is refused, with file:line",
            kb.log(after=before)[-400:], want)
    t.check(served_fingerprint(tls_port) == fp_a, "the running certificate is still served")

    # --- SIGHUP with the renewed pair: new connections get it, nobody drops. ---
    copy(renewed["key"], key)
    ss_before = established(kb.proc.pid, tls_port)
    frames_before = len(player.video)
    before = kb.mark()
    os.kill(kb.proc.pid, signal.SIGHUP)
    t.check(kb.wait_log("config reloaded from", after=before), "the renewed pair is accepted")
    fp_b = fingerprint_of_file(renewed["cert"])
    t.check("RTMPS certificate reloaded from %s (CN=localhost, SHA-256 %s" % (cert, fp_b)
            in kb.log(after=before), "the log names the new certificate", None, fp_b)
    t.check(served_fingerprint(tls_port) == fp_b and fp_b != fp_a,
            "a new connection gets the renewed certificate (s_client's fingerprint)")
    fresh = Player(tls_client(tls_port, renewed["ca"]), "demo")
    time.sleep(2)
    ss_after = established(kb.proc.pid, tls_port)
    pub_port = int(pub_peer.rsplit(":", 1)[1])
    t.check(pub_port in ss_before and pub_port in ss_after,
            "the publisher's TCP connection is the same one after the reload",
            (pub_port, sorted(ss_after)), "in both")
    t.check("publish stopped" not in kb.log() and pub.poll() is None,
            "the publisher never stopped")
    t.check(len(player.video) > frames_before + 30 and player.error is None,
            "the player that started before the reload keeps receiving",
            (len(player.video) - frames_before, player.error), "> 30, None")
    t.check(len(fresh.video) > 30, "a player verifying the renewed chain plays",
            len(fresh.video), "> 30")

    fresh.stop()
    player.stop()
    t.stop(pub, signal.SIGKILL)
    text = kb.stop()
    t.check(t.KEY not in text, "the stream key never appears in the log")
    with open(key) as f:
        body = [l for l in f.read().splitlines() if l and not l.startswith("-----")]
    t.check(not any(b in text for b in body), "nothing of the private key appears in the log")
    t.log("took %.0f s" % (time.monotonic() - started))
    return t.finish()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kb_line(conf, name):
    with open(conf) as f:
        for i, line in enumerate(f, 1):
            if line.split("=")[0].strip() == name:
                return i
    return 0


def established(pid, port):
    """Peer ports of kebun's established connections on its `port`."""
    r = t.run(["ss", "-Htnp", "state", "established", "sport", "= :%d" % port])
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in r.stdout.splitlines()
            if "pid=%d," % pid in line}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flood"]:
        flood(int(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
