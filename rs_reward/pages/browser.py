"""Headless Chromium for the pages: open one from disk, read what the browser saw, take a screenshot.

Uses Selenium with the system's Chromium and ChromeDriver (Debian packages `chromium` and `chromium-driver`;
nothing is downloaded). `rs-reward browse --screenshot` and the browser tests use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


# Chromium without the network calls it makes at start (refused on closed networks) and without a sandbox (root).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
)


def find_chromium() -> tuple[str, str] | None:
    """(browser, driver) paths, from `RS_REWARD_CHROMIUM` / `RS_REWARD_CHROMEDRIVER` or the PATH; None if absent."""
    browser = os.environ.get("RS_REWARD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("RS_REWARD_CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A Selenium Chrome driver on headless Chromium with console logging on; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if found is None:
        raise RuntimeError("no Chromium found: install the Debian packages chromium and chromium-driver")
    browser, driver_path = found
    with tempfile.TemporaryDirectory(prefix="rs-reward-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            yield driver
        finally:
            driver.quit()


def open_page(driver, page: str | Path) -> None:
    """Load `page` from disk and wait until it and its images have loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(Path(page).resolve().as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
        )
    )


def screenshot(page: str | Path, png: str | Path, width: int = 1280, height: int = 900, full: bool = False) -> Path:
    """Save a PNG of `page` (the first screen, or the whole height with `full`)."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with chromium(width, height) as driver:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        open_page(driver, page)
        if full:
            total = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics | {"height": min(int(total), 8000)})
        driver.save_screenshot(str(png))
    return png


def screenshot_name(page: str | Path, root: str | Path | None = None) -> str:
    """`docs/demo/grpo/score_model/browse/index.html` -> `grpo_score_model.png`; a top-level page -> `pool.png`."""
    parts = Path(page).resolve().relative_to(Path(root or Path(page).parents[1]).resolve()).parts
    parts = [p for p in parts[:-1] if p != "browse"]
    return ("_".join(parts) or "pool") + ".png"


def main(argv: list[str] | None = None) -> int:
    """`python -m rs_reward.pages.browser --out docs/screenshots page.html ...`: one PNG per page."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("pages", nargs="+", help="index.html files written by rs-reward")
    parser.add_argument("--out", required=True, help="folder of the PNG files")
    parser.add_argument("--root", default=None, help="folder the PNG names are taken relative to")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1100)
    args = parser.parse_args(argv)
    root = args.root or os.path.commonpath([str(Path(p).resolve().parent) for p in args.pages])
    for page in args.pages:
        if not Path(page).is_file():
            parser.error(f"no page {page}: run `make demo` and `make demo-docs` first")
        png = screenshot(page, Path(args.out) / screenshot_name(page, root), args.width, args.height)
        print(png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
