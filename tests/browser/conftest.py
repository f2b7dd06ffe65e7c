"""Fixtures of the browser suite: a 2-node cluster with hostwardend, cockpit-ws on node1
(its cockpit.socket, the packages of the host seen through the node's overlay), two users
there, and headless Chromium (Debian's, through chromedriver) reaching node1's cockpit
through netnsforward. Screenshots go to <build>/meson-logs/browser-screenshots/.

Users on node1: warden (group hostwarden: the shipped polkit rules allow it everything)
and visitor (no such group: polkit refuses it every action)."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HW_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD_DIR = os.environ.get("HW_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "cluster"))
sys.path.insert(0, HERE)

import dirtyguest  # noqa: E402
import hwcluster  # noqa: E402
import hwinstall  # noqa: E402
from netnsforward import Forwarder  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import (NoSuchElementException,  # noqa: E402
                                        StaleElementReferenceException, TimeoutException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOTS = os.path.join(BUILD_DIR, "meson-logs", "browser-screenshots")
KERNEL = "/var/lib/nova/instances/dirty.kernel"  # shared: the destination needs it too
# the page and the session as an operator gets them: cockpit-ws over plain HTTP only because
# the browser reaches it through a forwarder on loopback (no certificate to trust there)
COCKPIT_CONF = "[WebService]\nAllowUnencrypted = true\n"
USERS = {"warden": "hostwarden", "visitor": None}


@pytest.fixture(scope="session")
def cluster():
    problems = hwcluster.check_environment()
    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/lib/cockpit/cockpit-ws"):
        if not os.path.exists(path):
            problems.append(f"{path} is missing (scripts/deps installs it)")
    if problems:
        pytest.fail("the browser suite cannot run here:\n  " + "\n  ".join(problems),
                    pytrace=False)
    hwcluster.cleanup_stale()
    configs = {i: hwinstall.node_config(i) for i in (1, 2)}
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service", "hostwarden-firewall.service", "cockpit.socket",
                   # removes /run/nologin, which keeps every user but root out
                   "systemd-user-sessions.service"),
            configs=configs, files={1: {"/etc/cockpit/cockpit.conf": COCKPIT_CONF}}) as c:
        c.node(1).write_file(KERNEL, dirtyguest.kernel())
        yield c


@pytest.fixture(scope="session")
def passwords(cluster):
    """A fresh password per user, given to chpasswd on its standard input (never argv)."""
    node1 = cluster.node(1)
    made = {}
    for user, group in USERS.items():
        node1.run(["useradd", "-m", "-s", "/bin/bash"] + (["-G", group] if group else []) + [user])
        made[user] = secrets.token_urlsafe(16)
        node1.run(["chpasswd"], input=f"{user}:{made[user]}\n")
    return made


@pytest.fixture(scope="session")
def cockpit_url(cluster):
    """http://127.0.0.1:PORT, node1's cockpit-ws seen from here."""
    netns = f"/run/netns/{cluster.node(1).netns}"
    with Forwarder(netns, "127.0.0.1", 9090) as fw:
        yield f"http://127.0.0.1:{fw.port}"


@pytest.fixture(scope="session")
def browser():
    profile = tempfile.mkdtemp(prefix="hw-chromium-", dir="/var/tmp")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service("/usr/bin/chromedriver", log_path=os.devnull)
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        # quit() ends chromedriver and Chromium; by PID if it could not
        if service.process and service.process.poll() is None:
            service.process.kill()
            service.process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshot(browser):
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's only
    os.makedirs(SCREENSHOTS)

    def save(name: str) -> str:
        path = os.path.join(SCREENSHOTS, name + ".png")
        assert browser.save_screenshot(path), path
        return path
    return save


class Page:
    """The hostwarden page in a logged-in browser; waits are for conditions, never times."""

    def __init__(self, driver, url, diagnose):
        self.driver = driver
        self.url = url
        self.diagnose = diagnose

    def login(self, user: str, password: str) -> None:
        self.driver.delete_all_cookies()
        self.driver.get(self.url + "/")
        self.wait(EC.visibility_of_element_located((By.ID, "login-user-input")))
        self.driver.find_element(By.ID, "login-user-input").send_keys(user)
        self.driver.find_element(By.ID, "login-password-input").send_keys(password)
        self.driver.find_element(By.ID, "login-button").click()
        # the shell replaces the login page once the session is up
        try:
            self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe.container-frame"))
        except TimeoutException:
            raise AssertionError(f"{user}: the shell did not load after login; the page says:\n"
                                 + self.driver.find_element(By.TAG_NAME, "body").text
                                 + "\n" + self.diagnose()) from None

    def open(self) -> None:
        """The page alone (as the shell frames it): /cockpit/@localhost/hostwarden/."""
        self.driver.get(self.url + "/cockpit/@localhost/hostwarden/index.html")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#nodes-table tbody tr"),
                  "the page lists no node")

    def wait(self, condition, message: str = "", timeout: float = 60):
        # an element may be replaced between its lookup and its use: look again
        return WebDriverWait(self.driver, timeout, poll_frequency=0.2,
                             ignored_exceptions=(NoSuchElementException,
                                                 StaleElementReferenceException)
                             ).until(condition, message)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def tab(self, name: str) -> None:
        self.find(f"#tab-{name}").click()
        self.wait(EC.visibility_of_element_located((By.ID, f"view-{name}")))

    def text(self, css: str) -> str:
        return self.find(css).text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "call":
        item.call_failed = report.failed


@pytest.fixture
def page(request, browser, cockpit_url, passwords, cluster, screenshot):
    def diagnose() -> str:
        return "node1's journal of cockpit:\n" + cluster.node(1).journal(
            "-n", "40", "-u", "cockpit.service", "-u", "cockpit-wsinstance-http.service",
            "-t", "cockpit-session", "-t", "cockpit-ws", "-t", "cockpit-bridge")
    yield Page(browser, cockpit_url, diagnose)
    # what the browser showed when a test failed, for whoever reads the failure
    if getattr(request.node, "call_failed", False):
        browser.switch_to.default_content()
        screenshot("FAILED-" + request.node.name)

