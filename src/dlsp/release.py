"""Release tools: publishing trained models into the package (`make pretrained-*`) and checking an ONNX export
against torch (`dlsp denoise export --check`).

They use model files, ONNX export and inference together, so they live above all three: the modules below never
import each other back.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlsp.denoise.enhance import Denoiser
from dlsp.denoise.export import export_onnx
from dlsp.denoise.model_file import DEFAULT_MODEL_NAME as DEFAULT_DENOISER_NAME
from dlsp.denoise.model_file import DenoiserModel, load_denoiser, save_denoiser
from dlsp.errors import DlspError
from dlsp.fileio import atomic_path
from dlsp.paths import PRETRAINED_DIR
from dlsp.speaker.model_file import DEFAULT_MODEL_NAME as DEFAULT_SPEAKER_NAME
from dlsp.speaker.model_file import load_speaker_model, save_speaker_model, scoring_payload
from dlsp.speaker.scoring import Scorer
from dlsp.train.checkpoint import round_to_half

MAX_DENOISER_BYTES = 5 * 1024 * 1024
DENOISER_PROVENANCE = (
    "Trained by recipes/denoise_default.yaml on ../shared/data: speech from the Free Spoken Digit Dataset "
    "(CC BY-SA 4.0), Arabic Speech Commands (CC BY 4.0, Ghandoura et al. 2021) and speechocean762 (Zhang et al. "
    "2021; Apache 2.0); noise from Timgrau/Projektarbeit-1 household/street clips (CC0), the Speech Commands "
    "background noises (CC BY 4.0, Warden 2018) and moodist's ambient recordings (Pixabay Content License / CC0). "
    "Never trained on: the cross-corpus benchmark's speakers and noise kinds (dlsp.data.holdout, @crosscorpus)."
)
MAX_SPEAKER_BYTES = 10 * 1024 * 1024
SPEAKER_PROVENANCE = (
    "Two encoders trained by recipes/speaker_wideband.yaml (train.seed 0 and 1) on ../shared/data, combined by "
    "'dlsp speaker ensemble': 109 of the 125 speechocean762 speakers (Zhang et al. 2021; Apache 2.0) and the 18 "
    "training speakers of Arabic Speech Commands (CC BY 4.0, Ghandoura et al. 2021), each also at 0.9x and 1.1x "
    "speed, batches balanced between the two corpora. The 16 held-out speechocean762 speakers (dlsp.data.holdout) "
    "and the 6 Arabic validation speakers select each member's checkpoint and set the thresholds; no Free Spoken "
    "Digit Dataset speaker is trained on."
)


def publish_denoiser(source: str | os.PathLike[str], target: str | os.PathLike[str] | None = None,
                     name: str | None = None, recipe: str = "recipes/denoise_default.yaml") -> Path:
    """Copy a trained model file into the package as the default denoiser (or, with `name`, as the bundled
    model of that name), with its provenance and its ONNX export beside it (`model.onnx`, which the CPU runs
    with onnxruntime; see `dlsp.denoise.export.companion_onnx`).

    Weights are stored as float16 (the model computes with the rounded weights; evaluate the published file).
    Refuses models whose two files together exceed 5 MB (the package must stay small). Needs `dlsp[onnx]`.
    """
    loaded = load_denoiser(source)
    if target is None:
        target = PRETRAINED_DIR / (f"denoiser_{name}.pt" if name else DEFAULT_DENOISER_NAME)
    target = Path(target)
    provenance = DENOISER_PROVENANCE.replace("recipes/denoise_default.yaml", recipe)
    round_to_half(loaded.model)  # the export below then holds exactly the weights the float16 file will
    # Both files are written beside the target first and renamed only when both exist and fit: a failed export or
    # an oversized model leaves the published pair as it was.
    staged_onnx = export_onnx(loaded, target.with_name(f".{target.stem}.publishing.onnx"))
    staged = target.with_name(f".{target.name}.publishing")
    try:
        save_denoiser(staged, loaded.model, loaded.name, sample_rate=loaded.sample_rate, stft=loaded.stft,
                      config=loaded.config, provenance=provenance, half=True)
        size = staged.stat().st_size + staged_onnx.stat().st_size
        if size > MAX_DENOISER_BYTES:
            raise DlspError(f"model and its ONNX export are {size / 2**20:.1f} MB; a bundled model must be at most "
                            f"5 MB", source)
        os.replace(staged, target)
        os.replace(staged_onnx, target.with_suffix(".onnx"))
    finally:
        staged.unlink(missing_ok=True)
        staged_onnx.unlink(missing_ok=True)
    return target


def publish_speaker(source: str | os.PathLike[str], target: str | os.PathLike[str] | None = None,
                    **extra: Any) -> Path:
    """Copy a trained model file into the package as the default speaker encoder, with its provenance.

    `extra` adds plain-data fields (e.g. held-out results). Refuses models over 10 MB.
    """
    loaded = load_speaker_model(source)
    target = Path(target) if target is not None else PRETRAINED_DIR / DEFAULT_SPEAKER_NAME
    payload = torch.load(Path(source), map_location="cpu", weights_only=True)
    kept = {k: payload[k] for k in ("val_eer", "epoch", "members") if k in payload}
    # A file stored at half precision (an ensemble) stays so: its weights are already the rounded ones.
    half = any(v.dtype == torch.float16 for v in payload["state_dict"].values())
    path = save_speaker_model(target, loaded.model, loaded.name, sample_rate=loaded.sample_rate,
                              threshold=loaded.threshold, trim_db=loaded.trim_db, config=loaded.config,
                              scorer=loaded.scorer, window_seconds=loaded.window_seconds,
                              hop_seconds=loaded.hop_seconds, provenance=SPEAKER_PROVENANCE, half=half, **kept,
                              **extra)
    size = path.stat().st_size
    if size > MAX_SPEAKER_BYTES:
        path.unlink()
        raise DlspError(f"model file is {size / 2**20:.1f} MB; the default model must be at most 10 MB", source)
    return path


def ensemble_speakers(sources: list[str | os.PathLike[str]], data: list[str], out: str | os.PathLike[str],
                      format: str = "auto", device: str = "cpu") -> dict[str, Any]:
    """Write a model file embedding with every speaker model of `sources` at once (`SpeakerEnsemble`: the
    members' unit embeddings side by side, so its cosine is the mean of theirs), its weights stored at half
    precision (the model computes with the rounded weights, so what is calibrated is what ships).

    The members must take one sample rate, silence trimming and windowing. The first member's config says how
    to score (`score` section) and names the training and validation speakers, found in `data` as training
    found them: the ensemble gets its own AS-norm cohort from the training speakers and its own thresholds and
    rate tables on the validation speakers (`dlsp.speaker.validation.calibrate_scoring`), as training sets a
    model's. Returns the summary of that calibration with the validation EER (`val_eer`, per corpus too).
    """
    from dlsp.config import from_dict, to_dict
    from dlsp.device import resolve_device
    from dlsp.models.speaker import SpeakerEncoder, SpeakerEnsemble
    from dlsp.speaker.train import SpeakerTrainConfig, load_data
    from dlsp.speaker.validation import calibrate_scoring, validation_eer

    if len(sources) < 2:
        raise DlspError("an ensemble needs two or more speaker model files")
    members = [load_speaker_model(source) for source in sources]
    first = members[0]
    for source, member in zip(sources, members, strict=True):
        if not isinstance(member.model, SpeakerEncoder):
            raise DlspError("an ensemble's members are single encoders, not ensembles", source)
        settings = (member.sample_rate, member.trim_db, member.window_seconds, member.hop_seconds)
        if settings != (first.sample_rate, first.trim_db, first.window_seconds, first.hop_seconds):
            raise DlspError(f"member embeds at {settings[0]} Hz, trimming at {settings[1]:g} dB, windows "
                            f"{settings[2]:g}/{settings[3]:g} s; the first member at {first.sample_rate} Hz, "
                            f"{first.trim_db:g} dB, {first.window_seconds:g}/{first.hop_seconds:g} s", source)
    ensemble = round_to_half(SpeakerEnsemble.of([member.model for member in members]))
    config = from_dict(SpeakerTrainConfig, first.config)
    loaded_data = load_data(config, data, format, progress=False)
    run_on = resolve_device(device)
    record = validation_eer(ensemble.to(run_on), loaded_data.val, run_on, config.score, first.sample_rate)
    scorer, summary = calibrate_scoring(ensemble, loaded_data.train, loaded_data.val, config.score, run_on,
                                        first.sample_rate, config.train.seed)
    path = save_speaker_model(out, ensemble.cpu(), "ensemble", sample_rate=first.sample_rate,
                              threshold=record["val_threshold"], trim_db=first.trim_db, config=to_dict(config),
                              scorer=scorer, window_seconds=first.window_seconds, hop_seconds=first.hop_seconds,
                              half=True, val_eer=record["val_eer"],
                              members=[{"file": Path(source).name, "model_id": member.model_id}
                                       for source, member in zip(sources, members, strict=True)])
    return {**record, **summary, "path": str(path), "bytes": path.stat().st_size}


def compare_engines(model: DenoiserModel, onnx_model: DenoiserModel, seconds: float = 2.0, seed: int = 0) -> float:
    """Max absolute difference between the torch and ONNX denoisers on a random signal (on the CPU)."""
    rng = np.random.default_rng(seed)
    signal = (0.1 * rng.standard_normal(max(1, round(seconds * model.sample_rate)))).astype(np.float32)
    with_torch = Denoiser(model, "cpu", engine="torch").enhance(signal, model.sample_rate)
    with_onnx = Denoiser(onnx_model, "cpu", engine="onnx").enhance(signal, model.sample_rate)
    return float(np.max(np.abs(with_torch - with_onnx)))


def recalibrate_speaker(path: str | os.PathLike[str], data: list[str], format: str = "auto",
                        target_far: float | str | None = "keep", device: str = "cpu",
                        enroll_clips: int | str = "keep", enroll_sizes: list[int] | str = "keep",
                        far_over_corpora: str = "keep") -> Scorer:
    """Set a speaker model file's thresholds again as training sets them at its end
    (`dlsp.speaker.validation.calibrate_thresholds`: the wideband one and, for models at 12.5 kHz or more, the
    narrowband one, with their rate tables), on the validation speakers its own config names, found in `data`,
    with the cohort stored in the file. `target_far`: a validation false-accept rate to set them at, `None` for the
    EER, "keep" for the config's `score.target_far`; `enroll_clips`: set them on speaker models of that many clips
    against one (0: on clip pairs; "keep": the config's `score.enroll_clips`); `enroll_sizes`: also set them on
    speaker models of each of these sizes (`[]`: none; "keep": the config's); `far_over_corpora`: "every" holds
    the wideband rate in every validation corpus, "mean" on their average ("keep": the config's); the config
    records them. The file is rewritten atomically; weights, cohort and the raw cosine threshold stay as they
    were. Gives files trained before the narrowband rule existed their narrowband threshold."""
    from dlsp.config import from_dict, to_dict
    from dlsp.device import resolve_device
    from dlsp.speaker.train import SpeakerTrainConfig, load_data
    from dlsp.speaker.validation import ScoreSection, calibrate_thresholds, check_score

    changes = {name: value for name, value in (("target_far", target_far), ("enroll_clips", enroll_clips),
                                               ("enroll_sizes", enroll_sizes), ("far_over_corpora", far_over_corpora))
               if value != "keep"}
    check_score(ScoreSection(**changes))  # before any work
    loaded = load_speaker_model(path)
    config = from_dict(SpeakerTrainConfig, loaded.config)
    config = dataclasses.replace(config, score=dataclasses.replace(config.score, **changes))
    val = load_data(config, data, format, progress=False).val
    scorer, _ = calibrate_thresholds(loaded.model, val, loaded.scorer, config.score, resolve_device(device),
                                     loaded.sample_rate)
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    payload["scoring"] = scoring_payload(scorer)  # the cohort stays where it is, in payload["cohort"]
    payload["config"] = to_dict(config)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return scorer
