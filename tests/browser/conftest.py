"""A real browser for the queue page: Debian's headless Chromium driven through chromedriver (Selenium).

.ci/run installs the `chromium` and `chromium-driver` packages when absent. One browser serves the
whole session (starting one takes about a second); each test gets a fresh cookie jar. Screenshots
land in build/screenshots/ (or $UI_SCREENSHOT_DIR): the test artifacts of every page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.acceptance.harness import REPO

CHROMIUM = os.environ.get("UI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UI_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("UI_SCREENSHOT_DIR", REPO / "build" / "screenshots"))
WIDTH, HEIGHT = 1280, 900


class Browser:
    """The driver, plus full-page screenshots saved under a page's name."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    def shot(self, name: str, width: int = WIDTH) -> Path:
        """A screenshot of the whole page (the window grows to the page's height for it)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.set_window_size(width, HEIGHT)
        height, chrome = self.driver.execute_script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
        self.driver.set_window_size(width, min(int(height) + int(chrome), 6000))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(WIDTH, HEIGHT)
        return path


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Iterator[Browser]:
    chromium.delete_all_cookies()
    chromium.set_window_size(WIDTH, HEIGHT)
    yield Browser(chromium)
    chromium.delete_all_cookies()
