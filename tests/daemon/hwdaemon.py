"""The daemon suite's harness: the real hostwardend on a private bus (stdlib only).

A `Daemon` owns a temporary tree: a dbus-daemon of type system with its socket there,
hostwarden's conf/run/lib/state directories, a dir store made with `hostwardenctl
init-cluster`, and hostwardend against libvirt's test:///default driver with the firewall off.
A `Polkit` runs a real polkitd on that bus in a private mount namespace whose
/usr/share/polkit-1/actions, rules directories and /etc/group are temporary copies. Everything started is ended by PID, in reverse order, on every exit path.

Calls go through the command-line clients: busctl --json=short for values (typed), gdbus for
errors (it prints the D-Bus error name), gdbus monitor for signals.
"""

import json
import os
import pathlib
import pwd
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

BUS_NAME = "org.hostwarden.Warden1"
NODE_PATH = "/org/hostwarden/Warden1"
NODE = "org.hostwarden.Warden1.Node"
MIGRATION = "org.hostwarden.Warden1.Migration"
ERR = "org.hostwarden.Warden1.Error."
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"

# test:///default's built-in running domain
TEST_DOMAIN = "test"
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

HERE = pathlib.Path(__file__).resolve().parent
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def as_uid(uid):
    """The command prefix that runs a client as uid: "nobody", a number, or None (root)."""
    if uid is None:
        return []
    if uid == "nobody":
        return NOBODY
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def build_dir():
    d = os.environ.get("HW_BUILD_DIR")
    if not d:
        raise RuntimeError("HW_BUILD_DIR is not set: run through 'meson test --suite daemon' "
                           "or set it to a build directory (tests/daemon/README.md)")
    return pathlib.Path(d)


def source_dir():
    return pathlib.Path(os.environ.get("HW_SOURCE_DIR", HERE.parent.parent))


def wait_for(what, predicate, timeout=10.0, interval=0.02):
    """Polls predicate() until it returns a true value (returned) or timeout: AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # noqa: BLE001 - a failing probe is "not yet"
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def stop_pid(proc, sig=signal.SIGTERM, timeout=10):
    """Ends one process we started, by PID; SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    except ProcessLookupError:
        pass


# --- argument encoding ---------------------------------------------------------------------

def split_signature(sig):
    """'ssa{sv}' -> ['s', 's', 'a{sv}']: the complete types of a signature."""
    out, i = [], 0
    while i < len(sig):
        j = i
        while sig[j] == "a":
            j += 1
        if sig[j] in "({":
            close = {"(": ")", "{": "}"}[sig[j]]
            depth = 0
            while True:
                if sig[j] in "({":
                    depth += 1
                elif sig[j] in ")}":
                    depth -= 1
                j += 1
                if depth == 0:
                    break
            assert sig[j - 1] == close
        else:
            j += 1
        out.append(sig[i:j])
        i = j
    return out


def busctl_args(sig, args):
    """busctl's words for args of signature sig (s, b, u, t, x, i, o, a{sv} of those)."""
    types = split_signature(sig)
    assert len(types) == len(args), (sig, args)
    words = [sig] if sig else []
    for t, v in zip(types, args):
        if t == "a{sv}":
            words.append(str(len(v)))
            for k, (vt, vv) in v.items():
                words += [k, vt, scalar_word(vt, vv)]
        else:
            words.append(scalar_word(t, v))
    return words


def scalar_word(t, v):
    if t == "b":
        return "true" if v else "false"
    return str(v)


def gvariant_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def gvariant(t, v):
    """GVariant text for gdbus call."""
    if t == "s":
        return gvariant_string(v)
    if t == "o":
        return "objectpath " + gvariant_string(v)
    if t == "b":
        return "true" if v else "false"
    if t in ("u", "t", "i", "x"):
        return {"u": "uint32", "t": "uint64", "i": "int32", "x": "int64"}[t] + f" {v}"
    if t == "a{sv}":
        items = ", ".join(f"{gvariant_string(k)}: <{gvariant(vt, vv)}>"
                          for k, (vt, vv) in v.items())
        return "@a{sv} {" + items + "}"
    raise ValueError(f"no GVariant text for type {t}")


