"""`dlsp speaker embed`: speaker embeddings of audio files to .npy and/or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from dlsp.cli.common import add_command
from dlsp.cli.speaker.common import add_speaker_model_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "embed", "speaker embeddings of audio files (.npy and/or JSON)",
        "dlsp speaker embed a.wav b.flac -o emb.npy\n"
        "dlsp speaker embed clip.wav --json emb.json\n"
        "dlsp speaker embed clip.wav --json -   # JSON on stdout\n"
        "dlsp speaker embed *.wav -o emb.npy --model runs/speaker/best.pt",
        description="Embed each file (any sample rate: resampled; stereo: downmixed; at least 0.3 s, not "
                    "silence, not a steady noise or hum; leading and trailing silence trimmed; longer than the "
                    "model's window, 3 s: the mean of windows every 1.5 s) into one unit-length vector. -o writes "
                    "an (N, dim) float32 .npy in the order of the files; --json writes {model_id, embedding_dim, "
                    "files: [{path, embedding}]}.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    parser.add_argument("-o", "--output", metavar="FILE.npy", help="write the embeddings as .npy")
    parser.add_argument("--json", metavar="FILE", help="write the embeddings as JSON ('-': stdout)")
    add_speaker_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.fileio import atomic_path, check_writable, write_json
    from dlsp.speaker.embed import SpeakerEmbedder

    if not args.output and not args.json:
        raise DlspError("say where the embeddings go: -o FILE.npy and/or --json FILE (or --json - for stdout)")
    if args.output and not args.output.endswith(".npy"):
        raise DlspError("-o must name a .npy file", args.output)
    check_writable(args.output)  # before every file is embedded
    check_writable(None if args.json == "-" else args.json)
    embedder = SpeakerEmbedder.from_file(args.model, args.device)
    embeddings = embedder.embed_files(args.files)
    if args.output:
        import numpy as np

        with atomic_path(args.output) as tmp, open(tmp, "wb") as handle:
            np.save(handle, embeddings)
        print(f"wrote {embeddings.shape[0]} embeddings of size {embeddings.shape[1]} to {args.output}",
              file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        payload = {"model_id": embedder.loaded.model_id, "embedding_dim": embedder.embedding_dim,
                   "files": [{"path": str(path), "embedding": [round(float(v), 7) for v in row]}
                             for path, row in zip(args.files, embeddings, strict=True)]}
        if args.json == "-":
            print(json.dumps(payload))
        else:
            write_json(args.json, payload)
            print(f"wrote {args.json}")
    return 0
