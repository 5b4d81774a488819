"""Enum values from names or numbers, and names from values."""

from __future__ import annotations

import ctypes
import enum
from typing import Any, Callable, TypeVar

from . import _check, _lib
from .enums import Activation, Init, Loss, Optimizer, Property, Split, Status, Tick
from .errors import NotFoundError, check

_lib_ = _lib.lib
_E = TypeVar("_E", bound=enum.IntEnum)

_PARSERS = {
    Activation: _lib_.bpl_activation_from_name,
    Init: _lib_.bpl_init_from_name,
    Loss: _lib_.bpl_loss_from_name,
    Optimizer: _lib_.bpl_optimizer_from_name,
}


def _lookup_member(enum_cls: type[_E], value: str) -> _E:
    """A member of enum_cls by its Python name ('TRAIN', 'train', 'yes')."""
    key = value.strip().upper().replace(" ", "_").replace("-", "_")
    if key == "N/A":
        key = "NOT_APPLICABLE"
    try:
        return enum_cls[key]
    except KeyError:
        names = ", ".join(m.name.lower() for m in enum_cls)
        raise NotFoundError(Status.NOT_FOUND, "unknown %s '%s' (known: %s)"
                            % (enum_cls.__name__.lower(), value, names)) from None


def to_enum(enum_cls: type[enum.IntEnum], value: Any, where: str | None = None,
            what: str | None = None) -> int:
    """`value` (a member, an int or a name) as an int for the library.

    Names are parsed by the library where it has a parser, so that the
    error message is the library's own.  Integers must fit a C int (the
    library then checks that they name a member); `where` and `what` name
    the function and the argument in errors.
    """
    where = where or "bioplaus"
    what = what or enum_cls.__name__.lower()
    if isinstance(value, (str, bytes)):
        name = _check.text(value, where, what)
        parser = _PARSERS.get(enum_cls)
        if parser is None:
            return int(_lookup_member(enum_cls, name.decode("utf-8")))
        out = ctypes.c_int()
        check(parser(name, ctypes.byref(out)))
        return out.value
    return _check.c_int(value, where, what)


def as_member(enum_cls: type[_E], value: int) -> _E | int:
    """An int as a member of enum_cls when it is one, else the int."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


def _name(function: Callable[[int], bytes], value: int) -> str:
    return function(_check.c_int(value, "bioplaus", "value")).decode("utf-8")


def activation_name(value: int) -> str:
    """The library's name of an activation ("tanh")."""
    return _name(_lib_.bpl_activation_name, value)


def init_name(value: int) -> str:
    """The library's name of an initialiser ("glorot_uniform")."""
    return _name(_lib_.bpl_init_name, value)


def loss_name(value: int) -> str:
    """The library's name of a loss ("cross_entropy")."""
    return _name(_lib_.bpl_loss_name, value)


def optimizer_name(value: int) -> str:
    """The library's name of an optimiser ("adam")."""
    return _name(_lib_.bpl_optimizer_name, value)


def property_name(value: int) -> str:
    """The library's name of a property ("Exact Gradients")."""
    return _name(_lib_.bpl_property_name, value)


def tick_name(value: int) -> str:
    """The library's name of a property value ("yes", "partial")."""
    return _name(_lib_.bpl_tick_name, value)


def split_value(value: Any, where: str | None = None) -> int:
    """A Split from "train", "test" or a Split/int."""
    return to_enum(Split, value, where, "split")


def tick_value(value: Any, where: str | None = None) -> int:
    """A Tick from a name ("yes", "partial", "n/a") or a Tick/int."""
    return to_enum(Tick, value, where, "tick")


def property_value(value: Any, where: str | None = None) -> int:
    """A Property from a member name or a Property/int."""
    return to_enum(Property, value, where, "property")
