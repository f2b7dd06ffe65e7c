"""hostwardenctl in a real terminal (issue 8): `migrations --watch` redraws a live table of
migrations and `overview --watch` the nodes at a glance, checked by what tmux shows on its
screen (capture-pane). tmux runs inside the simulated node, so hostwardenctl talks to that
node's hostwardend over its own system bus."""

from __future__ import annotations

import re
import time
import uuid as uuidlib

import pytest

import dirtyguest
import hwcluster
import hwinstall
from hwevac import ctl, record, wait_for

MIGRATION = """[migration]
downtime_delay = 1s
completion_timeout = 120s
"""
KERNEL = "/var/lib/nova/instances/dirty.kernel"
SOCKET = "/run/hwtest-tmux.sock"
WIDTH, HEIGHT = 120, 30
ESC = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """One tmux session inside NODE running COMMAND in a WIDTH x HEIGHT window. When the
    command ends, the pane shows its exit status and stays."""

    def __init__(self, node, command: str, name: str):
        self.node, self.name = node, name
        # Without sessions the tmux server exits, not at once: a new session asked of it
        # meanwhile fails with "server exited unexpectedly" (seen in CI after the previous
        # test closed its terminal). Asked again, a new server starts.
        deadline = time.monotonic() + 10
        while True:
            proc = self.tmux("new-session", "-d", "-s", name, "-x", str(WIDTH), "-y",
                             str(HEIGHT), f"{command}; echo \"exit status $?\"; sleep 3600",
                             check=False)
            if proc.returncode == 0:
                break
            assert "server exited unexpectedly" in proc.stderr and \
                time.monotonic() < deadline, proc.stderr
            time.sleep(0.1)

    def tmux(self, *args: str, check: bool = True):
        return self.node.run(["tmux", "-S", SOCKET, "-f", "/dev/null", *args], check=check)

    def screen(self, escapes: bool = False) -> str:
        """What the window shows; wrapped lines joined back (-J), so a line wider than the
        window shows as one."""
        args = ["capture-pane", "-p", "-J", "-t", self.name] + (["-e"] if escapes else [])
        return self.tmux(*args).stdout

    def wait(self, predicate, timeout: float = 30.0) -> str:
        """The screen once PREDICATE(screen) holds; fails with the screen otherwise."""
        shown = wait_for(lambda: (lambda s: s if predicate(s) else None)(self.screen()),
                         timeout=timeout, interval=0.25)
        assert shown, f"{self.name}: not shown within {timeout}s:\n{self.screen()}"
        return shown

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def history(self) -> int:
        """Lines scrolled off the top: a view redrawn in place never scrolls."""
        return int(self.tmux("display-message", "-p", "-t", self.name,
                             "#{history_size}").stdout)

    def settled_history(self, timeout: float = 15.0) -> int:
        """history() once tmux has stopped moving lines into it (it rewraps them into the
        history when the window shrinks, not always at once)."""
        last, deadline = self.history(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.history()
            if now == last:
                return now
            last = now
        raise AssertionError(f"{self.name}: history still growing: {last}")

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def cursor_visible(self) -> bool:
        return self.tmux("display-message", "-p", "-t", self.name,
                         "#{cursor_flag}").stdout.strip() == "1"

    def close(self) -> None:
        self.tmux("kill-session", "-t", self.name, check=False)


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i, extra=MIGRATION) for i in (1, 2)}) as cluster:
        cluster.node(1).write_file(KERNEL, dirtyguest.kernel())
        yield cluster
        cluster.node(1).run(["tmux", "-S", SOCKET, "kill-server"], check=False)


@pytest.fixture
def terminal(nodes):
    opened = []

    def open_(command: str, node=None) -> Terminal:
        t = Terminal(node or nodes.node(1), command, f"t{len(opened)}")
        opened.append(t)
        return t
    yield open_
    for t in opened:
        t.close()


def start_guest(node, name, dirty=False) -> str:
    uuid = str(uuidlib.uuid4())
    xml = hwcluster.domain_xml(name, uuid=uuid, memory_mib=64, kernel=KERNEL if dirty else None)
    hwcluster.define_and_start(node, xml)
    assert wait_for(lambda: record(node, uuid).get("owner") == node.name), record(node, uuid)
    return uuid


