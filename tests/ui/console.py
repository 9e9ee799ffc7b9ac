#!/usr/bin/python3
"""tests/ui/console.py - the web console in a real browser.

Drives Debian's headless Chromium through ChromeDriver (python3-selenium)
against the pool that console.t started, acting on the pool with the CLI
as a user would.  Prints one line per check, "ok - DESC" or
"not ok - DESC" followed by "# " diagnostics; console.t numbers them as
TAP.  Screenshots of every page go to $GP_UI_SHOTS.

Environment: GP_UI_URL (the console, .../ui/), GPUPOOL_API, GPUPOOL_TOKEN,
GP_BUILD (for the CLI), GP_UI_SHOTS (a folder).

The waits below are deadlines for something that must happen, not speed
targets: how fast the console follows the pool is measured by
tests/bench/ui.sh.  The latencies seen here are printed as diagnostics.
"""
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

URL = os.environ["GP_UI_URL"]
API = os.environ["GPUPOOL_API"]
TOKEN = os.environ["GPUPOOL_TOKEN"]
CLI = os.path.join(os.environ["GP_BUILD"], "gpupool")
SHOTS = os.environ.get("GP_UI_SHOTS", "")
DEADLINE_S = 60
failed = 0


def check(cond, desc, got=None):
    global failed
    if cond:
        print("ok - " + desc, flush=True)
    else:
        failed += 1
        print("not ok - " + desc, flush=True)
        if got is not None:
            for line in str(got).splitlines()[:20]:
                print("#   got: " + line, flush=True)


def diag(msg):
    print("# " + msg, flush=True)


