"""The managers' page as a manager opens it: headless Debian Chromium (selenium, /usr/bin/chromedriver, no driver
download) on the static `eta311 forecast` page and on the live `/dashboard` of `eta311 serve`.

Each department's closures chart and backlog chart must render (an SVG with a band and a line), the map of council
districts must draw one shape per district in both views, the browser log must hold no errors, the department
filter must show one department and hide the others (chosen with the mouse and with the keyboard alone: Tab to it,
arrow keys), and a screenshot is saved under the test's tmp folder. axe-core (the npm package, pinned in
tests/a11y/package.json, installed by .ci/run with `npm ci`) is injected into the page with every folded table
opened, and any serious or critical WCAG 2.1 A/AA violation fails the test. Skipped, with the reason, where no
chromium binary is installed; where axe-core is not installed the other checks run and the test is then skipped
(with CI=true both are failures instead).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ROOT
from tests.integration.test_training_mlflow import run_cli

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = ("serious", "critical")
AXE_RUN = """
var done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(function (r) { done(r.violations); }, function (e) { done('axe failed: ' + e); });
"""


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
    driver.set_script_timeout(120)  # axe over a page of a few thousand nodes takes seconds on 2 cores
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def axe_script() -> str | None:
    """axe-core's browser bundle, or None (the test then skips after its other checks) where it is not installed."""
    if AXE.is_file():
        return AXE.read_text(encoding="utf-8")
    if os.environ.get("CI") == "true":  # .ci/run installs it: on CI a missing axe-core is a failure
        pytest.fail(f"{AXE} missing: run `npm ci --prefix tests/a11y`")
    return None


def axe_violations(driver: Any, axe: str) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it stands, with every <details> opened (so the tables
    folded under the charts are checked too), then closed again."""
    driver.execute_script("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
    driver.execute_script(axe)
    violations = driver.execute_async_script(AXE_RUN, WCAG_TAGS)
    driver.execute_script("document.querySelectorAll('details').forEach(function (d) { d.open = false; })")
    assert isinstance(violations, list), violations
    return violations


def check_accessible(driver: Any, axe: str) -> None:
    """No serious or critical violation; the milder ones are listed in the log (they do not fail)."""
    violations = axe_violations(driver, axe)
    for v in violations:
        log.warning("axe %s: %s on %d node(s): %s", v["impact"], v["id"], len(v["nodes"]), v["help"])
    blocking = [
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:5]]}"
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, "\n".join(blocking)


def check_keyboard_filter(driver: Any, departments: list[str]) -> None:
    """The filter by keyboard alone: Tab from the top of the page reaches it, ArrowDown picks the first department
    (the view and the live status follow), ArrowUp goes back to all departments."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(10):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.execute_script("return document.activeElement.id") == "department-filter":
            break
    else:
        pytest.fail("ten Tabs from the top of the page did not reach the department filter")
    first = departments[0]
    ActionChains(driver).send_keys(Keys.ARROW_DOWN).perform()
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-selected") == first
    )
    assert driver.find_element(By.ID, "filter-status").text == f"Showing {first} only."
    for department in departments:
        chart = driver.find_element(By.CSS_SELECTOR, f'svg.forecast-chart[data-department="{department}"]')
        assert chart.is_displayed() == (department == first), department
    ActionChains(driver).send_keys(Keys.ARROW_UP).perform()
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-selected") == "")
    assert driver.find_element(By.ID, "filter-status").text == "Showing all departments."


def check_district_maps(driver: Any) -> list[str]:
    """Both maps drawn, one shape per district of the table behind them; returns the districts."""
    from selenium.webdriver.common.by import By

    districts = [
        row.text for row in driver.find_elements(By.CSS_SELECTOR, "table.district-map-table tbody th[scope=row]")
    ]
    assert len(districts) >= 3, districts
    for kind in ("days-map", "promises-map"):
        svg = driver.find_element(By.CSS_SELECTOR, f"svg.district-map.{kind}")
        assert svg.is_displayed() and svg.rect["width"] > 200 and svg.rect["height"] > 200, (kind, svg.rect)
        shapes = svg.find_elements(By.CSS_SELECTOR, "path.district")
        assert sorted(s.get_attribute("data-district") for s in shapes) == sorted(districts), kind
        assert all(s.rect["width"] > 3 for s in shapes), kind
        caption = driver.find_element(By.ID, svg.get_attribute("aria-labelledby"))
        assert caption.text, kind
    return districts


def check_page(driver: Any, url: str, screenshot: Path, axe: str | None) -> list[str]:
    """Open `url`, check every department's charts, the maps, accessibility and the filter (mouse and keyboard),
    save a screenshot; returns departments."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return window.eta311Ready === true"))
    if axe is not None:
        check_accessible(driver, axe)
    check_district_maps(driver)
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

    check_keyboard_filter(driver, departments)
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


def skip_without_axe(axe: str | None) -> None:
    if axe is None:
        pytest.skip(
            f"the page checks passed but accessibility was not checked: {AXE} missing (npm ci --prefix tests/a11y)"
        )


def test_static_report_renders_every_department_and_filters(
    forecast_city: dict, browser: Any, axe_script: str | None, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    out = tmp_path / "report"
    run_cli("forecast", str(forecast_city["data"]), "--out", str(out))
    departments = check_page(browser, (out / "index.html").as_uri(), tmp_path / "static_report.png", axe_script)
    assert "Sanitation" in departments
    # No ledger behind a static report: the promises view says so rather than showing a colour.
    caption = browser.find_element(By.ID, "map-promises-caption").text
    assert "No promises recorded yet" in caption, caption
    skip_without_axe(axe_script)


def test_live_dashboard_from_eta311_serve(
    forecast_city: dict, browser: Any, axe_script: str | None, tmp_path: Path
) -> None:
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
        check_page(browser, f"{server.url}/dashboard", tmp_path / "live_dashboard.png", axe_script)
    finally:
        server.stop()
    skip_without_axe(axe_script)
