"""Enum values from names or numbers, and names from values."""

import ctypes

from . import _lib
from .enums import Activation, Init, Loss, Optimizer, Property, Split, Status, Tick
from .errors import NotFoundError, check

_lib_ = _lib.lib

_PARSERS = {
    Activation: _lib_.bpl_activation_from_name,
    Init: _lib_.bpl_init_from_name,
    Loss: _lib_.bpl_loss_from_name,
    Optimizer: _lib_.bpl_optimizer_from_name,
}


def _lookup_member(enum_cls, value):
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


def to_enum(enum_cls, value):
    """`value` (a member, an int or a name) as an int for the library.

    Names are parsed by the library where it has a parser, so that the
    error message is the library's own.  Integers are passed through
    unchecked: the library validates them.
    """
    if isinstance(value, str):
        parser = _PARSERS.get(enum_cls)
        if parser is None:
            return int(_lookup_member(enum_cls, value))
        out = ctypes.c_int()
        check(parser(value.encode("utf-8"), ctypes.byref(out)))
        return out.value
    return int(value)


def as_member(enum_cls, value):
    """An int as a member of enum_cls when it is one, else the int."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


def _name(function, value):
    return function(int(value)).decode("utf-8")


def activation_name(value):
    """The library's name of an activation ("tanh")."""
    return _name(_lib_.bpl_activation_name, value)


def init_name(value):
    """The library's name of an initialiser ("glorot_uniform")."""
    return _name(_lib_.bpl_init_name, value)


def loss_name(value):
    """The library's name of a loss ("cross_entropy")."""
    return _name(_lib_.bpl_loss_name, value)


def optimizer_name(value):
    """The library's name of an optimiser ("adam")."""
    return _name(_lib_.bpl_optimizer_name, value)


def property_name(value):
    """The library's name of a property ("Exact Gradients")."""
    return _name(_lib_.bpl_property_name, value)


def tick_name(value):
    """The library's name of a property value ("yes", "partial")."""
    return _name(_lib_.bpl_tick_name, value)


def split_value(value):
    """A Split from "train", "test" or a Split/int."""
    return to_enum(Split, value)


def tick_value(value):
    """A Tick from a name ("yes", "partial", "n/a") or a Tick/int."""
    return to_enum(Tick, value)


def property_value(value):
    """A Property from a member name or a Property/int."""
    return to_enum(Property, value)
