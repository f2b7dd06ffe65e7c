"""The daemon suite's harness: the real hostwardend on a private bus (stdlib only).

A `Daemon` owns a temporary tree: a dbus-daemon of type system with its socket there,
hostwarden's conf/run/lib/state directories, a dir store made with `hostwardenctl
init-cluster`, and hostwardend against libvirt's test:///default driver with the firewall off.
A `Polkit` runs a real polkitd on that bus in a private mount namespace whose
/usr/share/polkit-1/actions, rules directories and /etc/group are temporary copies.
Everything started is ended by PID, in reverse order, on every exit path.

Calls go through dbusclient.py (the wire protocol, stdlib only): typed values and error names,
from this process as root or from a forked child with another user's ids.
"""

import os
import pathlib
import pickle
import pwd
import queue
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from dbusclient import (ERROR, F_DESTINATION, F_ERROR_NAME, F_INTERFACE, F_MEMBER, F_PATH,
                        F_REPLY_SERIAL, METHOD_CALL, SIGNAL, Connection, DBusError)

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
PROPERTIES = "org.freedesktop.DBus.Properties"


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


# --- calls as another user ---------------------------------------------------------------

def _user(uid):
    """(uid, gid) of "nobody", a user name or a uid."""
    pw = pwd.getpwuid(uid) if isinstance(uid, int) else pwd.getpwnam(uid)
    return pw.pw_uid, pw.pw_gid


def _fork_as(uid, fn):
    """Runs fn() in a child process with uid's ids and no supplementary groups; returns a
    pipe's read end, which gets the pickled ("ok", value) | ("error", name, message) |
    ("exception", text), and the child's pid."""
    u, g = _user(uid)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no threads, only a socket of its own
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(g)
            os.setuid(u)
            try:
                res = ("ok", fn())
            except DBusError as e:
                res = ("error", e.name, e.message)
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                res = ("exception", repr(e))
            with os.fdopen(w, "wb") as f:
                f.write(pickle.dumps(res))
        finally:
            os._exit(0)
    os.close(w)
    return r, pid


class Pending:
    """A call running in a child process (Daemon.call_async)."""

    def __init__(self, fd, pid):
        self.fd, self.pid = fd, pid

    def result(self, timeout=30):
        """The reply's value; DBusError on an error reply."""
        deadline = time.monotonic() + timeout
        data = b""
        with os.fdopen(self.fd, "rb") as f:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([f], [], [], left)[0]:
                    self.kill()
                    raise AssertionError(f"no reply within {timeout}s")
                chunk = os.read(f.fileno(), 65536)
                if not chunk:
                    break
                data += chunk
        os.waitpid(self.pid, 0)
        self.pid = None
        res = pickle.loads(data)
        if res[0] == "error":
            raise DBusError(res[1], res[2])
        if res[0] == "exception":
            raise AssertionError(f"the call failed in the child: {res[1]}")
        return res[1]

    def kill(self):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None


def _unwrap(body):
    return None if not body else body[0] if len(body) == 1 else tuple(body)


