"""dlsp.denoise.export and `dlsp denoise export`: ONNX output equals torch, files describe themselves."""

from __future__ import annotations

import contextlib
import io
import re
import sys

import numpy as np
import pytest
import torch

from dlsp.audio.stft import StftConfig
from dlsp.denoise.enhance import Denoiser
from dlsp.denoise.model_file import DenoiserModel, load_denoiser, save_denoiser
from dlsp.errors import DlspError
from dlsp.models.denoisers import MODELS, build_denoiser

onnx = pytest.importorskip("onnx", reason="ONNX tests need onnx (pip install 'dlsp[onnx]')")
pytest.importorskip("onnxruntime", reason="ONNX tests need onnxruntime (pip install 'dlsp[onnx]')")
pytest.importorskip("onnxscript", reason="ONNX export tests need onnxscript (pip install 'dlsp[onnx]')")

from dlsp.denoise.export import export_onnx, load_onnx_denoiser  # noqa: E402
from dlsp.release import compare_engines  # noqa: E402

SR = 8000
STFT = StftConfig(n_fft=128, hop_length=32)
CONFIG = {"model": "linear", "epochs": 3, "note": "exported in a test"}


def tiny_network(name: str = "linear", seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_denoiser(name, n_freqs=STFT.n_freqs, **kwargs).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export for the module, through the real CLI with --check: `(model.pt, model.onnx, code, stdout)`."""
    from dlsp.cli import main

    folder = tmp_path_factory.mktemp("export")
    network = tiny_network("linear", hidden=[8], context=3, causal=True)
    model_path = save_denoiser(folder / "model.pt", network, "linear", sample_rate=SR, stft=STFT, config=CONFIG)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["denoise", "export", "--model", str(model_path), "-o", str(folder / "model.onnx"), "--check"])
    return model_path, folder / "model.onnx", code, stdout.getvalue() + stderr.getvalue()


def noise(rng: np.random.Generator, shape) -> np.ndarray:
    return (0.2 * rng.standard_normal(shape)).astype(np.float32)


def test_cli_export_writes_the_file_and_checks_it(exported):
    _, onnx_path, code, output = exported
    assert code == 0, output
    assert onnx_path.is_file() and "wrote" in output
    difference = float(re.search(r"max \|onnxruntime - torch\| = (\S+)", output).group(1))
    assert difference <= 1e-4


def test_onnx_engine_matches_torch(exported, rng):
    model_path, onnx_path, _, _ = exported
    with_onnx = Denoiser.from_file(onnx_path, device="cpu", chunk_seconds=0.05, onnx_threads=1)
    with_torch = Denoiser.from_file(model_path, device="cpu", chunk_seconds=0.05, engine="torch")
    assert with_onnx.engine == "onnx" and with_torch.engine == "torch"
    for audio, rate in ((noise(rng, 5000), SR), (noise(rng, (2, 7000)), 16000)):
        np.testing.assert_allclose(with_onnx.enhance(audio, rate), with_torch.enhance(audio, rate), atol=1e-4,
                                   rtol=0)


def test_streaming_through_onnx_equals_offline_torch(exported, rng):
    model_path, onnx_path, _, _ = exported
    audio = noise(rng, 3000)
    stream = Denoiser.from_file(onnx_path, device="cpu").stream()
    blocks = [stream.process(audio[start:start + 97]) for start in range(0, audio.size, 97)]
    streamed = np.concatenate([*blocks, stream.flush()])
    expected = Denoiser.from_file(model_path, device="cpu", engine="torch").enhance(audio, SR)
    np.testing.assert_allclose(streamed, expected, atol=1e-4, rtol=0)


def test_the_onnx_export_beside_a_model_file_runs_it_on_the_cpu(exported, rng):
    model_path, _, _, _ = exported  # model.onnx was exported from model.pt into the same folder
    auto = Denoiser.from_file(model_path, device="cpu", chunk_seconds=0.05)
    assert auto.engine == "onnx" and auto.model.path.suffix == ".onnx"
    audio = noise(rng, 5000)
    expected = Denoiser.from_file(model_path, device="cpu", chunk_seconds=0.05, engine="torch").enhance(audio, SR)
    np.testing.assert_allclose(auto.enhance(audio, SR), expected, atol=1e-4, rtol=0)


def test_an_onnx_file_beside_a_model_is_used_only_if_it_holds_the_same_weights(exported, tmp_path, monkeypatch):
    import shutil

    model_path, onnx_path, _, _ = exported
    other = save_denoiser(tmp_path / "model.pt", tiny_network("linear", seed=1, hidden=[8], context=3, causal=True),
                          "linear", sample_rate=SR, stft=STFT, config=CONFIG)
    shutil.copy(onnx_path, tmp_path / "model.onnx")  # the export of different weights
    assert Denoiser.from_file(other, device="cpu").engine == "torch"
    (tmp_path / "model.onnx").write_bytes(b"damaged")
    assert Denoiser.from_file(other, device="cpu").engine == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    assert Denoiser.from_file(model_path, device="cpu").engine == "torch"  # no onnxruntime: torch still works


def test_weights_stored_as_float16_export_as_float16(tmp_path, rng):
    from onnx import TensorProto

    network = tiny_network("gru", hidden=32, layers=2)
    full = save_denoiser(tmp_path / "full" / "gru.pt", network, "gru", sample_rate=SR, stft=STFT)
    export_onnx(load_denoiser(full), tmp_path / "full" / "gru.onnx")
    from dlsp.train.checkpoint import round_to_half

    half = save_denoiser(tmp_path / "half" / "gru.pt", round_to_half(network), "gru", sample_rate=SR, stft=STFT,
                         half=True)
    model = load_denoiser(half)
    export_onnx(model, tmp_path / "half" / "gru.onnx")
    kinds = {init.data_type for init in onnx.load(str(tmp_path / "half" / "gru.onnx")).graph.initializer}
    assert TensorProto.FLOAT16 in kinds
    assert (tmp_path / "half" / "gru.onnx").stat().st_size < 0.8 * (tmp_path / "full" / "gru.onnx").stat().st_size
    assert compare_engines(model, load_onnx_denoiser(tmp_path / "half" / "gru.onnx")) <= 1e-4


def test_publishing_writes_a_half_size_model_and_its_export_and_enforces_the_size_limit(tmp_path, monkeypatch):
    from dlsp import release

    trained = save_denoiser(tmp_path / "run" / "best.pt", tiny_network("gru", hidden=32, layers=2), "gru",
                            sample_rate=SR, stft=STFT, config=CONFIG)
    target = release.publish_denoiser(trained, target=tmp_path / "pkg" / "denoiser.pt", recipe="recipes/x.yaml")
    assert sorted(p.name for p in target.parent.iterdir()) == ["denoiser.onnx", "denoiser.pt"]
    payload = torch.load(target, map_location="cpu", weights_only=True)
    assert payload["state_dict"]["gru.weight_hh_l0"].dtype == torch.float16
    assert "recipes/x.yaml" in payload["provenance"]
    assert Denoiser.from_file(target, device="cpu").engine == "onnx"
    before = {p.name: p.read_bytes() for p in target.parent.iterdir()}
    other = save_denoiser(tmp_path / "run2" / "best.pt", tiny_network("gru", seed=3, hidden=32, layers=2), "gru",
                          sample_rate=SR, stft=STFT, config=CONFIG)
    monkeypatch.setattr(release, "MAX_DENOISER_BYTES", 10_000)
    with pytest.raises(DlspError, match="at most 5 MB"):
        release.publish_denoiser(other, target=target)
    assert {p.name: p.read_bytes() for p in target.parent.iterdir()} == before  # the published pair is untouched


def test_metadata_round_trip(exported):
    model_path, onnx_path, _, _ = exported
    original, loaded = load_denoiser(model_path), load_onnx_denoiser(onnx_path)
    assert (loaded.name, loaded.sample_rate, loaded.stft, loaded.config) == (
        original.name, original.sample_rate, original.stft, original.config)
    assert loaded.model.receptive_field == original.model.receptive_field == (3, 0)
    assert loaded.model.time_multiple == 1 and loaded.model.causal is True
    assert loaded.model.get_model_args() == original.model.get_model_args()
    proto = onnx.load(str(onnx_path))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["dlsp.format"] == "dlsp-denoiser-onnx/1" and props["dlsp.sample_rate"] == str(SR)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == STFT.n_freqs and dims[2].dim_param  # frames are dynamic


def test_engine_onnx_exports_a_torch_model_in_memory(rng):
    model = DenoiserModel(tiny_network("linear", hidden=[8], context=2), "linear", SR, STFT)
    audio = noise(rng, 4000)
    expected = Denoiser(model, chunk_seconds=0.1).enhance(audio, SR)
    got = Denoiser(model, chunk_seconds=0.1, engine="onnx").enhance(audio, SR)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_files_that_are_not_dlsp_onnx_models_are_refused(tmp_path, exported, cli, write_wav, rng):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(DlspError, match="not a dlsp denoiser"):
        load_onnx_denoiser(tmp_path / "plain.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00 not a protobuf")
    with pytest.raises(DlspError, match="not a readable ONNX"):
        load_onnx_denoiser(tmp_path / "garbage.onnx")
    with pytest.raises(DlspError, match="only with engine 'onnx'"):
        Denoiser.from_file(exported[1], engine="torch")
    src = write_wav("a.wav", noise(rng, 4000), SR)
    code, _, err = cli("denoise", "run", src, "-o", tmp_path / "out", "--model", tmp_path / "plain.onnx")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "plain.onnx" in err


def test_bad_export_requests_are_refused(tmp_path, exported, cli):
    model = load_denoiser(exported[0])
    with pytest.raises(DlspError, match=r"\.onnx"):
        export_onnx(model, tmp_path / "model.bin")
    code, _, err = cli("denoise", "export", "--model", exported[0], "-o", tmp_path / "model.txt")
    assert code == 2 and "model.txt" in err
    code, _, err = cli("denoise", "export", "--model", tmp_path / "missing.pt", "-o", tmp_path / "m.onnx")
    assert code == 2 and "missing.pt" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_missing_onnxruntime_names_the_extra(monkeypatch, exported):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(DlspError, match=r"pip install 'dlsp\[onnx\]'"):
        load_onnx_denoiser(exported[1])


SLOW_MODELS = {
    "linear": dict(hidden=[8], context=2),
    "cnn1d": dict(channels=[2, 2], context=1, causal=True),
    "cnn2d": dict(channels=[2, 2], dilations=[1, 2]),
    "unet": dict(depth=2, base_channels=2, causal=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_MODELS))
def test_every_model_exports_and_matches_torch(name, tmp_path):
    if name not in MODELS:
        pytest.skip(f"{name} is not registered")
    model = DenoiserModel(tiny_network(name, **SLOW_MODELS[name]), name, SR, STFT)
    export_onnx(model, tmp_path / f"{name}.onnx")
    assert compare_engines(model, load_onnx_denoiser(tmp_path / f"{name}.onnx")) <= 1e-4


@pytest.mark.parametrize("lookahead", [0, 2])
def test_recurrent_model_exports_with_its_state_and_streams(tmp_path, rng, lookahead):
    network = tiny_network("gru", hidden=8, layers=2, lookahead=lookahead)
    model = DenoiserModel(network, "gru", SR, STFT)
    export_onnx(model, tmp_path / "gru.onnx")
    onnx_model = load_onnx_denoiser(tmp_path / "gru.onnx")
    assert onnx_model.model.stateful and onnx_model.model.state_shape == (2, 8)
    audio = noise(rng, 3000)
    expected = Denoiser(model, "cpu").enhance(audio, SR)
    # Small chunks: the state goes through onnxruntime from chunk to chunk.
    got = Denoiser(onnx_model, "cpu", chunk_seconds=0.03).enhance(audio, SR)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)



def test_deep_filtering_model_exports_and_streams_its_spectrum_and_state(tmp_path, rng):
    network = tiny_network("gru_df", hidden=8, layers=2, df_bins=10, df_order=3)
    with torch.no_grad():  # the filter starts at zero; give it weights so the export is checked on it
        network.df_head.weight.normal_(0, 0.3)
    model = DenoiserModel(network, "gru_df", SR, STFT)
    export_onnx(model, tmp_path / "df.onnx")
    onnx_model = load_onnx_denoiser(tmp_path / "df.onnx")
    assert onnx_model.model.takes_spectrum and onnx_model.model.stateful
    audio = noise(rng, 3000)
    expected = Denoiser(model, "cpu").enhance(audio, SR)
    got = Denoiser(onnx_model, "cpu", chunk_seconds=0.03).enhance(audio, SR)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
