"""The HTML report: every shipped scenario, self-contained HTML, run --json's numbers, a real browser."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from forecast.analyses.drivers import deals_that_matter, drivers
from forecast.config.loading import load_scenario
from forecast.engine.simulate import simulate
from forecast.engine.summary import summarize
from forecast.inputs.pipeline import load_deals
from forecast.reporting.charts import text_histogram
from forecast.reporting.html import write_report
from forecast.reporting.words import chance, deals_sentence, verdict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCENARIOS = sorted(p for p in CONFIGS.glob("*.yaml") if "\nperiod:" in p.read_text())
TRIALS = 3000
VOID = {
    "meta",
    "br",
    "img",
    "input",
    "link",
    "hr",
    "path",
    "use",
    "rect",
    "circle",
    "line",
    "polyline",
    "stop",
}


class _Checker(HTMLParser):
    """Records tags, attributes and nesting errors of an HTML document."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[dict] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "script":
            self.scripts.append(attributes)
        self.urls += [value for key, value in attrs if key in ("src", "href") and value and "://" in value]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _report(config: Path, folder: Path, png: bool = False):
    scenario = load_scenario(config)
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    out = folder / f"{config.stem}.html"
    result = write_report(scenario, deals, out, folder / "png" if png else None, trials=TRIALS)
    return scenario, deals, out, result


@pytest.mark.parametrize("config", SCENARIOS, ids=lambda path: path.name)
def test_report_for_every_shipped_scenario(config, tmp_path):
    scenario, deals, out, result = _report(config, tmp_path)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert checker.urls == [] or all(
        url.startswith("http://www.w3.org/") for url in checker.urls
    )  # SVG namespaces
    assert all("src" not in script for script in checker.scripts)  # no external script
    expected = {"chart-distribution", "chart-s-curve", "chart-split", "chart-by-owner", "chart-by-region"}
    expected |= {"chart-plans"} if scenario.plans else set()
    expected |= {"deals-that-matter", "diagnosis"} if scenario.quota is not None else set()
    assert expected <= checker.ids
    assert {f"chart-{key}" for key in result["charts"]} == {i for i in checker.ids if i.startswith("chart-")}
    assert ("diagnosis" in checker.ids) == (scenario.quota is not None)
    # the headline's numbers are run --json's, for the same trials and seed
    forecast = simulate(scenario, deals, trials=TRIALS, by=("owner", "region"), independent=True)
    summary = summarize(forecast)
    assert summary == result["summary"]
    headline = html.unescape(re.search(r'<p class="headline" id="headline">(.*?)</p>', page).group(1))
    if scenario.quota is not None:
        p = next(t for t in summary["targets"] if t["name"] == scenario.quota.name)["probability"]
        quota = f"{scenario.quota.at_least:,.0f} {scenario.quota.name}"
        assert headline.startswith(f"{chance(p)} chance to reach the {quota}: {verdict(p)}.")
        matter = deals_that_matter(forecast, drivers(forecast))
        assert deals_sentence(matter) in headline
        assert ("chart-drivers" in checker.ids) == bool(matter["deals"])
    for name in scenario.plans:  # every goal a plan raises is said, with its chance in words
        from forecast.analyses.compare import compare_plans

        base, plan = compare_plans(scenario, deals, [name], trials=TRIALS, levels=())
        raised = {t["name"]: t["at_least"] for t in base["targets"]}
        for goal in plan["targets"]:
            if goal["at_least"] > raised.get(goal["name"], -1):
                said = f"{goal['name']} {verdict(goal['probability'])} ({chance(goal['probability'])})"
                assert f"The {name} plan: " in headline and said in headline


def test_png_charts_for_slides(tmp_path):
    _, _, _, result = _report(CONFIGS / "stretch.yaml", tmp_path, png=True)
    for key in result["charts"]:
        assert (tmp_path / "png" / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "The stretch plan: 1,500,000 quota out of reach" in result["headline"]


def test_text_histogram_marks_the_quota():
    revenue = np.array([1.0, 2.0, 2.5, 3.0, 9.0])
    lines = text_histogram(revenue, quota=2.6, bins=4, width=10).splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("<- quota") and lines[0].count("#") == 10  # 1, 2 and 2.5: the fullest bin
    assert [line.count("#") for line in lines[1:]] == [3, 0, 3]


def _browser() -> str | None:
    """Chromium or Chrome where it is installed (``.ci/run`` installs Debian's), else None."""
    found = (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))
    return next((path for path in found if path), None)


def _chromium(browser: str, *arguments: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1200,2400",
        ]  # fmt: skip
        return subprocess.run([browser, *flags, *arguments], capture_output=True, text=True, timeout=120)


