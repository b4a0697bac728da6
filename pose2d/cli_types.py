"""Option types of the 2D trainer that the CLI checks at parse time (a wrong value is rejected
with the accepted forms before anything is built).

``CamPlacement``: a preset name or explicit ``"<stage>.<branch>"`` sites (``"2.0,3.0"``).
``BoxSource``: ``"gt"`` or a COCO results-format detection file (``*.json``).

The restricted string types are ``str`` subclasses made by jsonargparse; constructors turn them
back into plain ``str`` (:func:`plain`) before ``save_hyperparameters`` so checkpoints hold only
primitive types (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

from typing import Literal

from jsonargparse.typing import restricted_string_type

from pose2d.hrnet import CamPreset

CamSites = restricted_string_type(
    "CamSites", r"^\s*[1-4]\.[0-3](\s*,\s*[1-4]\.[0-3])*\s*$"
)  # e.g. "2.0,3.0": official stage.branch numbering, checked further by parse_cam_placement
DetectionFile = restricted_string_type("DetectionFile", r"^.+\.json$")

CamPlacement = CamPreset | CamSites
BoxSource = Literal["gt"] | DetectionFile


def plain(value: str | None) -> str | None:
    """A restricted string type (or ``None``) as a plain ``str``."""
    return None if value is None else str(value)
