"""The report as a person sees it: report.html opened by a real browser (Debian's chromium, headless).
Every image decodes, nothing overflows the page at 1280 px, the console stays clean and the page is
not blank; the galleries are bounded. Where no browser is installed the test skips with one line,
except in CI (CI=true), where .ci/run installs chromium and a missing browser fails."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from PIL import Image

from edgeclf.core.config import BenchConfig, load_config

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
CHECK = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || (e.target && e.target.src))), true);
const original = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); original(...args); };
window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {
    images: images.length,
    broken: images.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt),
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    errors: window.__errors,
  };
  const out = document.createElement("pre");
  out.id = "edgeclf-check";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    """The fixture run evaluated, benched (briefly) and reported, with at most 2 images per gallery."""
    from edgeclf.measure.bench import run_bench
    from edgeclf.measure.evaluate import evaluate_run
    from edgeclf.measure.report import build_report

    run = shutil.copytree(tiny_run, tmp_path_factory.mktemp("browser") / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["report"] = {"gallery_images": 2, "thumbnail_px": 112}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    evaluate_run(run, "test")
    run_bench(run, BenchConfig(**{**load_config().bench.model_dump(), "runs": 5, "warmup": 1, "batch_sizes": [1]}))
    build_report(run)
    return run / "reports" / "report.html"


def _browser():
    if BROWSER is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium in CI: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium here (apt-get install chromium): the report's browser check needs one")
    return BROWSER


def _chromium(*args, timeout: int = 120) -> subprocess.CompletedProcess:
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"]
    return subprocess.run([_browser(), *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # a bench, a report and a browser: about 40 s
def test_the_report_in_a_real_browser(report, tmp_path):
    checked = tmp_path / "report.html"
    checked.write_text(report.read_text().replace("<head>", "<head>" + CHECK, 1))
    proc = _chromium("--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    match = re.search(r'<pre id="edgeclf-check">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stderr[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["images"] >= 4 and result["broken"] == [], result
    assert result["scrollWidth"] <= result["clientWidth"] == 1280, result  # no horizontal overflow
    assert result["errors"] == [], result
    shot = tmp_path / "shot.png"
    proc = _chromium(f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (900, 1280) and pixels.std() > 10  # not a blank page


@pytest.mark.slow
def test_the_galleries_are_bounded_and_the_page_stays_small(report):
    page = report.read_text()
    for title in ("What the float model gets wrong", "Where int8 answers otherwise", "Right answers, per class"):
        section = page.split(title, 1)[1].split("<h2>", 1)[0]
        assert section.count("<figure>") <= 2, title
    assert "Right answers, per class" in page and page.count("<figure>") >= 2
    assert len(page.encode()) < 3 * 2**20  # one self-contained file of a few MB at most
    assert "src='http" not in page and 'src="http' not in page  # no external assets
