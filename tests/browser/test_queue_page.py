"""The queue page in a real browser, against the daemon as a subprocess (issue: the sync queue page).

The flow an office employee follows: the overview of a daemon with records in every state, the
queue filtered to `failed`, a refused record, sign-in with the token, retry, and the record synced.
A ServiceTitan name built to break pages (markup, quotes, right-to-left text) must show as text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from daemon.store import Finished, RecordError, RecordKey, RecordUpsert, Store
from statemachine import FieldMapping, JobFacts, Settings, State, desired_for_job
from tests.acceptance.harness import TENANT, Stack
from tests.browser.conftest import Browser

pytestmark = pytest.mark.timeout(240)

HOSTILE = "<script>window.pwned=1</script> \"Quoted\" & 'single' \u202eRTL\u202c שלום"
TOKEN = "http-token-secret-1"
OTHER_REPLICA = "replica-b@elsewhere"


def go(driver: WebDriver, how: str, what: str) -> None:
    """Click a link or button and wait until the next page has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(how, what).click()
    WebDriverWait(driver, 20).until(lambda _: _replaced(old))


def _replaced(old: WebElement) -> bool:
    """Whether `old` belongs to a document the browser has left.

    Selenium's staleness_of knows only the stale-element error; asked mid-navigation, chromedriver
    may instead answer "Node with given id does not belong to the document", which means the same.
    """
    try:
        old.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in (exc.msg or ""):
            return True
        raise
    return False


def button(label: str) -> tuple[str, str]:
    return By.XPATH, f"//button[normalize-space()='{label}']"