def cli(*args, stdin=None):
    r = subprocess.run([CLI, "--api", API, *args], input=stdin, capture_output=True, text=True,
                       env=dict(os.environ, GPUPOOL_TOKEN=TOKEN), timeout=60)
    if r.returncode != 0:
        diag("gpupool %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def wait_until(fn, deadline_s=DEADLINE_S):
    """fn's first truthy value within the deadline, else None."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            v = fn()
        except WebDriverException:
            v = None
        if v:
            return v
        if time.monotonic() > end:
            return None
        time.sleep(0.05)


def found(css):
    return driver.find_elements(By.CSS_SELECTOR, css)


def shot(name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def severe(allow_401=False):
    """The console's errors since the last call (a refused token's 401 is
    the browser's own report of the answer, allowed where asked)."""
    out = []
    for e in driver.get_log("browser"):
        if e["level"] != "SEVERE":
            continue
        if allow_401 and "401" in e["message"]:
            continue
        out.append(e["message"])
    return out


def go(hash_):
    driver.execute_script("location.hash = arguments[0]", hash_)


def h1():
    return driver.execute_script("var h = document.querySelector('#view h1'); "
                                 "return h && !document.getElementById('view').hidden ? h.textContent : ''")


def no_overflow():
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


def start_browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,800", "--force-color-profile=srgb", "--hide-scrollbars",
              "--no-first-run", "--disable-extensions", "--disable-background-networking",
              "--force-prefers-reduced-motion"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


driver = start_browser()
try:
    driver.set_window_size(1280, 800)
    # ------------------------------------------------------------ login
    driver.get(URL)
    check(wait_until(lambda: driver.find_element(By.ID, "login").is_displayed()),
          "without a token the console opens on its login page")
    shot("login")
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    err = wait_until(lambda: driver.find_element(By.ID, "login-error").is_displayed()
                     and driver.find_element(By.ID, "login-error").text)
    check(err and "refused" in err, "a wrong token gets the login page with an error", err)
    check(not found("[data-job]") and not found("[data-node]") and not found("[data-region]")
          and not driver.find_element(By.ID, "view").is_displayed(),
          "and no data", driver.find_element(By.ID, "view").get_attribute("innerHTML")[:400])
    check(driver.execute_script("return sessionStorage.getItem('gpupool-token')") is None,
          "the refused token is not kept")
    shot("login-refused")
    severe(allow_401=True)

    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    check(wait_until(lambda: found('[data-region="r1"]')),
          "with the pool's token the overview shows the region")
    check(driver.execute_script("return sessionStorage.getItem('gpupool-token')") == TOKEN,
          "the token is kept in the tab's sessionStorage")

    # ------------------------------------------------------------ live queue
    driver.find_element(By.CSS_SELECTOR, 'nav a[data-page="queue"]').click()
    check(wait_until(lambda: h1() == "Queue and jobs"), "the queue page opens from the navigation")
    driver.execute_script("window.__sameDocument = 1")
    t0 = time.monotonic()
    cli("submit", "-", stdin='{"id": "j1", "devices": 1, "mem_mib": 12288, "compute_percent": 10, '
                              '"owner": "team-a", "models": ["A10"], "duration_s": 3600}')
    row = wait_until(lambda: found('tr[data-job="j1"]'))
    check(row, "a job submitted with the CLI appears on the queue page")
    diag("j1 on the queue page %.2f s after the CLI returned" % (time.monotonic() - t0))
    check(driver.execute_script("return window.__sameDocument") == 1, "without a reload")
    check(wait_until(lambda: found('tr[data-job="j1"][data-state="running"]')),
          "and then shows it running")

    # ------------------------------------------------------------ nodes and GPU bars
    driver.find_element(By.CSS_SELECTOR, 'nav a[data-page="nodes"]').click()
    check(wait_until(lambda: found('[data-node="a1-0000"]')), "the nodes page shows the agent's node")
    uuid = cli("-o", "json", "get", "j1").stdout.split('"uuid": "')[-1].split('"')[0]
    check(wait_until(lambda: found('[data-gpu="%s"] [data-slice-job="j1"]' % uuid)),
          "j1 is drawn on the bar of its GPU (%s)" % uuid)
    t0 = time.monotonic()
    cli("submit", "-", stdin='{"id": "j2", "devices": 1, "mem_mib": 6144, "compute_percent": 30, '
                             '"owner": "team-b", "models": ["A10"], "duration_s": 3600}')
    check(wait_until(lambda: found('[data-gpu] [data-slice-job="j2"]')),
          "a job submitted while the nodes page is open appears on a GPU's bar")
    diag("j2 on its GPU's bar %.2f s after the CLI returned" % (time.monotonic() - t0))
    check(driver.execute_script("return window.__sameDocument") == 1, "without a reload")
    # what a slice really uses: a real process holding 1 GiB through the shim
    cli("submit", "-", stdin=os.environ["GP_UI_HOLD_JOB"])
    used = wait_until(lambda: [g.get_attribute("data-used-mib") for g in
                               found('[data-node="gpu1"] [data-slice-job="hold"]')
                               if g.get_attribute("data-used-mib") == "1024"])
    check(used, "a slice shows what it really uses (1 GiB of its 4 GiB, from the agent's usage record)",
          [g.get_attribute("outerHTML")[:300] for g in found('[data-slice-job="hold"]')])
    check(wait_until(lambda: "1 GiB used" in driver.find_element(By.CSS_SELECTOR, '[data-node="gpu1"]').text),
          "and its GPU what is used on it", driver.find_element(By.CSS_SELECTOR, '[data-node="gpu1"]').text)
    shot("nodes")

    # ------------------------------------------------------------ a job's log tail, from its node
    go("#/job/hold")
    log = wait_until(lambda: [p.text for p in found("#log-stdout") if "holding" in p.text])
    check(log, "the job page shows the job's stdout, read from its node (GET /ui/api/logs/hold)",
          [p.text for p in found("#log")])

    # ------------------------------------------------------------ a pending job's reason
    cli("submit", "-", stdin='{"id": "big", "devices": 2, "whole": true, "owner": "team-b"}')
    go("#/queue?state=pending")
    reason = wait_until(lambda: [r.text for r in found('tr[data-job="big"] td.reason') if r.text.strip()])
    check(reason, "a pending job shows the reason it waits", found('tr[data-job="big"]'))
    if reason:
        diag("its reason: " + reason[0])
    api_reason = cli("-o", "json", "get", "big").stdout
    check(reason and reason[0] in api_reason, "the reason the API gives", api_reason[:400])
    shot("queue-pending")

    # ------------------------------------------------------------ a job's page
    go("#/queue")
    link = wait_until(lambda: found('tr[data-job="j1"] a'))
    if link:
        link[0].click()
    check(wait_until(lambda: "j1" in h1()), "a job's link opens its page")
    steps = wait_until(lambda: len(found("ol.timeline li")) >= 3 and found("ol.timeline li"))
    check(steps and [s.text.split()[0] for s in steps[:3]] == ["pending", "placed", "running"],
          "its history: pending, placed, running", [s.text for s in steps or []])
    check(wait_until(lambda: uuid in driver.find_element(By.ID, "content").text),
          "its allocation names its GPU")
    check("12288" in driver.find_element(By.CSS_SELECTOR, "pre").text, "its spec is shown")
    shot("job")

    # ------------------------------------------------------------ cancel
    driver.find_element(By.CSS_SELECTOR, 'nav a[data-page="nodes"]').click()
    wait_until(lambda: found('[data-slice-job="j1"]'))
    t0 = time.monotonic()
    cli("cancel", "j1")
    check(wait_until(lambda: found('[data-node="a1-0000"]') and not found('[data-slice-job="j1"]')),
          "a cancelled job leaves its GPU's bar")
    diag("j1 off its GPU's bar %.2f s after the CLI returned" % (time.monotonic() - t0))
    go("#/queue")
    check(wait_until(lambda: found('tr[data-job="j2"]') and not found('tr[data-job="j1"]')),
          "and the queue's active jobs")
    shot("queue")

    # ------------------------------------------------------------ overview
    go("#/overview")
    check(wait_until(lambda: found('[data-model="A10"]')), "the overview lists the GPUs by model")
    check(wait_until(lambda: found("svg.chart"), deadline_s=30),
          "and draws the allocation history once it has two samples")
    shot("overview")

    # ------------------------------------------------------------ keyboard
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    reached = None
    for _ in range(12):
        a = driver.switch_to.active_element
        if a.get_attribute("data-page") == "queue":
            reached = a
            break
        a.send_keys(Keys.TAB)
    check(reached is not None, "the pages' links are reached with Tab")
    if reached:
        reached.send_keys(Keys.ENTER)
    check(wait_until(lambda: h1() == "Queue and jobs"), "and opened with Enter")

    # ------------------------------------------------------------ dark, phone width
    light_bg = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    driver.find_element(By.ID, "theme").click()
    dark_bg = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    check(driver.execute_script("return document.documentElement.dataset.theme") == "dark"
          and dark_bg != light_bg, "the theme button switches to dark", (light_bg, dark_bg))
    go("#/nodes")
    wait_until(lambda: found('[data-slice-job="j2"]'))
    shot("nodes-dark")
    driver.find_element(By.ID, "theme").click()
    driver.set_window_size(390, 844)
    for page, ready in (("#/overview", '[data-model="A10"]'), ("#/nodes", '[data-node="a1-0000"]'),
                        ("#/queue", 'tr[data-job="j2"]'), ("#/job/j2", "ol.timeline li")):
        go(page)
        wait_until(lambda: found(ready))
        check(found(ready) and no_overflow(), "at a phone's width %s fits the screen" % page,
              driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]"))
        shot("phone-" + page.strip("#/").replace("/", "-"))
    driver.set_window_size(1280, 800)

    check(severe() == [], "no errors in the browser's console", severe())

    # ------------------------------------------------------------ sign out
    driver.find_element(By.ID, "logout").click()
    check(wait_until(lambda: driver.find_element(By.ID, "login").is_displayed())
          and driver.execute_script("return sessionStorage.getItem('gpupool-token')") is None,
          "signing out forgets the token and shows the login page")
finally:
    driver.quit()
sys.exit(1 if failed else 0)