def test_a_real_browser_draws_the_report(tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's where it can)")
    _, _, out, result = _report(CONFIGS / "stretch.yaml", tmp_path)
    dom = _chromium(browser, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert ":CONSOLE" not in dom.stderr  # no console message, let alone an error
    assert 'data-measured="yes"' in dom.stdout
    for key in result["charts"]:
        size = re.search(
            rf'id="chart-{key}"[^>]*data-drawn-width="(\d+)" data-drawn-height="(\d+)"', dom.stdout
        )
        assert size and int(size.group(1)) > 100 and int(size.group(2)) > 50, key
    shot = tmp_path / "shot.png"
    _chromium(browser, f"--screenshot={shot}", out.as_uri())
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.std() > 0.05  # not blank
    assert np.mean(pixels.mean(axis=2) < 0.9) > 0.02  # ink on a good share of the page


def test_a_backtest_adds_forecast_against_actual(tmp_path):
    scenario = load_scenario(CONFIGS / "example.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    rows = [
        {"origin": origin, "part": part, "p10": 80.0 + shift, "p50": 100.0 + shift, "p90": 120.0 + shift,
         "actual": actual}
        for origin, shift, actual in (("2026-04-06", 0.0, 95.0), ("2026-04-13", 10.0, 140.0))
        for part in ("open", "new", "total")
    ]  # fmt: skip
    summary = {part: {"pit_histogram": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1], "verdict": "too narrow"}
               for part in ("open", "new", "total")}  # fmt: skip
    past = {"origins": rows, "summary": summary}
    result = write_report(scenario, deals, tmp_path / "r.html", trials=TRIALS, backtest=past)
    assert result["charts"][-2:] == ["backtest", "backtest-pit"]
    page = (tmp_path / "r.html").read_text()
    assert "id='chart-backtest'" in page and "id='chart-backtest-pit'" in page


def test_a_scenario_without_a_revenue_target_gets_a_report_without_drivers(tmp_path):
    scenario = load_scenario(CONFIGS / "stretch.yaml")
    scenario = scenario.model_copy(update={"targets": [t for t in scenario.targets if t.metric != "revenue"]})
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    result = write_report(scenario, deals, tmp_path / "r.html", trials=TRIALS)
    page = (tmp_path / "r.html").read_text()
    assert "drivers" not in result["charts"] and "deals-that-matter" not in page and "diagnosis" not in page
    assert result["headline"].startswith("Expected revenue ")
    assert "The stretch plan: 5 new customers on track" in result["headline"]
    assert "1,500,000 revenue out of reach" in result["headline"]  # a goal the base does not have


def test_the_report_names_deals_with_what_a_manager_knows_them_by(tmp_path):
    scenario = load_scenario(CONFIGS / "stretch.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    out = tmp_path / "r.html"
    result = write_report(scenario, deals, out, trials=20_000)  # at 3,000 no deal stands out
    # the export's Account column, owner, stage and amount beside each id
    assert re.search(r"OPP-\d{4} \(Account \d{3}, [A-Z][a-z]+ [A-Z][a-z]+, [A-Z][a-z]+, [\d,]+; \d+\.\d\)",
                     result["headline"])  # fmt: skip
    assert "<table id='deals'>" in out.read_text()


def test_the_report_simulates_the_base_once(tmp_path, monkeypatch):
    """The plans reuse the report's own simulation of the scenario as their base."""
    import forecast.analyses.compare
    import forecast.analyses.report
    import forecast.engine.simulate

    scenario = load_scenario(CONFIGS / "stretch.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    calls = []
    # plans imports simulate from its module when it runs a plan (validation imports plans, not numba)
    for module in (forecast.analyses.report, forecast.analyses.compare, forecast.engine.simulate):

        def counted(plan_scenario, plan_deals, *args, _simulate=module.simulate, **kwargs):
            calls.append(plan_scenario is scenario and plan_deals is deals)
            return _simulate(plan_scenario, plan_deals, *args, **kwargs)

        monkeypatch.setattr(module, "simulate", counted)
    write_report(scenario, deals, tmp_path / "r.html", trials=TRIALS)
    assert calls.count(True) == 1 and len(calls) >= 1 + len(scenario.plans)  # the base, then each plan


def test_the_report_draws_a_rep_whose_mean_lies_above_p90(tmp_path):
    """One rep with a single unlikely deal: P10 = P90 = 0 below a mean above 0. The attainment chart
    drew P10-P90 as error bars around the mean and crashed (negative error) on such a rep."""
    (tmp_path / "deals.csv").write_text(
        "deal_id,amount,stage,close_date,owner\nA,100000,Proposal,2026-11-01,Ann\n"
        "B,1000,Proposal,2026-11-01,Bob\nC,1000,Negotiation,2026-11-02,Bob\n"
    )
    (tmp_path / "s.yaml").write_text(
        "period: 2026-Q4\npipeline: {path: deals.csv}\n"
        "stages: [{name: Proposal, win_rate: 0.05}, {name: Negotiation, win_rate: 0.9}]\n"
        "quotas: {owner: {Ann: 50000, Bob: 1500}}\nsimulation: {trials: 2000}\n"
    )
    scenario = load_scenario(tmp_path / "s.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    summary = summarize(simulate(scenario, deals))
    ann = next(row for row in summary["breakdown"]["owner"] if row["name"] == "Ann")
    assert ann["revenue"]["mean"] > ann["revenue"]["p90"] == 0  # the case that crashed
    write_report(scenario, deals, tmp_path / "r.html", trials=2000)
    assert "by-owner" in (tmp_path / "r.html").read_text()