def text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def seed_states(dsn: str) -> tuple[Store, asyncpg.Pool, list[RecordKey]]:
    """Three records held by another replica: one it will leave pending (retry in an hour), one it keeps
    syncing (an hour's lease) and one it will block (after the daemon's start-up resume)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    store = Store(pool, TENANT)
    keys = [RecordKey("job", 900001 + i) for i in range(3)]
    rows = [RecordUpsert("job", k.st_id, str(k.st_id), "Held elsewhere", None, "Seeded Customer", None, True, None,
                         None, desired_for_job(JobFacts(k.st_id, str(k.st_id), None, None, "Seeded Customer"),
                                               None, Settings(), FieldMapping()))
            for k in keys]
    await store.upsert(rows)
    claimed = await store.claim_batch(OTHER_REPLICA, 3, timedelta(hours=1), only=keys)
    assert len(claimed) == 3
    pending = claimed[0]
    await store.finish(OTHER_REPLICA, [Finished(pending.key, State.PENDING, "Intacct busy: retry later",
                                                pending.desired_hash, delay_s=3600)],
                       {pending.key: pending.claim_id})
    return store, pool, keys


async def test_office_flow_in_a_browser(stack: Stack, browser: Browser) -> None:
    store, pool, seeded = await seed_states(stack.dsn)
    try:
        config = stack.config(
            settings={"enable_customer_project_linkage": True},
            mapping={"customer_id": "C{customer_id}"},
            # Records blocked below stay blocked: the sweep that resumes them runs once an hour here.
            intacct={"probe_interval": "1h"},
        )
        daemon = await stack.start_daemon(config)
        base = daemon.http.base
        known = await stack.st.customer("Known Customer")
        await stack.ia.call("POST", "/_sim/customers", {"ids": [f"C{known['id']}"]})
        good = await stack.st.job(known["id"])
        hostile = await stack.st.customer(HOSTILE)
        refused = await stack.st.job(hostile["id"])
        await daemon.wait_state("job", good["id"], "synced")
        failed = await daemon.wait_state("job", refused["id"], "failed")
        assert failed["last_error"]["errorno"]  # Intacct's own refusal
        blocked = await store.get(seeded[2])
        assert blocked is not None
        await store.finish(OTHER_REPLICA, [Finished(blocked.key, State.BLOCKED, "connection error",
                                                    blocked.desired_hash,
                                                    error=RecordError("connection", "Sign-in refused"))],
                           {blocked.key: blocked.claim_id})

        driver = browser.driver
        driver.get(base + "/")
        driver.delete_all_cookies()
        driver.get(base + "/")
        assert driver.title.startswith("Overview")
        tiles = {t.find_element(By.CLASS_NAME, "tile-code").text: int(t.find_element(By.CLASS_NAME, "tile-n").text)
                 for t in driver.find_elements(By.CSS_SELECTOR, ".tiles .tile")}
        assert all(tiles[s] >= 1 for s in ("pending", "syncing", "synced", "blocked-by-connection", "failed")), tiles
        assert driver.find_element(By.CSS_SELECTOR, "figure.chart svg rect.bar-synced")
        browser.shot("overview")
        browser.shot("overview-phone", width=390)
        driver.set_window_size(390, 844)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        driver.set_window_size(1280, 900)

        # The queue, filtered to failed, with the form (no script involved).
        go(driver, By.LINK_TEXT, "Queue")
        Select(driver.find_element(By.ID, "state")).select_by_value("failed")
        go(driver, By.CSS_SELECTOR, "form.filters button[type=submit]")
        assert "state=failed" in driver.current_url
        rows = driver.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
        assert rows and all("Refused" in r.find_element(By.CSS_SELECTOR, ".state").text for r in rows)
        # The hostile name is text: its markup shows literally and never ran.
        assert "<script>window.pwned=1</script>" in text(driver)
        assert driver.execute_script("return window.pwned") is None
        scripts = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
        assert len(scripts) == 1 and "/assets/refresh.js" in scripts[0]
        browser.shot("queue-failed")
        browser.shot("queue-failed-phone", width=390)
        driver.set_window_size(390, 844)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

        # The refused record: Intacct's words, its history; acting needs the token.
        driver.set_window_size(1280, 900)
        driver.get(f"{base}/queue/job/{refused['id']}")
        page = text(driver)
        assert "Refused" in page and "Intacct refused it" in page
        assert failed["last_error"]["errorno"] in page
        assert not driver.find_elements(*button("Retry"))
        browser.shot("record-failed")
        go(driver, By.LINK_TEXT, "Sign in")
        assert driver.title.startswith("Sign in")
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        go(driver, By.CSS_SELECTOR, "form.stack button[type=submit]")
        assert "That is not the token" in text(driver)
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        browser.shot("signin")
        go(driver, By.CSS_SELECTOR, "form.stack button[type=submit]")
        assert driver.current_url == f"{base}/queue/job/{refused['id']}"
        cookie = driver.get_cookie("sis_session")
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]

        # The cause fixed in Intacct, the person retries, and the record goes through.
        await stack.ia.call("POST", "/_sim/customers", {"ids": [f"C{hostile['id']}"]})
        go(driver, *button("Retry"))
        assert "Retrying" in text(driver)

        def synced() -> bool:
            driver.refresh()
            return "In Intacct" in driver.find_element(By.TAG_NAME, "h1").text

        await until(synced, 30, "the retried record to show as synced")
        history = driver.find_element(By.CSS_SELECTOR, "table.history").text
        assert "operator retry" in history
        assert HOSTILE.split("<")[0] in text(driver) or "<script>" in text(driver)
        browser.shot("record-synced")

        # Reconciliation: start a run from the page, see it listed with its counts.
        go(driver, By.LINK_TEXT, "Reconciliation")
        go(driver, *button("Start a reconciliation"))
        assert "A reconciliation has started" in text(driver)

        def run_done() -> bool:
            driver.refresh()
            return bool(driver.find_elements(By.CSS_SELECTOR, "table.runs .run-done"))

        await until(run_done, 60, "the reconciliation run to finish")
        browser.shot("reconciliation")
        go(driver, By.CSS_SELECTOR, "table.runs tbody th a")
        assert driver.title.startswith("Reconciliation #")
        browser.shot("reconciliation-run")
        assert daemon.proc.stop() == 0
    finally:
        await pool.close()
