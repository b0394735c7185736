"""dlsp.report.run_report and `dlsp report`: self-contained pages, checked in a real headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from dlsp.report.plots import loss_curves, spectrogram_panels

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
# Injected before the report's own content: records load errors and script errors, then, once every audio
# element has loaded its metadata (or failed), writes what it found into the DOM that --dump-dom prints.
CHECKER = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.src)
  || 'error').slice(0, 120)), true);
const origError = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ').slice(0, 120)); origError(...a); };
window.addEventListener('load', async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 ? null : new Promise(done => {
    a.addEventListener('loadedmetadata', done); a.addEventListener('error', done); a.load(); })));
  const out = document.createElement('pre');
  out.id = 'dlsp-check';
  out.textContent = JSON.stringify({
    errors: window.__errors,
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    audio: audios.map(a => [a.canPlayType('audio/wav'), a.duration, a.error ? a.error.code : 0]),
  });
  document.body.appendChild(out);
});
</script>"""


def make_run(folder: Path, name: str = "run", lr: float = 1e-3, epochs: int = 4, audio: bool = True) -> Path:
    run = folder / name
    (run / "samples").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "gru", "args": {"hidden": 8}},
                                                     "train": {"lr": lr, "epochs": epochs}}))
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "val_si_sdr": 3.0 + e,
                "seconds": 2.0 * e} for e in range(epochs)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    (run / "results.json").write_text(json.dumps({"best_epoch": epochs - 1, "val_loss": history[-1]["val_loss"],
                                                  "model": "gru"}))
    loss_curves(run / "loss.png", history, title=name)
    if audio:
        rng = np.random.default_rng(0)
        clean = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000)
        noisy = clean + 0.1 * rng.standard_normal(8000)
        for kind, signal in (("noisy", noisy), ("denoised", 0.9 * clean), ("clean", clean)):
            sf.write(run / "samples" / f"sample_1_{kind}.wav", signal.astype(np.float32), 8000)
        spectrogram_panels(run / "samples" / "sample_1.png", [("noisy", noisy), ("clean", clean)], 8000)
    return run


def test_single_run_page_embeds_everything(tmp_path, cli):
    run = make_run(tmp_path)
    code, _, err = cli("report", run)
    assert code == 0, err
    page = (run / "report.html").read_text()
    headings = ("Summary", "Curves", "Figures", "Audio examples", "Raw values")
    assert all(f"<h2>{heading}</h2>" in page for heading in headings)
    assert [page.index(f"<h2>{heading}</h2>") for heading in headings] == sorted(
        page.index(f"<h2>{heading}</h2>") for heading in headings)
    assert all(f"<h3>{name}</h3>" in page for name in ("results.json", "metrics.jsonl", "config.yaml"))
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 1 + 1 + 3 + 1  # curves, loss.png, 3 players, the example's spectrogram
    assert all(s.startswith(("data:image/png;base64,", "data:audio/wav;base64,")) for s in sources)
    assert "sample_1" in page and "0.001" in page


def test_page_opens_on_a_readable_summary_and_ends_on_raw_values(tmp_path, cli):
    run = make_run(tmp_path, audio=False)
    (run / "results.json").write_text(json.dumps({
        "best_epoch": 7, "epochs": 12, "stopped": "early stopping", "val_loss": -15.2, "val_si_sdr": 15.234,
        "val_si_sdr_improvement": 7.085, "model": "gru"}))
    assert cli("report", run)[0] == 0
    page = html.unescape((run / "report.html").read_text())
    assert page.index("<h2>Summary</h2>") < page.index("<h2>Curves</h2>") < page.index("<h2>Raw values</h2>")
    summary = page[page.index("<h2>Summary</h2>"):page.index("<h2>Curves</h2>")]
    for label, value in (("validation SI-SDR (dB)", "15.23"), ("validation SI-SDR gain (dB)", "7.08"),
                         ("best epoch", "7"), ("stopped by", "early stopping")):
        assert f"<td>{label}</td><td>{value}</td>" in summary
    assert "val_si_sdr" not in summary and "val_si_sdr_improvement" in page  # raw keys only at the end
    assert page.index("SI-SDR (dB)") < page.index("<h2>Raw values</h2>") < page.index("val_si_sdr_improvement")


