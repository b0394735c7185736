# Two entry points a newcomer needs: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU build that lies on this machine's disk (/opt/wheels); a bare `torch` would pull CUDA.
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: demo test lint bench readme-examples clean pretrained-denoiser pretrained-denoiser-unet pretrained-speaker

$(BIN)/dlsp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(BIN)/pip install --quiet $(FIND_LINKS) -e '.[dev]'
	@touch $@

demo: $(BIN)/dlsp
	$(BIN)/dlsp demo --out demo_out

test: $(BIN)/dlsp
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 -q

# Every README code block run as written on small synthetic data (about 7 minutes; marked slow, so not in `test`).
readme-examples: $(BIN)/dlsp
	$(BIN)/python -m pytest -q -m slow tests/test_readme_examples.py

bench: $(BIN)/dlsp
	$(BIN)/pip install --quiet $(FIND_LINKS) -e '.[bench]'
	# Resemblyzer (speaker peer) without its pins: it would pull the `typing` backport and build webrtcvad
	$(BIN)/pip install --quiet --no-deps resemblyzer==0.1.4 'webrtcvad-wheels>=2.0.14,<3'
	$(BIN)/python benchmarks/stft.py
	$(BIN)/python benchmarks/denoise.py
	$(BIN)/python benchmarks/classify.py --models mlp,cnn,lstm,cnn_bn --seconds 90
	$(BIN)/python benchmarks/speaker.py
	$(BIN)/python benchmarks/vision.py --out runs/bench_vision

# Retrain the default denoiser shipped in src/dlsp/pretrained/: stages 1-3 on FSDD + Arabic Speech Commands
# (recipes/denoise_default.yaml, _finetune, _augment), then stage 4 on wideband speech from many more voices and
# noise kinds, the cross-corpus benchmark's hold-outs excluded (recipes/denoise_default_wideband.yaml), and stage 5
# with babble noise (recipes/denoise_default_babble.yaml), stages 6 and 7 with band-limited mixtures
# (recipes/denoise_default_narrow.yaml, _narrow2), stages 8-10 grown into deep filtering of the low band
# (recipes/denoise_default_deepfilter.yaml, _deepfilter2, _deepfilter3: SI-SDR + compressed magnitude loss).
# Retraining starts each stage's run folder afresh; RUN_FLAGS=--resume continues interrupted ones instead.
RUN_FLAGS ?= --overwrite
# The data folder: $DLSP_DATA (its first entry) when set, else ../shared/data beside the project.
SHARED ?= $(or $(firstword $(subst :, ,$(DLSP_DATA))),../shared/data)
OLD_CLEAN := $(SHARED)/speech/fsdd $(SHARED)/speech/arabic_commands
OLD_NOISE := $(SHARED)/noise/household_street $(SHARED)/noise/speech_commands_background
WIDE_CLEAN := $(SHARED)/speech/speechocean762 $(SHARED)/speech/arabic_commands $(SHARED)/speech/fsdd
WIDE_NOISE := $(SHARED)/noise/moodist $(SHARED)/noise/household_street $(SHARED)/noise/speech_commands_background
pretrained-denoiser: $(BIN)/dlsp
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default.yaml --clean $(OLD_CLEAN) --noise $(OLD_NOISE) \
	  --cache runs/cache --out runs/denoise_default
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_finetune.yaml --clean $(OLD_CLEAN) --noise $(OLD_NOISE) \
	  --cache runs/cache --out runs/denoise_default_finetune
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_augment.yaml --clean $(OLD_CLEAN) --noise $(OLD_NOISE) \
	  --cache runs/cache --out runs/denoise_default_augment
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_wideband.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_wideband
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_babble.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_babble
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_narrow.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_narrow
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_narrow2.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_narrow2
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_deepfilter.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_deepfilter
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_deepfilter2.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_deepfilter2
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_default_deepfilter3.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_default_deepfilter3
	$(BIN)/python -c "from dlsp.release import publish_denoiser; publish_denoiser('runs/denoise_default_deepfilter3/best.pt', recipe='recipes/denoise_default.yaml, fine-tuned by recipes/denoise_default_finetune.yaml, recipes/denoise_default_augment.yaml, recipes/denoise_default_wideband.yaml, recipes/denoise_default_babble.yaml, recipes/denoise_default_narrow.yaml, recipes/denoise_default_narrow2.yaml, recipes/denoise_default_deepfilter.yaml, recipes/denoise_default_deepfilter2.yaml and recipes/denoise_default_deepfilter3.yaml')"

# Retrain the bundled U-Net (dlsp denoise run --model unet): recipes/denoise_unet_bundled.yaml on FSDD + Arabic,
# then recipes/denoise_unet_wideband.yaml on the wideband data of stage 4 above.
pretrained-denoiser-unet: $(BIN)/dlsp
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_unet_bundled.yaml --clean $(OLD_CLEAN) --noise $(OLD_NOISE) \
	  --cache runs/cache --out runs/denoise_unet_bundled
	$(BIN)/dlsp denoise train $(RUN_FLAGS) --recipe recipes/denoise_unet_wideband.yaml --clean $(WIDE_CLEAN) \
	  --noise $(WIDE_NOISE) --cache runs/cache_wideband --out runs/denoise_unet_wideband
	$(BIN)/python -c "from dlsp.release import publish_denoiser; publish_denoiser('runs/denoise_unet_wideband/best.pt', name='unet', recipe='recipes/denoise_unet_bundled.yaml, fine-tuned by recipes/denoise_unet_wideband.yaml')"

# Retrain the default speaker encoder shipped in src/dlsp/pretrained/ (recipes/speaker_wideband.yaml: speechocean762
# and Arabic Speech Commands, balanced by corpus).
SPEAKER_DATA = $(SHARED)/speech/speechocean762 $(SHARED)/speech/arabic_commands

# Two seeds of the wideband recipe (about an hour each on one core), combined into one model file.
pretrained-speaker: $(BIN)/dlsp
	$(BIN)/dlsp speaker train $(RUN_FLAGS) --recipe recipes/speaker_wideband.yaml --data $(SPEAKER_DATA) \
	  --out runs/speaker_wideband
	$(BIN)/dlsp speaker train $(RUN_FLAGS) --recipe recipes/speaker_wideband.yaml --data $(SPEAKER_DATA) \
	  --set train.seed=1 --out runs/speaker_wideband_seed1
	$(BIN)/dlsp speaker ensemble runs/speaker_wideband/best.pt runs/speaker_wideband_seed1/best.pt \
	  --data $(SPEAKER_DATA) --out runs/speaker_ensemble.pt
	$(BIN)/python -c "from dlsp.release import publish_speaker; publish_speaker('runs/speaker_ensemble.pt')"

clean:
	rm -rf $(VENV) demo_out .pytest_cache
