"""The project's registries and the one place components are built from config dicts.

mmengine's ``Registry`` holds the classes; ``build`` wraps ``Registry.build`` so that a bad
config fails early with a message naming the config path, the registered choices and the
closest match (mmengine alone gives neither), and so that dotted-path ``type`` strings, which
mmengine would import and instantiate blindly, are refused.
"""
from __future__ import annotations

import collections.abc
import difflib
import importlib
import inspect
import numbers
import pkgutil
import types
import typing
from typing import Any, Mapping

from mmengine.registry import Registry

DATASETS = Registry("dataset", scope="u2cdr")
METHODS = Registry("method", scope="u2cdr")
BACKBONES = Registry("backbone", scope="u2cdr")
PROTOCOLS = Registry("protocol", scope="u2cdr")

REGISTRIES: dict[str, Registry] = {
    "methods": METHODS,
    "datasets": DATASETS,
    "backbones": BACKBONES,
    "protocols": PROTOCOLS,
}

# Every module of these packages is imported before a registry is read, so adding a file is
# the whole registration (no forgotten ``__init__`` import can hide a class).
_COMPONENT_PACKAGES = ("u2cdr.data", "u2cdr.models", "u2cdr.methods", "u2cdr.evaluation")
_imported = False


class ConfigError(ValueError):
    """A config that cannot be built; the message names the offending key."""


class MissingExtraError(ModuleNotFoundError):
    """A component needs an optional extra that is not installed; the message says which."""


def import_all_components() -> None:
    """Import every module under the component packages once, so decorators register."""
    global _imported
    if _imported:
        return
    for package_name in _COMPONENT_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(module.name)
    _imported = True


def registered_names(registry: Registry) -> list[str]:
    """Sorted names of the classes registered in ``registry``."""
    import_all_components()
    return sorted(registry.module_dict)


def closest_name(name: str, choices: list[str]) -> str | None:
    """The registered name a typo most likely meant, or None."""
    matches = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return matches[0] if matches else None


def lookup(registry: Registry, name: Any, path: str) -> type:
    """The class registered as ``name``; a clear ``ConfigError`` otherwise."""
    import_all_components()
    choices = registered_names(registry)
    if not isinstance(name, str):
        raise ConfigError(f"{path}: `type` must be a registered {registry.name} name, got {name!r}; "
                          f"valid choices: {', '.join(choices)}")
    if "." in name:
        raise ConfigError(f"{path}: dotted-path type {name!r} is refused; register the class with "
                          f"@{registry.name.upper()}S.register_module() and use its name "
                          f"(valid choices: {', '.join(choices)})")
    cls = registry.module_dict.get(name)
    if cls is None:
        hint = closest_name(name, choices)
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        raise ConfigError(f"{path}: unknown {registry.name} {name!r}.{suggestion} "
                          f"Valid choices: {', '.join(choices)}")
    return cls


def accepted_parameters(cls: type) -> list[str] | None:
    """Keyword names ``cls`` accepts, or None when it takes ``**kwargs``."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def check_arguments(cls: type, cfg: Mapping[str, Any], path: str,
                    value_types: bool = True) -> None:
    """Refuse keys ``cls`` does not accept, name the missing required ones and, with
    ``value_types``, values whose kind contradicts the annotations (``check_types``)."""
    accepted = accepted_parameters(cls)
    if accepted is not None:
        for key in cfg:
            if key != "type" and key not in accepted:
                hint = closest_name(key, accepted)
                suggestion = f" Did you mean {hint!r}?" if hint else ""
                raise ConfigError(f"{path}.{key}: unknown key for {cls.__name__}.{suggestion} "
                                  f"Accepted keys: {', '.join(accepted)}")
    required = [p.name for p in inspect.signature(cls).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    missing = [name for name in required if name not in cfg]
    if missing:
        raise ConfigError(f"{path}: {cls.__name__} needs the key(s) {', '.join(missing)}")
    if value_types:
        check_types(cls, cfg, path)


def check_types(cls: type, cfg: Mapping[str, Any], path: str) -> None:
    """Refuse values whose kind contradicts ``cls``'s annotations, naming the key.

    Without it ``epochs='3'`` or ``backbone='small_cnn'`` reach the class and fail later with a
    message that names no key (``'<' not supported between 'str' and 'int'``), or not at all
    (``lr='fast'`` fails only when training starts).
    """
    mismatch = type_mismatch(cls, cfg, path)
    if mismatch:
        raise ConfigError(mismatch)


def type_mismatch(cls: type, cfg: Mapping[str, Any], path: str) -> str | None:
    """The message for the first value of ``cfg`` that contradicts ``cls``'s annotations, or None."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError, AttributeError):  # unresolvable annotations: the class checks
        return None
    for key, value in cfg.items():
        hint = hints.get(key)
        if key != "type" and hint is not None and not _type_matches(value, hint):
            return (f"{path}.{key}: expected {_type_name(hint)}, got {value!r} "
                    f"({type(value).__name__})")
    return None


def _type_matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint``; annotations this does not model (classes, Callable) pass."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_matches(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # numbers.Integral admits numpy integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:  # an int is a fine float (lr=1)
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        if not isinstance(value, (list, tuple)):  # YAML/JSON give lists where Python gives tuples
            return False
        items = [arm for arm in typing.get_args(hint) if arm is not Ellipsis]
        return not items or all(any(_type_matches(item, arm) for arm in items) for item in value)
    if container in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping)
    return True


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and typing.get_origin(hint) is None:
        return hint.__name__
    return str(hint).replace("typing.", "")


def build(registry: Registry, cfg: Mapping[str, Any], path: str, **extra: Any) -> Any:
    """Build ``cfg`` (a dict with ``type``) from ``registry``, checking keys first.

    Args:
        registry: where ``cfg['type']`` is looked up.
        cfg: the component's config.
        path: where ``cfg`` sits in the grid config (``methods[2]``), used in every message.
        extra: run-time arguments the harness adds (not user config), e.g. ``device``.
    """
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ConfigError(f"{path}: expected a dict with a `type` key, got {cfg!r}")
    cls = lookup(registry, cfg["type"], path)
    kwargs = {key: value for key, value in dict(cfg).items() if key != "type"}
    check_arguments(cls, {**kwargs, **extra}, path, value_types=False)
    mismatch = type_mismatch(cls, kwargs, path)
    try:
        built = cls(**kwargs, **extra)
    except (TypeError, ValueError, FileNotFoundError) as error:
        # A wrong kind of value is named by key first; the class's own words follow, since its
        # validation may explain the option (``num_clusters must be an integer >= 2``).
        message = f"{path} ({cls.__name__}): {error}"
        raise ConfigError(f"{mismatch}; {message}" if mismatch else message) from error
    if mismatch:  # a value the class let through (``lr='fast'`` fails only in training)
        raise ConfigError(mismatch)
    return built