def stop_daemon(node) -> None:
    """hostwardend stopped, and not started again by D-Bus activation meanwhile."""
    node.systemctl("mask", "--runtime", "hostwardend.service")
    node.systemctl("stop", "hostwardend.service")


def start_daemon(node) -> None:
    node.systemctl("unmask", "--runtime", "hostwardend.service")
    node.systemctl("start", "hostwardend.service")


def row(screen: str, word: str) -> str:
    lines = [line for line in screen.splitlines() if word in line]
    assert lines, f"no line with {word!r}:\n{screen}"
    return lines[0]


def colored(screen: str, word: str) -> set[str]:
    """The SGR codes in force where WORD is first shown (tmux may split "1;31" into two)."""
    m = re.search(r"((?:\x1b\[[0-9;]*m)+) *" + re.escape(word), screen)
    assert m, f"{word!r} has no colour: {screen!r}"
    return set(";".join(re.findall(r"\x1b\[([0-9;]*)m", m.group(1))).split(";"))


def memory_done(screen: str, domain: str) -> float:
    m = re.search(r"(\d+\.\d)/\d+\.\d", row(screen, domain))
    assert m, row(screen, domain)
    return float(m.group(1))


def test_migrations_watch_is_a_live_table(nodes, terminal):
    node1, node2 = nodes.nodes
    term = terminal("hostwardenctl migrations --watch")
    term.wait(lambda s: "No migration started on node1" in s and "Migrations from node1" in s)

    # a guest that dirties its memory faster than 10 MiB/s: it does not converge by itself
    start_guest(node1, "tty-dirty", dirty=True)
    started = ctl(node1, "migrate", "--bandwidth=10", "tty-dirty", "node2").stdout
    mig_id = started.split()[-1]
    shown = term.wait(lambda s: re.search(r"tty-dirty +node2 +running +\[#*\.*\] +\d+%", s))
    assert "1 in flight, 0 queued, 0 finished" in shown, shown
    for header in ("ID", "DOMAIN", "TO", "STATE", "PROGRESS", "MEMORY MiB", "SPEED", "ETA",
                   "DOWNTIME", "NOTE"):
        assert header in row(shown, "PROGRESS"), shown
    assert mig_id in row(shown, "tty-dirty")
    # it moves: memory sent grows, a speed and the memory passes show up, without a new
    # listing being asked for
    shown = term.wait(lambda s: re.search(r"\d+\.\d/\d+\.\d", row(s, "tty-dirty")))
    first = memory_done(shown, "tty-dirty")
    # the columns in order: progress, memory sent/total, speed measured between frames, time
    # left, the current max downtime, the memory pass
    live = re.compile(r"running +\[[#.]{10}\] +\d+% +[\d.]+/[\d.]+ +[\d.]+ MiB/s +\S+ +max \d+ ms"
                      r" +pass \d+")
    later = term.wait(lambda s: live.search(row(s, "tty-dirty"))
                      and memory_done(s, "tty-dirty") > first)
    assert all(len(line) <= WIDTH for line in later.splitlines()), later
    # redrawn in place: one title, nothing ever scrolled off the screen
    assert later.count("Migrations from node1") == 1, later
    assert term.history() == 0
    # colour on a terminal: the state is cyan while running
    assert "36" in colored(term.screen(escapes=True), "running")

    # a narrow window: redrawn to fit, no line wraps, the row still says what and where
    term.resize(64, 20)
    narrow = term.wait(lambda s: all(len(line) <= 64 for line in s.splitlines())
                       and "tty-dirty" in s and "NOTE" not in s)
    assert re.search(r"tty-dirty +node2 +running", narrow), narrow
    term.resize(WIDTH, HEIGHT)
    term.wait(lambda s: "NOTE" in s)

    # the end shows as it happens: aborted, in red, with the reason; nothing in flight
    ctl(node1, "migration", "abort", mig_id)
    ended = term.wait(lambda s: re.search(r"tty-dirty +node2 +aborted", s)
                      and "0 in flight, 0 queued, 1 finished" in s)
    assert "Aborted by an operator" in row(ended, "tty-dirty"), ended
    assert "31" in colored(term.screen(escapes=True), "aborted")

    # a second migration is added at the top, the finished one stays below it
    start_guest(node1, "tty-idle")
    ctl(node1, "migrate", "tty-idle", "node2")
    both = term.wait(lambda s: re.search(r"tty-idle +node2 +completed +\[#{10}\] +100%", s))
    assert both.index("tty-idle") < both.index("tty-dirty"), both
    assert re.search(r"\d+ ms +took \d+\.\ds", row(both, "tty-idle")), both
    assert "0 in flight, 0 queued, 2 finished" in both, both

    # Ctrl-C: exit status 0, the last frame stays, the cursor is back
    assert not term.cursor_visible()
    term.send("C-c")
    done = term.wait(lambda s: "exit status 0" in s)
    assert "tty-idle" in done and "tty-dirty" in done, done
    assert term.cursor_visible()
    for name in ("tty-dirty", "tty-idle"):
        for n in (node1, node2):
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_overview_shows_the_nodes_and_what_to_do(nodes, terminal):
    node1, node2 = nodes.nodes
    start_guest(node2, "tty-on-node2")
    term = terminal("hostwardenctl overview --watch")
    # (and the previous test's guests, undefined, no longer counted: their records are marked
    # deleted by node1's reconciliation a moment later, which a fast machine outran)
    shown = term.wait(lambda s: re.search(r"node2 +10\.77\.0\.12 +up +unknown +1$", s, re.M)
                      and "; 1 instance(s)." in s)
    assert re.search(r"node1 +10\.77\.0\.11 +up +unknown +\d+ +this node$", shown, re.M), shown
    assert "hostwarden on node1: enabled, firewall" in shown, shown
    assert "2 node(s): 2 up, 0 disabled, 0 down; 1 instance(s)." in shown, shown
    assert "node1 runs 0 domain(s)." in shown, shown
    assert "Migrations from node1: 0 in flight" in shown, shown

    # disabled, with the operator's reason (whatever it holds), as soon as node2 says so
    ctl(node2, "disable", "kernel upgrade; back at 14:00")
    shown = term.wait(lambda s: re.search(r"node2 .* disabled .* kernel upgrade; back at 14:00$",
                                          s, re.M))
    assert "1 up, 1 disabled, 0 down" in shown, shown

    # hostwardend gone on node2: down after down_after, red, and what to do about it, in
    # full under the table and named in the summary at the top
    stop_daemon(node2)
    try:
        shown = term.wait(lambda s: re.search(r"node2 .* down .* \d+s ago +not fenced$", s, re.M))
        assert "1 up, 0 disabled, 1 down; 1 instance(s). Needs an operator: node2." in shown, \
            shown
        assert ("node2 is down and not fenced: hostwardenctl fence node2 off\n"
                "  (or force-down node2 if you know it is off), then evacuate it.") in shown, \
            shown
        assert colored(term.screen(escapes=True), "down") >= {"1", "31"}

        # an 80x24 terminal: every line fits, the summary with the alarm stays on top, the
        # frame is redrawn in place (tmux itself rewraps the old lines into its history when
        # the window shrinks, not always at once: once that settled, nothing more may
        # scroll)
        term.resize(80, 24)
        narrow = term.wait(lambda s: all(len(line) <= 80 for line in s.splitlines())
                           and "Needs an operator: node2" in s.splitlines()[1])
        scrolled = term.settled_history()
        time.sleep(2.5)  # a few frames
        assert term.screen().count("hostwarden on node1") == 1, term.screen()
        assert term.history() == scrolled
        assert "fence node2 off" in narrow, narrow
        term.resize(WIDTH, HEIGHT)

        # declared down by the admin: the next step is the evacuation of its instance
        ctl(node1, "force-down", "node2")
        shown = term.wait(lambda s: re.search(r"node2 .* forced-down .* 1 .* to evacuate$", s,
                                              re.M))
        assert ("node2 is forced down with 1 instance(s): hostwardenctl evacuate --from node2\n"
                "  on the node that should take them.") in shown, shown
        ctl(node1, "force-up", "node2")
    finally:
        start_daemon(node2)
    term.wait(lambda s: re.search(r"node2 .* disabled .* kernel upgrade; back at 14:00$", s,
                                  re.M))
    ctl(node2, "enable")
    shown = term.wait(lambda s: "2 node(s): 2 up, 0 disabled, 0 down; 1 instance(s)." in s)
    assert "Needs an operator" not in shown and "not fenced" not in shown, shown
    term.send("C-c")
    term.wait(lambda s: "exit status 0" in s)

    # not on a terminal: the same overview once, plain text, no escape sequence, no line
    # ending in a blank
    plain = ctl(node1, "overview").stdout
    assert not ESC.search(plain), repr(plain)
    assert not [line for line in plain.splitlines() if line.endswith(" ")], repr(plain)
    assert re.search(r"node2 +10\.77\.0\.12 +up +unknown +1$", plain, re.M), plain
    assert ctl(node1, "--json", "overview", check=False).returncode == 1
    assert ctl(node1, "--watch", "nodes", check=False).returncode == 1
    # the instance records it counts
    listed = ctl(node1, "instances").stdout
    assert re.search(r"tty-on-node2 +node2 ", listed), listed
    node2.virsh("destroy", "tty-on-node2", check=False)
    node2.virsh("undefine", "tty-on-node2", check=False)


