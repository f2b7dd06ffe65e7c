"""The Cockpit page in headless Chromium against cockpit-ws on a simulated node (issue 24,
item 1): an operator of group hostwarden sees the nodes and this node's domains, starts a
live migration from the page, sees its progress bar move and the guest land on the peer; a
user without the group sees polkit's refusal, and nothing changes. Every view is saved as a
screenshot (conftest.SCREENSHOTS) for a reviewer."""

from __future__ import annotations

import json
import uuid as uuidlib

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

import hwcluster
import hwinstall
from conftest import KERNEL
from hwevac import wait_for

GUEST = "web1"


@pytest.fixture(scope="module")
def guest(cluster):
    """A guest on node1 that dirties its memory all the time: at 10 MiB/s its migration
    never converges by itself, so the page has seconds to show progress, and Force complete
    is what lands it."""
    node1 = cluster.node(1)
    hwcluster.define_and_start(node1, hwcluster.domain_xml(GUEST, uuid=str(uuidlib.uuid4()),
                                                           kernel=KERNEL))
    yield GUEST
    for n in cluster.nodes:
        n.virsh("destroy", GUEST, check=False)
        n.virsh("undefine", GUEST, check=False)


def domstate(node, name):
    proc = node.virsh("domstate", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def node_state(node) -> str:
    out = node.run(hwinstall.BUSCTL + ["--json=short", "get-property", *hwinstall.NODE_API,
                                       "State"]).stdout
    return json.loads(out)["data"]


def test_an_operator_sees_the_nodes_and_this_nodes_domains(page, passwords, guest, screenshot):
    page.login("warden", passwords["warden"])
    # through the shell first: the manifest puts the page in Cockpit's menu
    page.driver.get(page.url + "/hostwarden")
    frame = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR,
                                                "iframe[name='cockpit1:localhost/hostwarden']"),
                      "the shell has no frame for the hostwarden page")[0]
    page.driver.switch_to.frame(frame)
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                            "#nodes-table tr[data-node] td.hw-state-up")) == 2,
              "the page does not show both nodes up")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR,
                                        f"#domains-table tr[data-domain='{GUEST}']"),
              f"the page does not list {GUEST}")
    assert page.text("#node-title") == "Hostwarden on node1"
    row = page.text(f"#domains-table tr[data-domain='{GUEST}']")
    assert "running" in row and "node1" in row, row
    page.driver.switch_to.default_content()
    screenshot("1-nodes-in-the-shell")


def test_a_migration_started_from_the_page_moves_and_lands_on_the_peer(
        page, passwords, guest, cluster, screenshot):
    node1, node2 = cluster.nodes
    page.login("warden", passwords["warden"])
    page.open()
    page.tab("actions")
    page.wait(lambda d: GUEST in [o.get_attribute("value") for o in
                                  Select(d.find_element(By.ID, "migrate-domain")).options])
    Select(page.find("#migrate-domain")).select_by_value(GUEST)
    Select(page.find("#migrate-dest")).select_by_value("node2")
    # leaving the field is its change: the page checks the migration again; a bandwidth
    # hostwardend would not take is said so, and Migrate stays disabled
    page.find("#migrate-bandwidth").send_keys("-5", Keys.TAB)
    page.wait(lambda d: "Bandwidth: a whole number" in d.find_element(By.ID,
                                                                      "migrate-findings").text,
              "a negative bandwidth is not refused: " + page.text("#migrate-findings"))
    assert not page.find("#migrate-button").is_enabled()
    page.find("#migrate-bandwidth").clear()
    page.find("#migrate-bandwidth").send_keys("10", Keys.TAB)
    # CheckMigration's findings come before the button is enabled
    page.wait(lambda d: d.find_element(By.ID, "migrate-button").is_enabled(),
              "Migrate stays disabled: " + page.text("#migrate-findings"))
    assert "Nothing stands in the way of web1 to node2" in page.text("#migrate-findings")
    screenshot("2-actions-migrate-checked")
    page.find("#migrate-button").click()

    row = f"#migrations-table tr[data-domain='{GUEST}'][data-state='running']"
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, row), "no running migration shown")

    def progress() -> int:
        return int(page.find(row + " progress").get_attribute("value"))
    first = page.wait(lambda d: progress() or None, "the progress bar stays at 0")
    page.wait(lambda d: progress() > first, f"the progress bar stays at {first}")
    samples = page.find("#remaining-chart polyline").get_attribute("data-samples")
    assert int(samples) >= 2, f"the chart of the remaining memory has {samples} point(s)"
    screenshot("3-migration-in-progress")

    page.find(row + " button.hw-force-complete").click()
    done = f"#migrations-table tr[data-domain='{GUEST}'][data-state='completed']"
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, done), "the migration did not complete",
              timeout=90)
    assert "100 %" in page.text(done)
    assert "ms" in page.find(done).find_elements(By.CSS_SELECTOR, "td")[5].text
    screenshot("4-migration-completed")
    assert wait_for(lambda: domstate(node2, GUEST) == "running", 20), domstate(node2, GUEST)
    assert domstate(node1, GUEST) is None


