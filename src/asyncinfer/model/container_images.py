"""Which local stand-in serves a template's ``ContainerImage``.

The SageMaker framework images that serve an inference script from ``model.tar.gz``'s ``code/`` get the
script-mode stand-in (script_mode.py): the PyTorch and Hugging Face PyTorch inference images (sagemaker-inference-
toolkit under TorchServe/MMS) and the scikit-learn image. Anything else (empty: the built-in XGBoost 1.7-1 image)
gets the XGBoost stand-in; a container the stand-ins cannot imitate is run by the user (``--container-url``).
"""

from __future__ import annotations

import re
from typing import Final

from asyncinfer.model.server import Container

#: Repository names (after the registry host) of the framework images with the inference-script convention.
SCRIPT_MODE_REPOSITORIES: Final = ("pytorch-inference", "huggingface-pytorch-inference", "sagemaker-scikit-learn")
_REPOSITORY: Final = re.compile(r"^[^/]+/(?P<repository>[^:@]+)")


def stand_in_for(image: str) -> Container:
    """``"script"`` for a framework image with script mode, else ``"xgboost"``."""
    match = _REPOSITORY.match(image.strip())
    if match is not None and match.group("repository") in SCRIPT_MODE_REPOSITORIES:
        return "script"
    return "xgboost"