def test_watch_without_a_terminal_is_a_log_woken_by_hostwardend(nodes, terminal):
    """Output to a file: frames one after another, each with its time, no escape sequence;
    a migration shows up in the next frame (at most 2 s after the last), not at the 5 s
    timer; SIGTERM ends it with status 0."""
    node1 = nodes.node(1)
    log, pidfile = "/run/hwtest-watch.log", "/run/hwtest-watch.pid"
    term = terminal(f"hostwardenctl migrations --watch > {log} & echo $! > {pidfile}; "
                    "wait $!")
    # the shell in tmux creates the file when it gets to it (late on a loaded machine)
    assert wait_for(lambda: "Migrations from node1" in node1.run(["cat", log],
                                                                  check=False).stdout,
                    timeout=10), node1.run(["cat", log], check=False)
    first = time.monotonic()
    start_guest(node1, "tty-logged")
    mig_id = ctl(node1, "migrate", "tty-logged", "node2").stdout.split()[-1]
    assert wait_for(lambda: mig_id in node1.read_file(log), timeout=10, interval=0.1)
    assert time.monotonic() - first < 4.5, node1.read_file(log)
    node1.run(["sh", "-c", f"kill -TERM $(cat {pidfile})"])
    term.wait(lambda s: "exit status 0" in s)
    text = node1.read_file(log)
    assert not ESC.search(text), repr(text)
    titles = [line for line in text.splitlines() if line.startswith("Migrations from node1")]
    assert len(titles) >= 2, text
    assert all(re.search(r": \d+ in flight, .*  \d\d:\d\d:\d\d$", t) for t in titles), text
    for n in nodes.nodes:
        n.virsh("destroy", "tty-logged", check=False)
        n.virsh("undefine", "tty-logged", check=False)


def test_watch_says_when_hostwardend_does_not_answer_and_does_not_start_it(nodes, terminal):
    node1 = nodes.node(1)
    term = terminal("hostwardenctl migrations --watch")
    term.wait(lambda s: "Migrations from node1" in s)
    # stopped by the operator: the watch says so and does not bring it back by D-Bus
    # activation (the bus would start hostwardend.service for a plain call)
    node1.systemctl("stop", "hostwardend.service")
    try:
        shown = term.wait(lambda s: "hostwardend does not answer" in s)
        assert "Trying again every second." in shown, shown
        time.sleep(3)
        assert not node1.unit_active("hostwardend.service")
    finally:
        node1.systemctl("start", "hostwardend.service")
    term.wait(lambda s: "Migrations from node1" in s)
    term.send("C-c")
    term.wait(lambda s: "exit status 0" in s)
    assert term.cursor_visible()