def start_migration(page, domain: str) -> str:
    """From the Actions view, at 10 MiB/s to node2; the CSS selector of its running row."""
    page.tab("actions")
    page.wait(lambda d: domain in [o.get_attribute("value") for o in
                                   Select(d.find_element(By.ID, "migrate-domain")).options])
    Select(page.find("#migrate-domain")).select_by_value(domain)
    Select(page.find("#migrate-dest")).select_by_value("node2")
    page.find("#migrate-bandwidth").clear()
    page.find("#migrate-bandwidth").send_keys("10", Keys.TAB)
    page.wait(lambda d: d.find_element(By.ID, "migrate-button").is_enabled(),
              "Migrate stays disabled: " + page.text("#migrate-findings"))
    page.find("#migrate-button").click()
    row = f"#migrations-table tr[data-domain='{domain}'][data-state='running']"
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, row), f"no running migration of {domain}")
    return row


def test_abort_from_the_page_keeps_the_guest_on_its_node(page, passwords, cluster):
    node1, node2 = cluster.nodes
    name = "web2"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()),
                                                           kernel=KERNEL))
    try:
        page.login("warden", passwords["warden"])
        page.open()
        row = start_migration(page, name)
        page.find(row + " button.hw-abort").click()
        aborted = f"#migrations-table tr[data-domain='{name}'][data-state='aborted']"
        page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, aborted), "the migration went on")
        assert domstate(node1, name) == "running"
        assert domstate(node2, name) is None
    finally:
        for n in cluster.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_a_user_without_the_group_sees_the_refusal(page, passwords, cluster, screenshot):
    node1 = cluster.node(1)
    page.login("visitor", passwords["visitor"])
    page.open()
    page.tab("actions")
    page.find("#disable-reason").send_keys("a visitor tries")
    page.find("#disable-button").click()
    page.wait(lambda d: "Refused by polkit" in d.find_element(By.ID, "action-status").text,
              "no refusal shown: " + page.text("#action-status"))
    status = page.text("#action-status")
    assert "org.hostwarden.manage-node" in status, status
    assert "hw-alert-error" in page.find("#action-status").get_attribute("class")
    screenshot("5-refused-for-a-user-without-the-group")
    # the page still works: reads need no authorization
    page.tab("nodes")
    assert len(page.finds("#nodes-table tr[data-node]")) == 2
    assert node_state(node1) == "enabled"


def test_a_peer_whose_heartbeat_stops_is_shown_down_with_what_to_do(page, passwords, cluster,
                                                                     screenshot):
    """node2's hostwardend stops: within [cluster] down_after (3 s here) node1 counts node2
    down, and the page says what an operator must do first (it owns web1 now, and is not
    fenced), as `hostwardenctl overview` does."""
    node2 = cluster.node(2)
    page.login("warden", passwords["warden"])
    page.open()
    node2.systemctl("stop", "hostwardend.service")
    try:
        page.wait(lambda d: d.find_elements(By.CSS_SELECTOR,
                                            "#nodes-table tr[data-node='node2'] td.hw-state-down"),
                  "node2 is not shown down")
        page.wait(lambda d: "node2 is down and not fenced" in d.find_element(
            By.ID, "cluster-advice").text, "no advice for node2")
        assert "Needs an operator" in page.text("#cluster-summary")
        assert "not fenced" in page.text("#nodes-table tr[data-node='node2']")
        screenshot("6-a-peer-down-and-what-to-do")
    finally:
        node2.systemctl("start", "hostwardend.service")


def test_a_misspelt_key_is_shown_with_the_closest_known_name(page, passwords, cluster,
                                                              screenshot):
    """An operator misspells max_concurrent in a drop-in and reloads: the page lists the
    warning of that load, with the key it most likely meant (issue 24, item 3); once the
    drop-in is fixed and reloaded, the list is empty again."""
    node1 = cluster.node(1)
    dropin = "/etc/hostwarden/hostwarden.conf.d/90-typo.conf"
    page.login("warden", passwords["warden"])
    page.open()
    assert not page.finds("#config-warnings li")
    node1.write_file(dropin, "[migration]\nmax_concurent = 2\n")
    try:
        node1.run(["hostwardenctl", "reload"])
        page.wait(lambda d: "did you mean 'max_concurrent'?" in d.find_element(
            By.ID, "config-warnings").text, "the page shows no warning of the misspelt key")
        assert "90-typo.conf" in page.text("#config-warnings"), page.text("#config-warnings")
        screenshot("7-a-misspelt-key")
    finally:
        node1.run(["rm", "-f", dropin])
        node1.run(["hostwardenctl", "reload"])
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#config-warnings li"),
              "the warning stays after the fix")
