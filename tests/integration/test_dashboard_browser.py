"""The managers' page as a manager opens it: headless Debian Chromium (selenium, /usr/bin/chromedriver, no driver
download) on the static `eta311 forecast` page and on the live `/dashboard` of `eta311 serve`.

Each department's closures chart and backlog chart must render (an SVG with a band and a line), the browser log
must hold no errors, the department filter must show one department and hide the others, and a screenshot is
saved under the test's tmp folder. Skipped, with the reason, where no chromium binary is installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_training_mlflow import run_cli

pytestmark = pytest.mark.slow
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first(paths: tuple[str, ...], name: str) -> str | None:
    found = [p for p in paths if Path(p).is_file()]
    return found[0] if found else shutil.which(name)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium with the browser log enabled; skip cleanly when it is not installed."""
    chromium = _first(CHROMIUM_CANDIDATES, "chromium")
    driver_path = _first(CHROMEDRIVER_CANDIDATES, "chromedriver")
    if chromium is None or driver_path is None:
        message = "no chromium/chromedriver binary found (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":  # .ci/run installs them: on CI a missing browser is a failure
            pytest.fail(message)
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,2200")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def check_page(driver: Any, url: str, screenshot: Path) -> list[str]:
    """Open `url`, check every department's charts, switch the filter, save a screenshot; returns departments."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return window.eta311Ready === true"))
    select = Select(driver.find_element(By.ID, "department-filter"))
    departments = [o.get_attribute("value") for o in select.options if o.get_attribute("value")]
    assert len(departments) >= 3, departments
    for department in departments:
        for kind, band, line in (("forecast-chart", "band", "expected"), ("backlog-chart", "backlog-band", "backlog")):
            chart = driver.find_element(By.CSS_SELECTOR, f'svg.{kind}[data-department="{department}"]')
            assert chart.is_displayed(), (department, kind)
            box = chart.rect
            assert box["width"] > 100 and box["height"] > 100, (department, kind, box)
            for css in (band, line):
                path = chart.find_element(By.CSS_SELECTOR, f"path.{css}")
                assert len(path.get_attribute("d") or "") > 20, (department, kind, css)
                assert path.rect["width"] > 10, (department, kind, css)  # drawn, not collapsed

    chosen = departments[1] if len(departments) > 1 else departments[0]
    select.select_by_value(chosen)
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-selected") == chosen
    )
    for department in departments:
        chart = driver.find_element(By.CSS_SELECTOR, f'svg.forecast-chart[data-department="{department}"]')
        assert chart.is_displayed() == (department == chosen), department
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr[data-department]")
    assert rows and all(r.get_attribute("data-department") == chosen for r in rows if r.is_displayed())
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    select.select_by_value("")
    assert all(
        driver.find_element(By.CSS_SELECTOR, f'svg.forecast-chart[data-department="{d}"]').is_displayed()
        for d in departments
    )
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    return departments


def test_static_report_renders_every_department_and_filters(forecast_city: dict, browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run_cli("forecast", str(forecast_city["data"]), "--out", str(out))
    departments = check_page(browser, (out / "index.html").as_uri(), tmp_path / "static_report.png")
    assert "Sanitation" in departments


def test_live_dashboard_from_eta311_serve(forecast_city: dict, browser: Any, tmp_path: Path) -> None:
    service = pytest.importorskip("tests.integration.test_service_http", reason="the service tests are not here")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["BENTOML_HOME"] = str(forecast_city["home"] / "bentoml")
    server = service.Server(env, tmp_path / "server.log")
    try:
        server.wait_ready()
        first, waiting = service.wait_dashboard(server.url)  # computed in the background after /readyz
        assert first.status_code == 200 and all(r.headers["retry-after"] for r in waiting), first.text[:2000]
        answer = httpx.get(f"{server.url}/forecast/departments", params={"department": "Sanitation"}, timeout=120)
        assert answer.status_code == 200, answer.text[:2000]
        body = answer.json()
        assert body["departments"] == ["Sanitation"] and len(body["department_forecast"]) == 14
        page = httpx.get(f"{server.url}/dashboard", timeout=120)
        assert page.status_code == 200 and "department-filter" in page.text, page.text[:2000]
        check_page(browser, f"{server.url}/dashboard", tmp_path / "live_dashboard.png")
    finally:
        server.stop()
