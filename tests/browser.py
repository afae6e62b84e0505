"""A real headless Chromium for tests, driven by selenium through the system chromedriver.

The Debian packages `chromium` and `chromium-driver` provide both (`make test` installs them).
Selenium is handed the driver's path, so Selenium Manager is never asked to find or download
anything, and is told to stay offline should it be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver is missing; the message says what to do."""


@contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator[WebDriver]:
    """A headless Chromium window of the given size; quit when the context ends.

    The browser's console is kept (`driver.get_log("browser")`).
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise BrowserUnavailable(
            f"{' and '.join(missing)} not found; run `make test`, which installs them "
            "(apt-get install chromium chromium-driver)."
        )
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*ARGUMENTS, f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


class Page(HTMLParser):
    """The start tags of a page with their attributes, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def plots(self) -> list[str]:
        return [a["data-plot"] or "" for t, a in self.tags if t == "figure"]

    def tables(self) -> list[str]:
        return [a.get("id") or "" for t, a in self.tags if t == "table"]

    def missing(self) -> list[str]:
        return [a["data-plot-missing"] or "" for _, a in self.tags if "data-plot-missing" in a]
