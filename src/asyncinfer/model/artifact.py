"""Fetch, unpack and load a model artifact the way SageMaker and the XGBoost 1.7-1 container do.

SageMaker downloads ``ModelDataUrl`` (one gzip-compressed tar) and extracts it into ``/opt/ml/model`` before the
container starts; the container then loads every regular file at the top of that directory with
``Booster.load_model``. Here the "model directory" is a private temporary directory instead of ``/opt/ml/model``.

Differences from the real container, on purpose:

* Pickled boosters (what images before 1.3-1 wrote) are not loaded: unpickling an artifact runs arbitrary code, and
  a pickle from an old xgboost would not load in 3.x anyway. Native model files (JSON/UBJSON) are loaded.
* S3 is reached through boto3's normal configuration, so ``AWS_ENDPOINT_URL`` (e.g. a moto server) applies.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from async_pipeline import s3_uris

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ModelLoadError(Exception):
    """The artifact could not be fetched, unpacked or loaded (the container answers 500 and fails /ping)."""


def _artifact_location(uri: str) -> tuple[str, str]:
    try:
        bucket, key = s3_uris.parse_uri(uri)
    except ValueError:
        bucket, key = "", ""
    if not uri.startswith(s3_uris.SCHEME) or not key:
        raise ModelLoadError(f"not an S3 object URI: {uri!r} (expected s3://bucket/key)")
    return bucket, key


def _download_s3(uri: str, dest: Path, s3_client: S3Client | None) -> Path:
    bucket, key = _artifact_location(uri)
    if s3_client is None:
        import boto3

        # No endpoint here: boto3 reads AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 itself, as handler code does.
        s3_client = boto3.client("s3")
    try:
        s3_client.download_file(bucket, key, str(dest))
    except Exception as exc:
        raise ModelLoadError(f"could not download {uri}: {exc}") from exc
    return dest


def _extract(archive: Path, model_dir: Path) -> None:
    # ModelDataUrl must be a gzip-compressed tar: a plain tar or a zip fails in SageMaker too.
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            # The "data" filter refuses absolute paths, "..", links out of the tree and device files.
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ModelLoadError(f"{archive.name} is not a readable gzip-compressed tar archive: {exc}") from exc


def materialize_model_dir(
    model_uri: str | os.PathLike[str], workdir: Path, *, s3_client: S3Client | None = None
) -> Path:
    """Return a directory holding the model files, as ``/opt/ml/model`` would after SageMaker's download.

    ``model_uri`` may be ``s3://bucket/key`` (a ``.tar.gz``), a local ``.tar.gz``, a local directory that already
    holds the model files, or a single local model file. ``workdir`` receives downloads and extracted files.
    """
    model_dir = workdir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    text = os.fspath(model_uri)
    if text.startswith("s3://"):
        _extract(_download_s3(text, workdir / "model.tar.gz", s3_client), model_dir)
        return model_dir

    local = Path(text.removeprefix("file://")).expanduser()
    if local.is_dir():
        return local
    if not local.is_file():
        raise ModelLoadError(f"model artifact not found: {local}")
    if tarfile.is_tarfile(local):
        _extract(local, model_dir)
    else:
        # A bare model file: give it the name the built-in container's artifacts use.
        shutil.copyfile(local, model_dir / "xgboost-model")
    return model_dir


def _load_booster(path: Path) -> xgb.Booster:
    booster = xgb.Booster()
    try:
        # Loading from bytes lets xgboost sniff JSON vs UBJSON from the content; a path with no extension (the
        # container's "xgboost-model") makes xgboost 3.x guess and warn.
        booster.load_model(bytearray(path.read_bytes()))
    except (xgb.core.XGBoostError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"model file {path.name} cannot be loaded: {first_line}") from exc
    # The container pins one thread per booster (one booster per gunicorn worker); concurrency here comes from
    # serving requests on several threads, so per-request parallelism would only oversubscribe the cores.
    booster.set_param("nthread", "1")
    return booster


@dataclass
class LoadedModel:
    """The booster(s) found in the model directory, ready to predict."""

    files: list[Path]
    # Read-only after loading: Booster.predict is thread-safe for tree models (xgboost >= 1.4), so concurrent
    # requests share the boosters without a lock.
    boosters: list[xgb.Booster]

    @property
    def num_features(self) -> int:
        return int(self.boosters[0].num_features())

    def predict(self, dtest: xgb.DMatrix) -> npt.NDArray[np.float32]:
        """Predict as the 1.7-1 container does: no feature-name validation, and all trees unless the model carries
        a ``best_ntree_limit`` attribute (1.7's ``Booster`` turns that attribute into ``ntree_limit``; it ignores
        ``best_iteration``, which newer xgboost uses by default in some APIs). Several files are averaged.
        """
        outputs = []
        for booster in self.boosters:
            limit = booster.attr("best_ntree_limit")
            rounds = int(limit) if limit else booster.num_boosted_rounds()
            outputs.append(
                np.asarray(
                    booster.predict(dtest, validate_features=False, iteration_range=(0, rounds)), dtype=np.float32
                )
            )
        if len(outputs) == 1:
            return outputs[0]
        return np.asarray(np.mean(outputs, axis=0), dtype=np.float32)


def load_model_dir(model_dir: Path) -> LoadedModel:
    """Load every regular file at the top of ``model_dir`` (the container's rule; sub-directories are ignored)."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file())
    if not files:
        raise ModelLoadError(f"no model file in the artifact (expected {model_dir.name}/xgboost-model)")
    return LoadedModel(files=files, boosters=[_load_booster(p) for p in files])


def load_model(model_uri: str | os.PathLike[str], workdir: Path, *, s3_client: S3Client | None = None) -> LoadedModel:
    """Fetch (S3 or local), unpack and load ``model_uri``; raise :class:`ModelLoadError` on any failure."""
    return load_model_dir(materialize_model_dir(model_uri, workdir, s3_client=s3_client))