class BusError(Exception):
    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


GDBUS_ERROR = re.compile(r"GDBus\.Error:([A-Za-z0-9_.]+): (.*)", re.S)


class Signals:
    """gdbus monitor on the daemon's name; lines collected by a thread, matched with deadlines."""

    def __init__(self, address):
        self.proc = subprocess.Popen(
            ["gdbus", "monitor", "--address", address, "--dest", BUS_NAME],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        # the match rules are in place once it has looked up the owner (same connection,
        # handled in order by the bus)
        self.wait(r"is owned by", timeout=10)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait(self, pattern, timeout=10):
        """The first line (from the start of the watch) matching pattern; AssertionError if none."""
        rx = re.compile(pattern)
        for line in self.seen:
            if rx.search(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no signal matching {pattern!r} within {timeout}s; "
                                     f"seen: {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if rx.search(line):
                return line

    def close(self):
        stop_pid(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Daemon:
    """hostwardend on a private bus; see the module docstring. Use as a context manager."""

    def __init__(self, store=True, config_extra="", peers=None, name="node1"):
        self.build = build_dir()
        self.source = source_dir()
        self.name = name
        self.store = store
        self.config_extra = config_extra
        self.peers = peers
        self.procs = []  # (what, Popen) in start order
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="hw-daemon-"))
        # nobody (polkit tests) must reach the bus socket and the polkit gate files
        self.tmp.chmod(0o755)
        self.sock = self.tmp / "bus.sock"
        self.address = f"unix:path={self.sock}"
        self.log_path = self.tmp / "hostwardend.log"
        self.daemon = None

    # --- setup ---------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()

    def exe(self, rel):
        p = self.build / rel
        if not p.exists():
            raise RuntimeError(f"{p} is missing: build first (ninja -C {self.build})")
        return str(p)

    @property
    def env(self):
        e = dict(os.environ)
        e.update({
            "DBUS_SYSTEM_BUS_ADDRESS": self.address,
            "HOSTWARDEN_CONF_DIR": str(self.tmp / "conf"),
            "HOSTWARDEN_RUNTIME_DIR": str(self.tmp / "run"),
            "HOSTWARDEN_LIB_DIR": str(self.tmp / "lib"),
            "HOSTWARDEN_STATE_DIR": str(self.tmp / "state"),
            "HOSTWARDEN_LIBVIRT_URI": "test:///default",
            "HOSTWARDEN_LOG": "stderr",
        })
        e.pop("NOTIFY_SOCKET", None)
        return e

    def default_peers(self):
        return {
            "node2": {"address": "127.0.0.2", "libvirt_uri": f"test://{self.tmp}/node2.xml",
                      "fence_agent": str(HERE / "fence-standin")},
            "node3": {"address": "127.0.0.3", "libvirt_uri": f"test://{self.tmp}/node3.xml"},
            "node4": {"address": "127.0.0.4", "libvirt_uri": f"test://{self.tmp}/node4.xml",
                      "fence_agent": str(HERE / "fence-standin"), "fence_options": "fail=yes"},
        }

    def config_text(self, peers=None, extra=None):
        peers = self.peers if peers is None else peers
        text = (f"[node]\nname = {self.name}\naddress = 127.0.0.1\n"
                f"instances_path = {self.tmp}/instances\n"
                "[cluster]\nstore = dir\nheartbeat_interval = 200ms\ndown_after = 1s\n"
                # mandatory: otherwise the daemon applies or removes the HOST's nftables table
                "[firewall]\nenable = no\n"
                "[migration]\ntls = no\n")
        for name, keys in peers.items():
            text += f"[peer {name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
        return text + (self.config_extra if extra is None else extra)

    def write_config(self, peers=None, extra=None):
        (self.tmp / "conf" / "hostwarden.conf").write_text(self.config_text(peers, extra))

    def start(self):
        for d in ("conf", "conf/hostwarden.conf.d", "run", "lib", "state", "instances"):
            (self.tmp / d).mkdir(exist_ok=True)
        if self.peers is None:
            self.peers = self.default_peers()
        for n in ("node2", "node3", "node4"):
            shutil.copy(HERE / f"{n}.xml", self.tmp / f"{n}.xml")
        self.write_config()
        conf = (HERE / "bus.conf.in").read_text().replace("@SOCKET@", str(self.sock))
        (self.tmp / "bus.conf").write_text(conf)
        bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", "--print-address",
                                f"--config-file={self.tmp / 'bus.conf'}"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(("dbus-daemon", bus))
        line = bus.stdout.readline()  # printed once it listens
        if not line.startswith("unix:"):
            raise RuntimeError(f"dbus-daemon did not start (printed {line!r})")
        if self.store:
            subprocess.run([self.exe("ctl/hostwardenctl"), "init-cluster"], env=self.env,
                           check=True, capture_output=True, text=True)
        self.start_daemon()
        if self.store:
            self.wait_property("StoreState", "attached")
            # reconciliation records test:///default's domain as this node's
            wait_for("the test domain's record", lambda: any(
                r[0] == TEST_UUID and r[2] == self.name for r in self.call("ListInstances")))

    def start_daemon(self):
        self.log = open(self.log_path, "a")
        self.daemon = subprocess.Popen([self.exe("dbus/hostwardend")], env=self.env,
                                       stdout=self.log, stderr=subprocess.STDOUT)
        self.procs.append(("hostwardend", self.daemon))
        wait_for("hostwardend on the bus", self._has_name, timeout=20)

    def _has_name(self):
        if self.daemon.poll() is not None:
            raise AssertionError(f"hostwardend exited with {self.daemon.returncode}: "
                                 f"{self.log_path.read_text()[-2000:]}")
        r = subprocess.run(["busctl", f"--address={self.address}", "--json=short", "call",
                            "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "NameHasOwner", "s", BUS_NAME],
                           capture_output=True, text=True)
        return r.returncode == 0 and json.loads(r.stdout)["data"][0]

    def teardown(self):
        for what, proc in reversed(self.procs):
            stop_pid(proc)
        self.procs = []
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon_log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    # --- calls ---------------------------------------------------------------------------

    def call(self, method, sig="", *args, path=NODE_PATH, iface=NODE, uid=None, timeout=30):
        """The method's reply, decoded from busctl's JSON: None, one value, or a tuple.
        Raises BusError (name None: busctl does not print it) on an error reply."""
        cmd = as_uid(uid) + [
            "busctl", f"--address={self.address}", "--json=short",
            f"--timeout={timeout}", "call", BUS_NAME, path, iface, method] + busctl_args(sig, args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5)
        if r.returncode != 0:
            raise BusError(None, r.stderr.strip())
        if not r.stdout.strip():
            return None
        data = json.loads(r.stdout)["data"]
        return data[0] if len(data) == 1 else tuple(data)

    def error(self, method, sig="", *args, path=NODE_PATH, iface=NODE, uid=None,
              interactive=False, timeout=30):
        """Calls and expects an error reply: (error name, message) via gdbus."""
        r = self.gdbus_call(method, sig, *args, path=path, iface=iface, uid=uid,
                            interactive=interactive, timeout=timeout)
        return self.parse_error(method, r)

    def gdbus_call(self, method, sig="", *args, path=NODE_PATH, iface=NODE, uid=None,
                   interactive=False, timeout=30, background=False):
        cmd = as_uid(uid) + [
            "gdbus", "call", "--address", self.address, "--dest", BUS_NAME,
            "--object-path", path, "--method", f"{iface}.{method}", "--timeout", str(timeout)]
        if interactive:
            cmd.append("--interactive")
        cmd += [gvariant(t, v) for t, v in zip(split_signature(sig), args)]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5)

    @staticmethod
    def parse_error(method, r):
        if r.returncode == 0:
            raise AssertionError(f"{method} succeeded, an error was expected: {r.stdout}")
        m = GDBUS_ERROR.search(r.stderr)
        if not m:
            raise AssertionError(f"{method}: no D-Bus error in {r.stderr!r}")
        # gdbus may add a hint about the signature on a line of its own
        return m.group(1), m.group(2).split("\n(According to introspection")[0].strip()

    def get(self, prop, path=NODE_PATH, iface=NODE):
        """(type, value) of a property."""
        r = subprocess.run(["busctl", f"--address={self.address}", "--json=short",
                            "get-property", BUS_NAME, path, iface, prop],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise BusError(None, r.stderr.strip())
        j = json.loads(r.stdout)
        return j["type"], j["data"]

    def props(self, path=NODE_PATH, iface=NODE):
        """Every property of an object in one GetAll: {name: (type, value)}."""
        d = self.call("GetAll", "s", iface, path=path, iface="org.freedesktop.DBus.Properties")
        return {k: (v["type"], v["data"]) for k, v in d.items()}

    def prop(self, prop, path=NODE_PATH, iface=NODE):
        return self.get(prop, path, iface)[1]

    def wait_property(self, prop, value, path=NODE_PATH, iface=NODE, timeout=10):
        return wait_for(f"{prop} = {value!r}",
                        lambda: self.prop(prop, path, iface) == value, timeout=timeout)

    def signals(self):
        return Signals(self.address)

    def seed(self, *args, stdin=None):
        subprocess.run([self.exe("tests/hw-seed-store"), str(self.tmp / "state")] +
                       list(args), input=stdin, text=True, check=True, capture_output=True)

    def heartbeat(self, node, every_ms=100):
        """A process keeping node's heartbeat moving (a live peer); end it with stop_pid()."""
        p = subprocess.Popen([self.exe("tests/hw-seed-store"), str(self.tmp / "state"),
                              "heartbeat", node, str(every_ms)])
        self.procs.append((f"heartbeat of {node}", p))  # ended at teardown at the latest
        return p

    def nodes(self):
        return {row[0]: row for row in self.call("ListNodes")}

    def instances(self):
        return {row[0]: row for row in self.call("ListInstances")}


def domain_xml(name, uuid, memory_kib=8192):
    """A domain for the test driver: no disks, so it defines and starts anywhere."""
    return (f"<domain type='test'><name>{name}</name><uuid>{uuid}</uuid>"
            f"<memory unit='KiB'>{memory_kib}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>\n")


# --- polkit --------------------------------------------------------------------------------

POLKITD = "/usr/lib/polkit-1/polkitd"

# the test's own rule: what it grants is decided by files the test writes (no reload to wait
# for), and a gate file lets a test hold polkit in the middle of an answer
TEST_RULE = """\
// tests/daemon: grants org.hostwarden.* when @DIR@/allow exists; waits for @DIR@/gate to go
// away first when @DIR@/hold exists (re-dispatch tests)
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.hostwarden.") != 0)
                return polkit.Result.NOT_HANDLED;
        try {
                polkit.spawn(["/bin/sh", "-c",
                              "test ! -e @DIR@/hold && exit 0; touch @DIR@/held; " +
                              "while test -e @DIR@/gate; do sleep 0.05; done"]);
        } catch (e) {
        }
        try {
                polkit.spawn(["/bin/sh", "-c", "test -e @DIR@/allow"]);
                return polkit.Result.YES;
        } catch (e) {
                return polkit.Result.NOT_HANDLED;
        }
});
"""


class Polkit:
    """polkitd on the Daemon's bus, in its own mount namespace (root only)."""

    def __init__(self, daemon):
        self.d = daemon
        self.dir = daemon.tmp / "polkit"
        self.ctl = self.dir / "ctl"  # allow / hold / gate / held
        self.proc = None

    def prepare(self):
        actions = self.dir / "actions"
        rules = self.dir / "rules.d"
        empty = self.dir / "empty-rules.d"
        for d in (actions, rules, empty, self.ctl):
            d.mkdir(parents=True)
        for d in (self.dir, self.ctl, actions, rules, empty):
            d.chmod(0o755)
        self.ctl.chmod(0o777)  # the gate script runs as polkitd
        src = pathlib.Path("/usr/share/polkit-1/actions")
        for f in src.glob("*.policy"):
            shutil.copy(f, actions)
        shutil.copy(self.d.source / "polkit" / "org.hostwarden.policy", actions)
        # the shipped rule (group hostwarden), and the test's
        shutil.copy(self.d.source / "polkit" / "50-hostwarden.rules", rules)
        (rules / "40-hostwarden-test.rules").write_text(
            TEST_RULE.replace("@DIR@", str(self.ctl)))
        # group hostwarden, as polkitd alone sees it (its /etc/group), with one member: an
        # existing system user other than root and nobody (dbus-daemon refuses a uid that
        # has no user), "daemon" where there is one
        users = [p for p in pwd.getpwall() if 0 < p.pw_uid < 65534]
        if not users:
            raise RuntimeError("no user other than root and nobody to be a member of group "
                               "hostwarden")
        member = next((p for p in users if p.pw_name == "daemon"), users[0])
        self.member_uid = member.pw_uid
        groups = pathlib.Path("/etc/group").read_text()
        gids = {int(line.split(":")[2]) for line in groups.splitlines() if line.count(":") >= 3}
        gid = next(g for g in range(64990, 60000, -1) if g not in gids)
        (self.dir / "group").write_text(groups + f"hostwarden:x:{gid}:{member.pw_name}\n")
        (self.dir / "group").chmod(0o644)
        for d in (actions, rules):
            for f in d.iterdir():
                f.chmod(0o644)
        return actions, rules, empty

    def start(self):
        actions, rules, empty = self.prepare()
        script = "\n".join([
            "set -e",
            f"mount --bind {actions} /usr/share/polkit-1/actions",
            f"mount --bind {rules} /etc/polkit-1/rules.d",
            f"mount --bind {empty} /usr/share/polkit-1/rules.d",
            f"mount --bind {self.dir / 'group'} /etc/group",
            f"exec {POLKITD} --no-debug",
        ])
        env = dict(self.d.env)
        # the mounts live as long as polkitd: it is the namespace's only process (exec)
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
            env=env, stdout=open(self.dir / "polkitd.log", "w"), stderr=subprocess.STDOUT)
        self.d.procs.append(("polkitd", self.proc))
        wait_for("polkitd on the bus", self._has_name, timeout=20)

    def _has_name(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"polkitd exited with {self.proc.returncode}: "
                                 f"{(self.dir / 'polkitd.log').read_text()}")
        r = subprocess.run(["busctl", f"--address={self.d.address}", "--json=short", "call",
                            "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "NameHasOwner", "s",
                            "org.freedesktop.PolicyKit1"], capture_output=True, text=True)
        return r.returncode == 0 and json.loads(r.stdout)["data"][0]

    def stop(self):
        stop_pid(self.proc)

    def allow(self, yes=True):
        f = self.ctl / "allow"
        if yes:
            f.touch()
        else:
            f.unlink(missing_ok=True)


def polkit_available():
    """Why the polkit tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root: polkitd must start as root (it drops to user polkitd)"
    if not os.access(POLKITD, os.X_OK):
        return f"{POLKITD} is missing (Debian package polkitd)"
    return None
