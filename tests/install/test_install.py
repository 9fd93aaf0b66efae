#!/usr/bin/env python3
"""kebun installs as a service.

- `meson install` into a DESTDIR puts the binary, the pages (DATADIR/kebun/www,
  where the installed config's web_root points), the config under SYSCONFDIR/kebun (its recordings under the service's state directory), the
  systemd unit, the sysusers.d entry and kebun(8) where the build's prefix
  says, and nothing it should not (no static libraries, no test programs).
- The unit is Type=notify with a dedicated user, ExecReload sends SIGHUP,
  StateDirectory/LogsDirectory are set with the usual hardening, and
  `systemd-analyze verify` accepts it (with the paths pointed into DESTDIR).
- kebun(8) renders without warnings and documents every configuration key.
- kebun speaks the notify protocol: READY=1 once it listens, RELOADING=1
  then READY=1 around a SIGHUP, STOPPING=1 at SIGTERM.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kbtest as t  # noqa: E402

BUILD = os.environ["KEBUN_BUILDDIR"]


def options():
    r = t.run(["meson", "introspect", "--buildoptions", BUILD])
    t.require(r.returncode == 0, "meson introspect works", r.stderr, "")
    opts = {o["name"]: o["value"] for o in json.loads(r.stdout)}
    prefix = opts["prefix"]

    def under(name):
        return os.path.join(prefix, opts[name])  # absolute values win
    return prefix, under("bindir"), under("sysconfdir"), under("mandir"), under("datadir")


def install(destdir):
    r = t.run(["meson", "install", "-C", BUILD, "--destdir", destdir, "--no-rebuild", "--quiet"],
              timeout=120)
    t.require(r.returncode == 0, "meson install into a DESTDIR succeeds", r.stderr[-2000:], "")
    files = []
    for root, _, names in os.walk(destdir):
        files += [os.path.relpath(os.path.join(root, n), destdir) for n in names]
    return sorted("/" + f for f in files)


def unit_lines(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def check_unit(destdir, unit, bindir, config):
    u = unit_lines(destdir + unit)
    want = {
        "Type": "notify",
        "User": "kebun",
        "Group": "kebun",
        "StateDirectory": "kebun",
        "LogsDirectory": "kebun",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "ReadWritePaths": "/var/lib/kebun",
    }
    for k, v in want.items():
        t.check(u.get(k) == [v], "unit: %s=%s" % (k, v), u.get(k), [v])
    t.check(u.get("ExecReload") == ["/bin/kill -HUP $MAINPID"], "unit: ExecReload sends SIGHUP",
            u.get("ExecReload"), ["/bin/kill -HUP $MAINPID"])
    start = "%s/kebun -c %s" % (bindir, config)
    t.check(u.get("ExecStart") == [start], "unit: ExecStart runs the installed binary with the "
            "installed config", u.get("ExecStart"), [start])
    # verify checks that every command exists: point the unit into DESTDIR.
    tmp = tempfile.mkdtemp(prefix="kebun-unit-")
    text = open(destdir + unit).read().replace(bindir + "/", destdir + bindir + "/")
    copy = os.path.join(tmp, "kebun.service")
    open(copy, "w").write(text)
    env = dict(os.environ)
    env["MANPATH"] = destdir + options()[3]  # mandir
    r = t.run(["systemd-analyze", "verify", copy], env=env)
    # Units it pulls in (sysinit.target) do not exist in a container; those
    # lines are about the machine, not this unit.
    problems = [l for l in (r.stderr + r.stdout).splitlines()
                if l.strip() and "sysinit.target" not in l and "kebun.service/start" not in l]
    t.check(not problems, "systemd-analyze verify accepts kebun.service", problems, [])
    shutil.rmtree(tmp)


def check_man(destdir, page, kebun):
    r = t.run(["groff", "-man", "-Tutf8", "-ww", "-z", destdir + page])
    t.check(r.returncode == 0 and not r.stderr.strip(), "kebun(8) renders without warnings",
            r.stderr[:500], "")
    text = t.run(["man", "-l", destdir + page], env=dict(os.environ, MANWIDTH="100")).stdout
    ref = t.run([kebun, "--config-reference"]).stdout
    keys = [line.split("`")[1] for line in ref.splitlines() if line.startswith("| `")]
    t.require(len(keys) > 20, "the key reference lists the keys", len(keys), "> 20")
    missing = [k for k in keys if k not in text]
    t.check(not missing, "kebun(8) documents every configuration key", missing, [])
    for section in ("SYNOPSIS", "SIGNALS", "EXIT STATUS", "FILES"):
        t.check(section in text, "kebun(8) has %s" % section)


def recv_all(sock, until, timeout=10):
    """Notify datagrams until one contains `until`."""
    got = []
    sock.settimeout(timeout)
    while True:
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            return got
        got.append(data)
        if until in data:
            return got


def check_notify():
    tmp = tempfile.mkdtemp(prefix="kebun-notify-")
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        kb = t.Kebun()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    got = recv_all(sock, "READY=1")
    t.check(any("READY=1" in g for g in got), "READY=1 once kebun listens", got, "READY=1")
    os.kill(kb.proc.pid, 1)  # SIGHUP
    got = recv_all(sock, "READY=1")
    joined = "|".join(got)
    t.check("RELOADING=1" in joined and joined.index("RELOADING=1") < joined.rindex("READY=1"),
            "RELOADING=1, then READY=1 around a reload", got, ["RELOADING=1", "READY=1"])
    kb.stop()
    got = recv_all(sock, "STOPPING=1", timeout=2)
    t.check(any("STOPPING=1" in g for g in got), "STOPPING=1 at SIGTERM", got, "STOPPING=1")
    sock.close()
    shutil.rmtree(tmp)


def main():
    prefix, bindir, sysconfdir, mandir, datadir = options()
    destdir = tempfile.mkdtemp(prefix="kebun-install-")
    files = install(destdir)
    t.log("installed: %s" % files)
    kebun = bindir + "/kebun"
    config = sysconfdir + "/kebun/kebun.conf"
    page = mandir + "/man8/kebun.8"
    for f in (kebun, config, page):
        t.check(f in files, "installs %s" % f, files, f)
    units = [f for f in files if f.endswith("/systemd/system/kebun.service")]
    t.require(len(units) == 1, "installs kebun.service into systemd's unit directory", files,
              ".../systemd/system/kebun.service")
    t.check(any(f.endswith("/sysusers.d/kebun.conf") for f in files),
            "installs the kebun user (sysusers.d)", files, ".../sysusers.d/kebun.conf")
    tmpfiles = [f for f in files if f.endswith("/tmpfiles.d/kebun.conf")]
    t.check(len(tmpfiles) == 1 and
            ("z %s 0640 root kebun -" % config) in open(destdir + tmpfiles[0]).read(),
            "tmpfiles.d gives the config to group kebun, mode 0640 (the service reads it)",
            tmpfiles, "z CONFIG 0640 root kebun -")
    extra = [f for f in files if f.endswith(".a") or "/test" in f or "rec_tool" in f]
    t.check(not extra, "installs no libraries or test programs", extra, [])

    r = t.run([destdir + kebun, "--version"])
    t.check(r.returncode == 0 and r.stdout.startswith("kebun "), "the installed binary runs",
            r.stdout + r.stderr, "kebun ...")
    conf = open(destdir + config).read()
    t.check("recordings = /var/lib/kebun/recordings" in conf,
            "the installed config records under the state directory", "", "")
    r = t.run([destdir + kebun, "--check-config", destdir + config])
    t.check(r.returncode == 0, "the installed config is valid", r.stdout + r.stderr, "ok")
    t.check((os.stat(destdir + config).st_mode & 0o7) == 0,
            "the installed config (it holds stream keys) is not world-readable",
            oct(os.stat(destdir + config).st_mode), "no bits for others")

    # The pages and the players they use, where the installed config's
    # web_root points.
    www = datadir + "/kebun/www"
    t.check("web_root = %s" % www in conf, "the installed config serves the installed pages",
            [l for l in conf.splitlines() if l.startswith("web_root")], "web_root = " + www)
    for f in ("index.html", "watch.html", "replay.html", "assets/kebun.js",
              "vendor/hls.js/hls.light.min.js", "vendor/mpegts.js/mpegts.js", "vendor/VERSIONS"):
        t.check(www + "/" + f in files, "installs the web side's %s" % f, "", www + "/" + f)

    check_unit(destdir, units[0], bindir, config)
    check_man(destdir, page, destdir + kebun)
    check_notify()
    shutil.rmtree(destdir)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
