"""Headless Chromium against the test SPA, the old-gateway-style nginx and accounts.

Started by scripts/browser-test, which passes the ports and paths in the environment. Each step is
a user-visible flow of the SmartBudget frontend; a failing step names itself and prints the SPA's
request log. Exit status 0 when every step passed.
"""
import email
import email.policy
import glob
import http.client
import os
import re
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ENV = os.environ
SPA = f"http://localhost:{ENV['SPA_PORT']}"
SECOND = f"http://localhost:{ENV['SECOND_PORT']}"
FOREIGN = f"http://localhost:{ENV['FOREIGN_PORT']}"
GATEWAY_PORT = int(ENV["GATEWAY_PORT"])
MAIL_DIR = ENV["MAIL_DIR"]
ACCESS_LOG = ENV["NGINX_ACCESS_LOG"]
ACCESS_TTL = int(ENV["ACCESS_TTL"])
PASSWORD = "Browser-test-1"
NEW_PASSWORD = "Browser-test-2"


def chrome():
    opts = webdriver.ChromeOptions()
    opts.binary_location = ENV.get("CHROMIUM", "/usr/bin/chromium")
    profile = tempfile.mkdtemp(prefix="auth-chromium-")
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]:
        opts.add_argument(flag)
    service = Service(executable_path=ENV.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_script_timeout(10)
    return driver, profile


class Failed(Exception):
    pass


def wait(driver, what, cond, timeout=10):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: cond(d))
    except TimeoutException:
        raise Failed(f"timed out waiting for {what} (at {driver.current_url})") from None


def text_of(driver, id_):
    return driver.find_element(By.ID, id_).text


def wait_text(driver, id_, expected, timeout=10):
    wait(driver, f"#{id_} == {expected!r}", lambda d: text_of(d, id_) == expected, timeout)


def wait_url(driver, path):
    wait(driver, f"url {path}", lambda d: d.current_url.split("?")[0] == SPA + path)


def spa_log(driver):
    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#log li")]


def fill(driver, id_, value):
    el = driver.find_element(By.ID, id_)
    el.clear()
    el.send_keys(value)


def click(driver, id_):
    wait(driver, f"#{id_} visible", lambda d: d.find_element(By.ID, id_).is_displayed())
    driver.find_element(By.ID, id_).click()


def mails_to(addr):
    out = []
    for path in sorted(glob.glob(os.path.join(MAIL_DIR, "*.eml")), key=os.path.getmtime):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        if msg["To"] == addr:
            out.append(msg)
    return out


def mail_link(addr, count_before, path):
    """The link to `path` in the newest email to `addr`, waiting for one more than count_before."""
    deadline = time.time() + 10
    while time.time() < deadline:
        mails = mails_to(addr)
        if len(mails) > count_before:
            text = mails[-1].get_body(("plain",)).get_content()
            m = re.search(re.escape(SPA + path) + r"\?\S+", text)
            if not m:
                raise Failed(f"no {path} link in the email: {text!r}")
            return m.group(0)
        time.sleep(0.1)
    raise Failed(f"no email to {addr} after 10 s")


def access_log():
    with open(ACCESS_LOG) as f:
        return f.read().splitlines()


def gateway_headers(origin):
    conn = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=5)
    conn.request("GET", "/api/v1/auth/health", headers={"Origin": origin, "Host": "localhost"})
    res = conn.getresponse()
    res.read()
    conn.close()
    return res.getheaders()


def sign_in(d, addr, password):
    d.get(SPA + "/auth/sign-in")
    fill(d, "email", addr)
    click(d, "continue")
    fill(d, "password", password)
    click(d, "sign-in-button")


