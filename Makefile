# Two entry points for a fresh machine: `make demo` and `make test` (README.md).
#   make demo: the core install (ONNX Runtime + OpenCV, README "Installing") in its own $(DEMO_VENV),
#              then fer-detect on the example photo. No TensorFlow, PyTorch or ultralytics.
#   make test: the train, serve, ray and dev extras in $(VENV), then the whole suite.
VENV      ?= .venv
DEMO_VENV ?= .venv-demo
PYTHON    ?= python3
PY        := $(VENV)/bin/python
PIP       := $(PY) -m pip
# Measured on this project's machines (x86_64, Python 3.11): the one torch/torchvision pair that
# imports next to ultralytics. Override on other platforms: make TORCH="torch torchvision".
TORCH     ?= torch==2.14.1 torchvision==0.29.1
STAMP     := $(VENV)/.installed
DEMO_STAMP := $(DEMO_VENV)/.installed

.PHONY: setup setup-demo demo test lint bench clean ship-fer ship-fd quantize-fd

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH) -e ".[train,serve,ray,dev]"
	# triton makes `import tensorflow` before `import torchvision` segfault; CPU runs need none.
	-$(PIP) uninstall --quiet -y triton
	# ultralytics brings opencv-python, albumentations opencv-python-headless: both provide cv2.
	# Reinstall the GUI build last so `fer-detect --camera` can open a window.
	$(PIP) install --quiet --force-reinstall --no-deps \
	  "opencv-python==$$($(PY) -c 'import importlib.metadata as m; print(m.version("opencv-python"))')"
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

setup: $(STAMP)

setup-demo: $(DEMO_STAMP)

demo: setup-demo
	$(DEMO_VENV)/bin/fer-detect examples/astronaut.png --out runs/demo --exist-ok --json -
	@echo "annotated image: runs/demo/astronaut.png"

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/fer_train_speed.py

# Copy a finished fer-train run into the package as the default expression model.
ship-fer: setup
	$(PY) -c "import sys; from fer.export import package_model; \
	  print(*package_model(sys.argv[1], 'pipeline/models'), sep='\n')" $(RUN)

# Copy a trained face detector (its best.pt) into the package: make ship-fd PT=... IMGSZ=640
ship-fd: setup
	$(PY) -c "import sys; from fd.train import package_detector; \
	  print(*package_detector(sys.argv[1], 'pipeline/models', int(sys.argv[2])), sep='\n')" \
	  $(PT) $(IMGSZ)

# The shipped face detector is INT8: rebuilt from the shipped .pt (run after ship-fd, which writes
# the float one): exported to a float ONNX in a temporary folder, then fd-quantize calibrates it on
# real training images letterboxed as inference does, keeping the head and the first conv in float
# (MODEL_CARD.md: the settings that stayed within 0.01 AP50 of float on the held-out events).
# make quantize-fd IMAGES=<fd-prep dataset>/images/train [IMGSZ=640]
IMGSZ ?= 640
QUANT_COUNT ?= 100
QUANT_FLOAT ?= --keep-float /model.22/ --keep-float /model.0/
quantize-fd: setup
	@test -d "$(IMAGES)" || { echo "IMAGES=<an fd-prep dataset's images/train folder> is required"; exit 2; }
	tmp=$$(mktemp -d) && \
	$(PY) -c "import sys; from fd.train import package_detector; \
	  package_detector(sys.argv[1], sys.argv[2], int(sys.argv[3]))" \
	  pipeline/models/face_yolov8n.pt $$tmp $(IMGSZ) && \
	$(VENV)/bin/fd-quantize --model $$tmp/face_yolov8n.onnx --images $(IMAGES) \
	  --count $(QUANT_COUNT) $(QUANT_FLOAT) --out pipeline/models/face_yolov8n.onnx; \
	status=$$?; rm -rf $$tmp; exit $$status

clean:
	rm -rf $(VENV) $(DEMO_VENV) runs/demo .pytest_cache
