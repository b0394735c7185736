"""`dlsp demo` end to end on a tiny synthetic corpus: real data, real training, a real report."""

from __future__ import annotations

import json

from dlsp.denoise.demo import DemoConfig, run_demo, summary_table


def test_tiny_demo_improves_si_sdr_and_writes_a_report(tmp_path):
    config = DemoConfig(out=str(tmp_path / "demo"), speakers=5, utterances=4, mixtures=24, train_seconds=300.0,
                        epochs=5, examples=1, device="cpu")
    results = run_demo(config, progress=False, log=lambda *a: None)
    out = tmp_path / "demo"
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["metrics"]) == {"snr", "si_sdr", "pesq", "stoi"}
    assert saved["metrics"]["si_sdr"]["after"] > saved["metrics"]["si_sdr"]["before"] + 1.0
    for name in ("report.html", "run/loss.png", "run/best.pt"):
        assert (out / name).stat().st_size > 0
    example = results["files"][0]["name"]
    assert (out / "examples" / f"{example}.png").exists()
    assert (out / "examples" / f"{example}_denoised.wav").exists()
    assert len(list((out / "denoised").glob("*.wav"))) == len(results["files"])
    html = (out / "report.html").read_text()
    assert "<audio" in html and "SI-SDR" in summary_table(results["metrics"])


def test_demo_cli_prints_the_table(tmp_path, cli):
    code, out, err = cli("demo", "--out", tmp_path / "d", "--speakers", "4", "--mixtures", "12", "--seconds", "2",
                         "--quiet", "--device", "cpu")
    assert code == 0, err
    assert "SI-SDR (dB)" in out and "report:" in out
