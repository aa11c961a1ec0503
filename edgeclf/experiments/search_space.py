"""The search space of a sweep (space.yaml): which configuration keys vary and how, what every trial
shares, the sampler and its seed, and the objectives.

    seed: 1
    sampler: tpe            # tpe (multi-objective TPE) | nsga2 | grid (every combination, lists only)
    trials: 12              # default for --trials
    base:                   # configuration keys every trial shares (any key of configs/default.yaml)
      train.epochs: 4
      train.fine_tune_epochs: 0
      model.weights: none
    params:                 # configuration keys that vary
      model.alpha: [0.35, 0.5, 0.75, 1.0]          # a list: one of these
      data.image_size: [48, 64, 96]
      train.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}   # a float range
      train.epochs: {low: 2, high: 8}                               # ints: an int range
    qat: true               # QAT before the int8 export where the architecture allows it (else PTQ)
    prune: true             # median stopping on the validation loss (prune_startup: 3 trials, prune_warmup: 2 epochs)

`augment.strength` (sweep only) scales the four augmentation magnitudes (rotation, translation, zoom,
contrast) of the configuration together: 0 turns them off, 1 keeps them, 2 doubles them (each kept
inside its allowed range).

Every key is checked against the configuration (unknown keys, bad values: one line naming the key),
with every list value and both ends of every range, before anything trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeclf.core.bounded import BoundedReadError, read_yaml
from edgeclf.core.config import load_config
from edgeclf.core.errors import ConfigError

MAX_SPACE_BYTES = 1024 * 1024


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    low: int | float  # both ends written as integers: an integer range
    high: int | float
    log: bool = False
    step: int | float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high, self.step or 1))


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = 1
    sampler: Literal["tpe", "nsga2", "grid"] = "tpe"
    trials: int = Field(default=12, ge=1, le=10000)
    base: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, list[Any] | Range] = Field(min_length=1)
    qat: bool = True
    prune: bool = True  # stop a trial whose validation loss is worse than the median of earlier trials'
    prune_startup: int = Field(default=3, ge=1)  # completed trials before any is pruned
    prune_warmup: int = Field(default=2, ge=0)  # epochs of each trial before it can be pruned

    @field_validator("params", mode="before")
    @classmethod
    def _lists_or_ranges(cls, value):
        """Each param is a list of values or a {low, high} range, with the range's own error."""
        if not isinstance(value, dict):
            return value
        out = {}
        for key, values in value.items():
            if isinstance(values, dict):
                try:
                    out[key] = Range.model_validate(values)
                except ValidationError as exc:
                    raise ValueError(f"{key}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
            elif isinstance(values, list):
                out[key] = values
            else:
                raise ValueError(f"{key}: a list of values or a range {{low: .., high: ..}} expected")
        return out

    @model_validator(mode="after")
    def _grid_needs_lists(self) -> SearchSpace:
        if self.sampler == "grid" and any(isinstance(v, Range) for v in self.params.values()):
            raise ValueError("the grid sampler takes lists only (a range has no grid)")
        for key, values in self.params.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"params.{key}: an empty list")
        return self

    def grid_size(self) -> int:
        size = 1
        for values in self.params.values():
            size *= len(values) if isinstance(values, list) else 0
        return size


def load_space(path: Path) -> SearchSpace:
    """Read and check space.yaml. Raises ConfigError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--space {path}: not found")
    try:
        raw = read_yaml(path, MAX_SPACE_BYTES, f"--space {path}")
    except BoundedReadError as exc:
        raise ConfigError(f"{exc}; not a search space") from None
    try:
        space = SearchSpace.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "the file"
        raise ConfigError(f"--space {path}: {where}: {error['msg']}") from None
    check_keys(space, path)
    return space


STRENGTH = "augment.strength"
SCALED = {"augment.rotation": 0.5, "augment.translation": 0.95, "augment.zoom": 0.95, "augment.contrast": 0.95}


def overrides(values: dict[str, Any]) -> dict[str, Any]:
    """Configuration overrides for a trial's values: augment.strength expanded into the magnitudes
    it scales (from the values given with it, else the defaults)."""
    values = dict(values)
    if STRENGTH not in values:
        return values
    strength = float(values.pop(STRENGTH))
    if strength < 0:
        raise ConfigError(f"{STRENGTH} {strength:g}: must be 0 or more")
    defaults = load_config(overrides={k: v for k, v in values.items() if k not in SCALED}).augment
    for key, ceiling in SCALED.items():
        base = values.get(key, getattr(defaults, key.split(".")[1]))
        values[key] = round(min(float(base) * strength, ceiling), 6)
    return values


def check_keys(space: SearchSpace, path: Path | str = "space") -> None:
    """Every base key and every value each param can take (list items, range ends) must make a valid
    configuration."""
    names = {key: f"{path}: {key}" for key in {**space.base, **space.params, **SCALED}}
    try:
        load_config(overrides=overrides(space.base), option_names=names)
    except ConfigError as exc:
        raise ConfigError(f"base: {exc}") from None
    for key, values in space.params.items():
        candidates = values if isinstance(values, list) else [values.low, values.high]
        for value in candidates:
            if isinstance(values, Range) and values.integer:
                value = int(value)
            load_config(overrides=overrides({**space.base, key: value}), option_names=names)
