"""End to end in a real browser: headless Chromium (Debian's chromium + chromium-driver)
protects a photo on the page, the download is cropped with Pillow, the crop is
inspected on the page, and the verdict and box shown are checked."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="no browser: install Debian's chromium and chromium-driver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """The shipped default model behind the page, on a free local port."""
    from clrnet.web.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,760"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.downloads = downloads  # type: ignore[attr-defined]
    yield driver
    driver.quit()


def wait_for(predicate, timeout: float = 60.0, what: str = "the page"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_protect_crop_inspect_in_the_browser(server, browser, tmp_path, photo):
    from selenium.webdriver.common.by import By

    src = tmp_path / "cat.png"
    photo.save(src)
    browser.get(server + "/")
    browser.find_element(By.ID, "protect-input").send_keys(str(src))
    link = wait_for(lambda: browser.find_element(By.ID, "protect-download").is_displayed()
                    and browser.find_element(By.ID, "protect-download"), what="the download link")
    assert link.get_attribute("download") == "cat.protected.png"
    link.click()
    downloaded = browser.downloads / "cat.protected.png"
    wait_for(lambda: downloaded.is_file() and not list(browser.downloads.glob("*.crdownload")), what="the download")

    protected = Image.open(downloaded).convert("RGB")
    assert protected.size == photo.size
    w, h = protected.size
    true_box = (0.25, 0.1, 1.0, 0.9)  # keep 60 % of the area
    crop = protected.crop((round(w * true_box[0]), round(h * true_box[1]), w, round(h * true_box[3])))
    received = tmp_path / "received.jpg"
    crop.save(received, quality=90)

    browser.find_element(By.ID, "inspect-input").send_keys(str(received))
    verdict = wait_for(lambda: browser.find_element(By.ID, "verdict").text, what="the verdict")
    assert verdict == "CROPPED"
    box = json.loads(browser.find_element(By.ID, "box").get_attribute("data-box"))
    assert all(abs(a - b) < 0.06 for a, b in zip(box, true_box)), box
    assert "kept box" in browser.find_element(By.ID, "box").text
    for name in ("img-overlay", "img-mask", "img-recovered"):
        assert browser.find_element(By.ID, name).get_attribute("src").startswith("data:image/png")
    shot = os.environ.get("CLRNET_SCREENSHOT")
    if shot:  # scripts/web_screenshot.sh sets it to refresh the README's picture
        browser.save_screenshot(shot)


def test_page_shows_a_bad_upload_as_a_message(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    browser.get(server + "/")
    browser.find_element(By.ID, "inspect-input").send_keys(str(bad))
    message = wait_for(lambda: browser.find_element(By.ID, "inspect-status").text.strip()
                       and "Inspecting" not in browser.find_element(By.ID, "inspect-status").text
                       and browser.find_element(By.ID, "inspect-status").text, what="the error message")
    assert "notes.jpg: not an image" in message
    assert "error" in browser.find_element(By.ID, "inspect-status").get_attribute("class")
