"""Stand-in streaming platforms for push tests: nginx with libnginx-mod-rtmp
(each instance its own process on its own loopback port, recording every
publish session to FLV) and stunnel4 in front of one to make it an RTMPS
platform, with certificates from a CA the test makes."""
import os
import signal
import socket
import time

import kbtest as t

NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def wait_port(port, proc, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited at start (code %s)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s did not listen on %d" % (what, port))


class Nginx:
    """One nginx-rtmp 'platform' with the given applications. Each
    application records every publish session into DIR/rec-APP/."""

    def __init__(self, base, name, apps, port=None):
        self.dir = os.path.join(base, name)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = port or t.free_port()
        self.apps = apps
        blocks = []
        for app, extra in apps.items():
            rec = os.path.join(self.dir, "rec-" + app)
            os.makedirs(rec, exist_ok=True)
            blocks.append("        application %s {\n            live on;\n"
                          "            record all;\n            record_path %s;\n"
                          "            record_unique on;\n            %s\n        }"
                          % (app, rec, extra))
        conf = """load_module %s;
daemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/logs/error.log info;
events { worker_connections 1024; }
rtmp {
    server {
        listen 127.0.0.1:%d;
        chunk_size 4096;
%s
    }
}
""" % (NGINX_MODULE, self.dir, self.dir, self.port, "\n".join(blocks))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = None
        self.start()

    def start(self):
        self.proc = t.spawn(["nginx", "-p", self.dir, "-c", self.conf],
                            stderr=open(os.path.join(self.dir, "logs", "stderr.log"), "a"))
        wait_port(self.port, self.proc, "nginx " + self.dir)

    def kill(self):
        t.stop(self.proc, sig=signal.SIGKILL)

    def stop(self):
        t.stop(self.proc, sig=signal.SIGQUIT)

    def recordings(self, app):
        d = os.path.join(self.dir, "rec-" + app)
        files = [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".flv")]
        return sorted(files, key=os.path.getmtime)

    def url(self, app, key):
        return "rtmp://127.0.0.1:%d/%s/%s" % (self.port, app, key)


def make_ca(base, name):
    """A CA and a server certificate for localhost/127.0.0.1 it signed."""
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, x) for x in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    for cmd in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=kebun test CA " + name, "-keyout", ca_key, "-out", ca],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", key, "-out", csr],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt],
    ):
        r = t.run(cmd, timeout=60)
        t.require(r.returncode == 0, "openssl: " + " ".join(cmd[:2]), r.stderr[-300:], "")
    return {"ca": ca, "cert": crt, "key": key}


class Stunnel:
    """TLS on `port` in front of a plain TCP port."""

    def __init__(self, base, certs, target_port):
        self.dir = os.path.join(base, "stunnel")
        os.makedirs(self.dir, exist_ok=True)
        self.port = t.free_port()
        self.conf = os.path.join(self.dir, "stunnel.conf")
        with open(self.conf, "w") as f:
            f.write("foreground = yes\npid =\ndebug = 4\noutput = %s/stunnel.log\n"
                    "[rtmps]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
                    "cert = %s\nkey = %s\n" % (self.dir, self.port, target_port,
                                                 certs["cert"], certs["key"]))
        self.proc = t.spawn(["stunnel4", self.conf])
        wait_port(self.port, self.proc, "stunnel")