def run(d, addr):
    steps = []

    def step(name):
        steps.append((name, time.time()))
        print(f"-- {name}", flush=True)

    step("registration through the email link")
    d.get(SPA + "/auth/sign-in")
    fill(d, "email", addr)
    click(d, "continue")
    wait_text(d, "check-email", "sign_up")
    link = mail_link(addr, 0, "/auth/registration")
    d.get(link)
    wait_text(d, "link-state", "verified")
    fill(d, "reg-name", "Browser Test")
    fill(d, "reg-country", "Russia")
    fill(d, "reg-password", PASSWORD)
    click(d, "register")
    wait_url(d, "/main")
    wait_text(d, "me", addr)
    user_id = wait(d, "goals user id", lambda d: text_of(d, "goals") or None)
    cookies = {c["name"]: c for c in d.get_cookies()}
    # get_cookies shows the SPA origin's cookies; the auth cookies belong to the gateway's host,
    # which is the same (localhost): cookies are not per port. Path=/ only: the access cookie.
    if "access_token" not in cookies or not cookies["access_token"]["secure"]:
        raise Failed(f"no Secure access_token cookie on http://localhost: {cookies}")
    if not cookies["access_token"]["httpOnly"]:
        raise Failed("access_token cookie is readable by scripts")

    step("reload after the access cookie expired: refreshed through the cookie")
    time.sleep(ACCESS_TTL + 1)
    d.refresh()
    wait_text(d, "me", addr)
    wait_text(d, "goals", user_id)
    log = spa_log(d)
    if "GET /user/me 401" not in log or "POST /auth/refresh 200" not in log:
        raise Failed(f"expected a 401 then a refresh: {log}")

    step("CORS: credentials work for the second allowed origin only, one Allow-Origin header")
    d.get(SECOND + "/none")
    res = d.execute_async_script("window.probeRead('/user/me').then(arguments[0])")
    if not (res.startswith("ok ") and addr in res):
        raise Failed(f"second origin could not read /user/me: {res}")
    d.get(FOREIGN + "/none")
    res = d.execute_async_script("window.probeRead('/user/me').then(arguments[0])")
    if not res.startswith("blocked"):
        raise Failed(f"foreign origin read /user/me: {res}")
    for origin, expected in [(SPA, [SPA]), (SECOND, [SECOND]), (FOREIGN, [])]:
        acao = [v for k, v in gateway_headers(origin) if k.lower() == "access-control-allow-origin"]
        if acao != expected:
            raise Failed(f"Access-Control-Allow-Origin for {origin}: {acao}")

    step("CSRF: a cross-site POST from a foreign origin is refused")
    before = len(access_log())
    res = d.execute_async_script("window.probeSimplePost('/auth/logout').then(arguments[0])")
    if not res.startswith("sent"):
        raise Failed(f"the foreign POST was not sent: {res}")
    wait(d, "the foreign logout in the access log", lambda _: any(
        " POST /api/v1/auth/logout " in line for line in access_log()[before:]))
    lines = [l for l in access_log()[before:] if " POST /api/v1/auth/logout " in l]
    if not (lines and " 403 " in lines[0] and FOREIGN in lines[0]):
        raise Failed(f"foreign logout not refused: {lines}")
    d.get(SPA + "/main")
    wait_text(d, "me", addr)

    step("logout")
    click(d, "logout")
    wait_url(d, "/auth/sign-in")
    d.get(SPA + "/main")
    wait_url(d, "/auth/sign-in")

    step("sign in as an existing user (email -> sign_in -> password)")
    sign_in(d, addr, PASSWORD)
    wait_url(d, "/main")
    wait_text(d, "me", addr)

    step("password reset through the email link")
    click(d, "logout")
    wait_url(d, "/auth/sign-in")
    fill(d, "email", addr)
    click(d, "continue")
    before = len(mails_to(addr))
    click(d, "forgot")
    wait_text(d, "check-email", "resetPassword")
    link = mail_link(addr, before, "/auth/reset-password")
    d.get(link)
    wait_text(d, "link-state", "verified")
    fill(d, "new-password", NEW_PASSWORD)
    click(d, "save-password")
    wait_url(d, "/auth/sign-in")
    sign_in(d, addr, PASSWORD)
    wait_text(d, "sign-in-error", "401")
    fill(d, "password", NEW_PASSWORD)
    click(d, "sign-in-button")
    wait_url(d, "/main")
    wait_text(d, "me", addr)

    steps.append(("end", time.time()))
    return steps


def main():
    started = time.time()
    driver, profile = chrome()
    addr = f"browser-{int(time.time())}@example.com"
    try:
        steps = run(driver, addr)
    except Exception as e:
        print(f"FAILED: {e}", file=sys.stderr)
        try:
            print("SPA request log:", spa_log(driver), file=sys.stderr)
        except Exception:
            pass
        return 1
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    for (name, t0), (_, t1) in zip(steps, steps[1:]):
        print(f"ok {t1 - t0:5.2f}s  {name}")
    print(f"browser test passed: {len(steps) - 1} steps in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
