"""`dlsp info`: versions, threads, device and where data and models are looked for."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform

from dlsp.cli.common import add_command

PACKAGES = ("torch", "numpy", "scipy", "soundfile", "soxr", "librosa", "pesq", "pystoi", "scikit-learn",
            "matplotlib", "tqdm", "pyyaml", "onnxruntime")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "info", "show versions, threads, device and data/model locations",
                         "dlsp info\ndlsp info --json")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def collect_info() -> dict:
    import torch

    from dlsp import __version__
    from dlsp.paths import data_dirs, model_dirs

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    return {
        "dlsp": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "threads": torch.get_num_threads(),
        "device": "cuda" if cuda else "cpu",
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "data_dirs": [str(p) for p in data_dirs()],
        "model_dirs": [str(p) for p in model_dirs()],
    }


def run(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"dlsp {info['dlsp']}  (Python {info['python']}, {info['platform']})")
    print(f"device   {info['device']}" + (f"  ({', '.join(info['cuda_devices'])})" if info["cuda_devices"] else ""))
    print(f"threads  {info['threads']}")
    print("packages")
    for name, version in info["packages"].items():
        print(f"  {name:<13} {version or 'not installed'}")
    print("data looked for in (set DLSP_DATA=DIR to add a folder; the first found is used)")
    for path in info["data_dirs"]:
        print(f"  {_found(path)}  {path}")
    print("models looked for in (set DLSP_MODELS=DIR to add a folder)")
    for path in info["model_dirs"]:
        print(f"  {_found(path)}  {path}")
    return 0


def _found(path: str) -> str:
    from pathlib import Path

    return "found  " if Path(path).is_dir() else "missing"
