"""The drawing page in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by Selenium, against uvicorn serving a model trained on real MNIST in this test run.

All drawing is done with WebDriver input actions - real (trusted) mouse / touch events that
Chromium turns into pointer events - not with JavaScript. MNIST test digits are drawn as one
horizontal stroke per run of dark pixels in each row, enlarged 10x onto the 280x280 canvas.

Needs /usr/bin/chromium, /usr/bin/chromedriver (apt-get install chromium chromium-driver),
selenium, and ANYNET_DATA_DIR. Set ANYNET_SCREENSHOT=docs/drawing-page.png to save the
screenshot there. Run only these: pytest -m browser
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from .helpers import mnist_cnn, mnist_mlp

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real browser against a real server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CANVAS = 280
SCALE = CANVAS // 28


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def model(request, data_dir):
    """The page serves an MLP and a convolutional network the same way."""
    return (mnist_mlp if request.param == "mlp" else mnist_cnn)(data_dir)


@pytest.fixture(scope="module")
def base_url(model):
    pytest.importorskip("fastapi")
    uvicorn = pytest.importorskip("uvicorn")
    from anynet.app.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(model[0]), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.access(exe, os.X_OK):
            pytest.skip(f"{exe} not found (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1000,760",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, base_url):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base_url + "/")
    WebDriverWait(browser, 10).until(lambda d: "classes" in d.find_element("id", "model-info").text)
    return browser


# --------------------------------------------------------------------------- drawing with real input


def _actions(driver, touch=False):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    if touch:
        return ActionChains(driver, duration=0, devices=[PointerInput(interaction.POINTER_TOUCH, "finger")])
    return ActionChains(driver, duration=0)


def draw(driver, strokes, touch=False):
    """Draw polylines given in canvas pixels (0..280) with pointer down / move / up."""
    canvas = driver.find_element("id", "canvas")
    chain = _actions(driver, touch)
    half = CANVAS // 2
    for stroke in strokes:
        x0, y0 = stroke[0]
        chain.move_to_element_with_offset(canvas, int(x0) - half, int(y0) - half)
        chain.click_and_hold()
        for x, y in stroke[1:]:
            chain.move_to_element_with_offset(canvas, int(x) - half, int(y) - half)
        chain.release()
    chain.perform()


def mnist_strokes(digit: np.ndarray, level: int = 128):
    """One horizontal stroke per run of pixels >= level in each row, centred in 10x10 cells."""
    strokes = []
    for y, row in enumerate(digit >= level):
        x = 0
        while x < 28:
            if row[x]:
                start = x
                while x + 1 < 28 and row[x + 1]:
                    x += 1
                cy = y * SCALE + SCALE // 2
                strokes.append([(start * SCALE + SCALE // 2, cy), (x * SCALE + SCALE // 2, cy)])
            x += 1
    return strokes


def ellipse(cx, cy, rx, ry, n=40):
    t = np.linspace(0, 2 * np.pi, n + 1)
    return list(zip(cx + rx * np.sin(t), cy - ry * np.cos(t)))


def clear(driver):
    driver.find_element("id", "clear").click()
    assert driver.find_element("id", "prediction").text == "?"


def predict(driver) -> dict:
    """Click Predict and wait for the answer; returns what the page shows."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element("id", "predict").click()
    WebDriverWait(driver, 15).until(
        lambda d: (
            d.find_elements("css selector", "#bars .bar-row") or d.find_element("id", "error").is_displayed()
        )
    )
    rows = driver.find_elements("css selector", "#bars .bar-row")
    return {
        "prediction": driver.find_element("id", "prediction").text,
        "confidence": driver.find_element("id", "confidence").text,
        "bars": [r.get_attribute("data-label") for r in rows],
        "error": driver.find_element("id", "error").text,
    }


# --------------------------------------------------------------------------- tests


def test_drawn_one_and_zero_with_the_mouse(page):
    results = {}
    for label, strokes in {
        "1": [[(140, 40), (142, 100), (144, 170), (146, 240)]],
        "0": [ellipse(140, 140, 55, 95)],
        "7": [[(80, 50), (200, 50), (160, 140), (120, 240)]],
    }.items():
        clear(page)
        draw(page, strokes)
        results[label] = predict(page)
    for label, shown in results.items():
        assert shown["error"] == ""
        assert shown["prediction"] == label, results
        assert shown["bars"][0] == label and len(shown["bars"]) == 5
        assert shown["confidence"].endswith("%")

    seen = page.find_element("id", "seen")
    assert seen.is_displayed()
    assert page.execute_script("return arguments[0].naturalWidth", seen) == 28


def test_drawing_with_touch(page):
    clear(page)
    draw(page, [[(150, 40), (148, 120), (146, 240)]], touch=True)
    assert predict(page)["prediction"] == "1"


def test_mnist_test_digits_drawn_on_the_canvas(page, model):
    _, data = model
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.test.images), size=20, replace=False)
    right, wrong = 0, []
    for i in idx:
        clear(page)
        draw(page, mnist_strokes(data.test.images[i]))
        shown = predict(page)
        truth = data.classes[data.test.labels[i]]
        if shown["prediction"] == truth:
            right += 1
        else:
            wrong.append((int(i), truth, shown["prediction"]))
    print(f"MNIST digits drawn in the browser: {right}/20 read correctly; wrong: {wrong}")
    assert right >= 17, f"{right}/20 right; wrong (index, truth, shown): {wrong}"


def test_errors_are_shown_and_the_page_keeps_working(page, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    clear(page)
    shown = predict(page)  # nothing drawn
    assert "Draw a character first" in shown["error"] and shown["prediction"] == "?"

    not_image = tmp_path / "notes.txt"
    not_image.write_text("this is not an image")
    page.find_element("id", "file").send_keys(str(not_image))  # goes to /api/predict/upload
    WebDriverWait(page, 10).until(lambda d: "not an image" in d.find_element("id", "error").text)

    clear(page)
    draw(page, [[(140, 40), (142, 240)]])
    assert predict(page)["prediction"] == "1"


def test_screenshot(page, model, tmp_path):
    _, data = model
    clear(page)
    draw(page, mnist_strokes(data.test.images[0]))  # a 7
    shown = predict(page)
    assert shown["prediction"] == data.classes[data.test.labels[0]]
    time.sleep(0.3)  # let the 28x28 image render
    path = tmp_path / "drawing-page.png"
    assert page.save_screenshot(str(path))
    target = os.environ.get("ANYNET_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