class Signals:
    """The daemon's signals, from a connection of their own; matched with deadlines."""

    def __init__(self, address):
        self.conn = Connection(address)
        # once AddMatch is answered, every later signal reaches this connection
        self.conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "AddMatch", "s", [f"type='signal',sender='{BUS_NAME}'"])
        self.conn.sock.settimeout(None)
        self.queue = queue.Queue()
        self.seen = []
        for m in self.conn.pending:
            self.queue.put(m)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                m = self.conn.receive()
                if m.type == SIGNAL:
                    self.queue.put(m)
        except (OSError, ConnectionError, ValueError):
            pass  # closed

    def wait(self, member, args=None, timeout=10):
        """The body of the first signal member (since the watch began) whose arguments equal
        args (a list) or satisfy it (a callable); AssertionError after timeout."""
        def match(m):
            if m.member != member:
                return False
            if args is None:
                return True
            return args(m.body) if callable(args) else m.body == args

        for m in self.seen:
            if match(m):
                return m.body
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no signal {member} {args!r} within {timeout}s; seen: "
                                     f"{[(m.member, m.body) for m in self.seen]}")
            try:
                m = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(m)
            if match(m):
                return m.body

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

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
        # this node's libvirt: test:///default, or test://FILE with domains of the test's own
        self.libvirt_uri = "test:///default"
        self.procs = []  # (what, Popen) in start order
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="hw-daemon-"))
        # nobody (polkit tests) must reach the bus socket and the polkit gate files
        self.tmp.chmod(0o755)
        self.sock = self.tmp / "bus.sock"
        self.address = f"unix:path={self.sock}"
        self.log_path = self.tmp / "hostwardend.log"
        self.daemon = None
        self._conn = None

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
            "HOSTWARDEN_LIBVIRT_URI": self.libvirt_uri,
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
                "[migration]\ntls = no\n"
                # otherwise it writes the HOST's node_exporter textfile, where one exists
                "[metrics]\ntextfile =\n")
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
            # reconciliation records test:///default's domain as this node's (ListDomains:
            # root's calls read the records as they are now, ListInstances' may be 1 s old)
            wait_for("the test domain's record", lambda: any(
                r[0] == TEST_UUID and r[3] == self.name for r in self.call("ListDomains")))

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
        return self.has_owner(BUS_NAME)

    def has_owner(self, name):
        return self.conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "NameHasOwner", "s", [name])[0]

    def teardown(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for what, proc in reversed(self.procs):
            stop_pid(proc)
            if proc.stdout:
                proc.stdout.close()
        self.procs = []
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon_log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    # --- calls ---------------------------------------------------------------------------

    @property
    def conn(self):
        if self._conn is None:
            self._conn = Connection(self.address)
        return self._conn

    def _call_fn(self, method, sig, args, path, iface, interactive, address=None):
        address = address or self.address

        def fn(conn=None):
            c = conn or Connection(address)
            return _unwrap(c.call(BUS_NAME, path, iface, method, sig, list(args),
                                  interactive=interactive))
        return fn

    def call(self, method, sig="", *args, path=NODE_PATH, iface=NODE, uid=None,
             interactive=False):
        """The reply: None, one value, or a tuple. DBusError on an error reply. uid: call as
        that user ("nobody", a name or a number) from a child process; None: as root."""
        fn = self._call_fn(method, sig, args, path, iface, interactive)
        if uid is None:
            return fn(self.conn)
        return Pending(*_fork_as(uid, fn)).result()

    def call_async(self, method, sig="", *args, path=NODE_PATH, iface=NODE, uid="nobody",
                   interactive=False):
        """The call, made by uid from a child process; .result() waits for the reply."""
        return Pending(*_fork_as(uid, self._call_fn(method, sig, args, path, iface,
                                                    interactive)))

    def pipelined(self, method, n, uid="nobody", progress=None):
        """n calls of method (no arguments) sent at once on one connection of uid's, before
        any answer is read; a Pending whose result is the n answers in order: None for a
        method return, else the error's (name, message). progress: a file that gets the
        number of answers so far after each one."""
        address = self.address

        def fn():
            c = Connection(address)
            fields = {F_PATH: NODE_PATH, F_INTERFACE: NODE, F_MEMBER: method,
                      F_DESTINATION: BUS_NAME}
            serials = [c.send(METHOD_CALL, fields) for _ in range(n)]
            answers = {}
            while len(answers) < n:
                m = c.receive()
                rs = m.fields.get(F_REPLY_SERIAL)
                if rs in serials:
                    answers[rs] = (None if m.type != ERROR else
                                   (m.fields.get(F_ERROR_NAME), m.body[0] if m.body else ""))
                    if progress:
                        pathlib.Path(progress).write_text(str(len(answers)))
            return [answers[s] for s in serials]
        return Pending(*_fork_as(uid, fn))

    def error(self, method, sig="", *args, **kw):
        """Calls and expects an error reply: (error name, message)."""
        try:
            r = self.call(method, sig, *args, **kw)
        except DBusError as e:
            return e.name, e.message
        raise AssertionError(f"{method} succeeded, an error was expected: {r!r}")

    def get(self, prop, path=NODE_PATH, iface=NODE):
        """(type, value) of a property."""
        v = self.call("Get", "ss", iface, prop, path=path, iface=PROPERTIES)
        return v.signature, v.value

    def props(self, path=NODE_PATH, iface=NODE):
        """Every property of an object in one GetAll: {name: (type, value)}."""
        d = self.call("GetAll", "s", iface, path=path, iface=PROPERTIES)
        return {k: (v.signature, v.value) for k, v in d.items()}

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
// tests/daemon: grants org.hostwarden.* while @DIR@/allow exists; while @DIR@/hold exists, it
// first says so (@DIR@/held) and waits for @DIR@/gate to go away (re-dispatch tests)
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.hostwarden.") != 0)
                return polkit.Result.NOT_HANDLED;
        try {
                polkit.spawn(["/bin/sh", "-c",
                              "if test -e @DIR@/hold; then touch @DIR@/held; " +
                              "while test -e @DIR@/gate; do sleep 0.05; done; fi; " +
                              "test -e @DIR@/allow"]);
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
        with open(self.dir / "polkitd.log", "w") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        self.d.procs.append(("polkitd", self.proc))
        wait_for("polkitd on the bus", self._has_name, timeout=20)

    def _has_name(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"polkitd exited with {self.proc.returncode}: "
                                 f"{(self.dir / 'polkitd.log').read_text()}")
        return self.d.has_owner("org.freedesktop.PolicyKit1")

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