def test_classification_and_speaker_results_read_well(tmp_path, cli):
    from dlsp.report.run_report import metric_label

    run = make_run(tmp_path, audio=False)
    labels = ["dog", "cat", "bird"]
    matrix = [[5, 1, 0], [0, 6, 0], [1, 0, 4]]
    test = {"accuracy": 0.8, "clip_accuracy": 0.85, "macro_f1": 0.84, "labels": labels, "confusion_matrix": matrix,
            "per_class": {name: {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 6} for name in labels}}
    (run / "results.json").write_text(json.dumps({"best_epoch": 3, "epochs": 4, "val_accuracy": 0.9,
                                                  "clips": {"train": 40, "test": 17}, "test": test}))
    assert cli("report", run)[0] == 0
    page = html.unescape((run / "report.html").read_text())
    assert "[[" not in page and "[5, 1, 0]" not in page
    assert "<td>test clip accuracy (%)</td><td>85.00</td>" in page and "<td>test macro F1</td><td>0.84</td>" in page
    assert "<th>precision</th>" in page  # per-class scores: one table, not one row per number
    assert "<th>dog</th>" in page  # the confusion matrix as a table headed by the class names
    loss_png = run / "loss.png"
    loss_png.rename(run / "confusion.png")
    assert cli("report", run)[0] == 0
    page = html.unescape((run / "report.html").read_text())
    assert "[[" not in page and "shown in confusion.png" in page
    assert metric_label("val_eer") == "validation EER (%)"
    assert metric_label("val_eer_fsdd") == "validation EER, fsdd (%)"
    assert metric_label("cohort_size") == "cohort size"


def test_compare_shows_results_and_only_differing_config(tmp_path, cli):
    a, b = make_run(tmp_path, "a", lr=1e-3), make_run(tmp_path, "b", lr=3e-4, audio=False)
    code, _, err = cli("report", "--compare", a, b, "-o", tmp_path / "cmp.html")
    assert code == 0, err
    page = html.unescape((tmp_path / "cmp.html").read_text())
    assert "Config differences" in page and "train.lr" in page and "model.args.hidden" not in page
    assert "<th>a</th>" in page and "<th>b</th>" in page
    assert "<td>best epoch</td><td>3</td><td>3</td>" in page and "<td>validation loss</td>" in page


def test_bad_report_requests_are_one_clear_line(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    broken = make_run(tmp_path, "broken", audio=False)
    (broken / "metrics.jsonl").write_text('{"epoch": 0}\nnot json\n')
    cases = [(["report", tmp_path / "missing"], "does not exist"),
             (["report", tmp_path / "empty"], "not a run folder"),
             (["report", broken], "line 2 is not JSON"),
             (["report"], "give one run folder")]
    for argv, message in cases:
        code, _, err = cli(*argv)
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (broken / "report.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (.ci/run installs the Debian package)")
def test_page_renders_in_headless_chromium(tmp_path, cli):
    run = make_run(tmp_path)
    assert cli("report", run)[0] == 0
    page = (run / "report.html").read_text()
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("<head>", "<head>" + CHECKER, 1))
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
             "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'profile'}"]
    result = subprocess.run([*flags, "--virtual-time-budget=15000", "--dump-dom", checked.as_uri()],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="dlsp-check">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    report = json.loads(html.unescape(found.group(1)))
    assert report["errors"] == []
    assert len(report["images"]) == 3 and all(done and w > 0 and h > 0 for done, w, h in report["images"])
    assert len(report["audio"]) == 3
    for can_play, duration, error in report["audio"]:
        assert can_play in ("maybe", "probably") and error == 0 and duration == pytest.approx(1.0, abs=0.01)
    artifacts = Path(os.environ.get("DLSP_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "report_screenshot.png"
    subprocess.run([*flags, "--hide-scrollbars", "--window-size=1200,2000", f"--screenshot={screenshot}",
                    (run / "report.html").as_uri()], capture_output=True, timeout=120, check=True)
    assert screenshot.stat().st_size > 10_000
