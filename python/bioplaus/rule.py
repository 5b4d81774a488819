"""Learning rules: built-in ones by name, and rules written in Python."""

from __future__ import annotations

import ctypes
import math
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, NamedTuple, Union

from . import _arrays, _check, _lib
from ._handle import Handle, created
from ._names import (as_member, property_name, property_value, tick_value, to_enum)
from ._typing import FloatArray, Text
from .enums import (Group, Needs, Optimizer, ParamKind, Property, RULE_VTABLE_VERSION,
                    Status, Tick)
from .errors import StateError, callback_scope, check, report_callback_exception

if TYPE_CHECKING:
    from .net import Net

_c = _lib.lib

#: A hyperparameter's value as rule[name] gives it: by its kind.
ParamValue = Union[float, int, bool, str]


class ParamInfo(NamedTuple):
    """A hyperparameter: name, kind (ParamKind), default value, bounds,
    choices (a tuple of names for ParamKind.CHOICE, else None) and doc."""

    name: str
    kind: ParamKind | int
    default: float
    lo: float
    hi: float
    choices: tuple[str, ...] | None
    doc: str


class PropertyValue(NamedTuple):
    """A property of the review's table: a Tick and a short note."""

    tick: Tick | int
    note: str


def _text(value: ctypes.c_char_p) -> str:
    """A string the library gave back, as str ("" for NULL)."""
    return (value.value or b"").decode("utf-8")


class Rule(Handle):
    """A learning rule (bpl_rule) with its hyperparameters and properties.

    ``Rule.builtin("fa")`` (or ``Rule("fa")``) makes a built-in rule.  The
    hyperparameters behave like a dict::

        rule = bioplaus.Rule.builtin("backprop")
        rule["lr"] = 5e-4
        rule["optimizer"] = "rmsprop"     # strings go through bpl_rule_set_string
        print(rule["optimizer"], rule.params())

    Once attached to a net (``net.rule = rule``) the net owns the rule: the
    object stays usable while the net lives, and close() no longer destroys
    it.
    """

    _kind = "rule"

    _ptr: int | None
    _owner: Net | None

    def __init__(self, name: Text) -> None:
        name = _check.text(name, "Rule", "name")
        out = ctypes.c_void_p()
        check(_c.bpl_rule_create_builtin(ctypes.byref(out), name))
        self._ptr = out.value
        self._owner = None

    @classmethod
    def builtin(cls, name: Text) -> Rule:
        """A new built-in rule: "backprop", "fa", "dfa", ... (see builtin_names)."""
        return cls(name)

    @staticmethod
    def builtin_names() -> list[str]:
        """Names of the built-in rules."""
        return [_c.bpl_rule_builtin_name(i).decode("utf-8")
                for i in range(_c.bpl_rule_builtin_count())]

    @classmethod
    def _borrow(cls, address: int, net: Net) -> Rule:
        rule = cls.__new__(cls)
        rule._ptr = address
        rule._owner = net
        return rule

    # ---- lifetime ------------------------------------------------------------

    @property
    def _handle(self) -> int:
        # getattr: a subclass whose __init__ skipped Rule's has no _ptr at all.
        ptr = getattr(self, "_ptr", None)
        if ptr is None:
            raise StateError(Status.STATE, "the rule was destroyed (closed, or replaced "
                             "in or destroyed with its net) or never created")
        return ptr

    def _adopt(self, net: Net) -> None:
        self._owner = net  # keeps the net, and so the rule, alive

    def _invalidate(self) -> None:
        self._ptr = None
        self._owner = None

    @property
    def net(self) -> Net | None:
        """The net that owns the rule, or None."""
        return self._owner

    def close(self) -> None:
        """Destroy the rule unless a net owns it.  Idempotent.

        Raises StateError while Net.set_rule is attaching it (from its
        attach hook).
        """
        super().close()

    def _release(self) -> None:
        if getattr(self, "_ptr", None) is not None and self._owner is None:
            address, self._ptr = self._ptr, None
            _c.bpl_rule_destroy(address)

    def __repr__(self) -> str:
        if getattr(self, "_ptr", None) is None:
            return "<bioplaus.Rule destroyed>"
        return "<bioplaus.Rule %s%s>" % (self.name, " (attached)" if self._owner else "")

    # ---- identity ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The rule's name."""
        return _c.bpl_rule_name(self._handle).decode("utf-8")

    @property
    def description(self) -> str:
        """One line on what the rule is ("" if unset); assignable."""
        return _c.bpl_rule_description(self._handle).decode("utf-8")

    @description.setter
    def description(self, text: str) -> None:
        check(_c.bpl_rule_set_description(self._handle,
                                          _check.text(text, "Rule.description", "text")))

    # ---- hyperparameters -------------------------------------------------------

    def _info(self, index: int) -> ParamInfo:
        name, choices, doc = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
        kind = ctypes.c_int()
        default, lo, hi = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        check(_c.bpl_rule_param_info(self._handle, _check.size(index, "Rule.params", "index"),
                                     ctypes.byref(name),
                                     ctypes.byref(kind), ctypes.byref(default),
                                     ctypes.byref(lo), ctypes.byref(hi), ctypes.byref(choices),
                                     ctypes.byref(doc)))
        names = tuple(_text(choices).split("|")) if choices.value else None
        return ParamInfo(_text(name), as_member(ParamKind, kind.value), default.value,
                         lo.value, hi.value, names, _text(doc))

    def params(self) -> list[ParamInfo]:
        """Every hyperparameter, as a list of ParamInfo."""
        return [self._info(i) for i in range(len(self))]

    def param(self, name: Text) -> ParamInfo:
        """The ParamInfo of one hyperparameter (KeyError if unknown)."""
        wanted = _check.text(name, "Rule.param", "name").decode("utf-8", "replace")
        for info in self.params():
            if info.name == wanted:
                return info
        raise KeyError(name)

    def value(self, name: Text) -> float:
        """The raw value of a hyperparameter, a float (a choice's index)."""
        out = ctypes.c_double()
        check(_c.bpl_rule_get(self._handle, _check.text(name, "Rule.value", "name"),
                              ctypes.byref(out)))
        return out.value

    def set(self, name: Text, value: float | Text) -> None:
        """Set a hyperparameter from a number, a bool or a string.

        Strings go through bpl_rule_set_string: a number, or a choice name
        ("rmsprop").
        """
        if isinstance(value, (str, bytes)):
            self._set_string(name, value, "Rule.set")
        else:
            check(_c.bpl_rule_set(self._handle, _check.text(name, "Rule.set", "name"),
                                  float(value)))

    def set_string(self, name: Text, text: Text) -> None:
        """Set a hyperparameter from text, as a command line would."""
        self._set_string(name, text, "Rule.set_string")

    def _set_string(self, name: Text, text: Text, where: str) -> None:
        check(_c.bpl_rule_set_string(self._handle, _check.text(name, where, "name"),
                                     _check.text(text, where, "value")))

    def __getitem__(self, name: Text) -> ParamValue:
        """The value, typed by kind: float, int, bool, or the choice's name."""
        raw = self.value(name)
        info = self.param(name)
        if info.kind == ParamKind.INT:
            return int(raw)
        if info.kind == ParamKind.BOOL:
            return raw != 0.0
        if info.kind == ParamKind.CHOICE and info.choices:
            return info.choices[int(raw)]
        return raw

    def __setitem__(self, name: Text, value: float | Text) -> None:
        self.set(name, value)

    def __contains__(self, name: object) -> bool:
        return any(info.name == name for info in self.params())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return _c.bpl_rule_param_count(self._handle)

    def keys(self) -> list[str]:
        """Names of the hyperparameters."""
        return [info.name for info in self.params()]

    def values(self) -> list[ParamValue]:
        """Values of the hyperparameters, typed as by rule[name]."""
        return [self[name] for name in self.keys()]

    def items(self) -> list[tuple[str, ParamValue]]:
        """(name, value) pairs."""
        return [(name, self[name]) for name in self.keys()]

    def get(self, name: Text, default: Any = None) -> Any:
        """rule[name], or `default` if there is no such hyperparameter."""
        return self[name] if name in self else default

    def update(self, values: Mapping[str, float | Text] | Iterable[tuple[str, float | Text]]
               = (), **kwargs: float | Text) -> None:
        """Set several hyperparameters, from a mapping or pairs and keywords."""
        items = values.items() if hasattr(values, "items") else values
        for name, value in list(items) + list(kwargs.items()):
            self.set(name, value)

    def add_param(self, name: Text, kind: ParamKind | int | str = ParamKind.REAL,
                  default: float | Text = 0.0, lo: float = -math.inf, hi: float = math.inf,
                  choices: Text | Iterable[Text] | None = None, doc: Text = "") -> None:
        """Declare a hyperparameter (before the rule is attached).

        `kind` is a ParamKind or its name; `choices` is a sequence of names
        or an "a|b|c" string for ParamKind.CHOICE, where `default` may be a
        name too.
        """
        where = "Rule.add_param"
        name = _check.text(name, where, "name")
        kind = to_enum(ParamKind, kind, where, "kind")
        listed: bytes | None = None
        if choices is not None and not isinstance(choices, (str, bytes)):
            try:
                names = list(choices)
            except TypeError:
                names = None  # not a sequence of names: _check.text says what it is
            if names is not None:
                listed = b"|".join(_check.text(choice, where, "choices") for choice in names)
        if choices is not None:
            listed = _check.text(choices if listed is None else listed, where, "choices")
        if isinstance(default, (str, bytes)):
            default = (listed or b"").split(b"|").index(_check.text(default, where, "default"))
        check(_c.bpl_rule_add_param(self._handle, name, kind, float(default), lo, hi, listed,
                                    _check.text(doc, where, "doc")))

    def fix_param(self, name: Text) -> None:
        """Mark a hyperparameter as one that shapes the net (before attaching).

        The attach hook reads it to decide which tensors and buffers to add,
        so once the rule is attached setting another value raises StateError.
        """
        check(_c.bpl_rule_fix_param(self._handle, _check.text(name, "Rule.fix_param", "name")))

    @property
    def needs(self) -> Needs:
        """What the rule needs of every layer's kind (Needs flags); assignable
        before the rule is attached (a rule written here starts at Needs.ALL)."""
        return Needs(_c.bpl_rule_needs(self._handle))

    @needs.setter
    def needs(self, value: Needs | int) -> None:
        check(_c.bpl_rule_set_needs(self._handle, _check.unsigned(value, "Rule.needs", "needs")))

    def add_optimizer(self, group: Group | int | str = Group.FORWARD, prefix: Text = "",
                      optimizer: Optimizer | int | str = "adam", lr: float = 1e-3) -> None:
        """Declare (or re-default) the optimiser hyperparameters of a group."""
        where = "Rule.add_optimizer"
        check(_c.bpl_rule_add_optimizer(self._handle, to_enum(Group, group, where, "group"),
                                        _check.text(prefix, where, "prefix"),
                                        to_enum(Optimizer, optimizer, where, "optimizer"), lr))

    # ---- the recommended training set-up ----------------------------------------

    @property
    def recommended(self) -> dict[str, str]:
        """The rule's recommended training set-up, a dict of strings in order.

        Keys are the rule's hyperparameters ("optimizer", "lr", ...: apply
        them with set_string) or training choices the library does not own:
        "hidden" ("256,256"), "activation", "init", "batch_size", "epochs",
        "lr_decay" and "ignores" (see ignores()).  A copy: change it with
        set_recommendation().
        """
        out = {}
        key, value = ctypes.c_char_p(), ctypes.c_char_p()
        for i in range(_c.bpl_rule_recommendation_count(self._handle)):
            check(_c.bpl_rule_recommendation(self._handle, i, ctypes.byref(key),
                                             ctypes.byref(value)))
            out[_text(key)] = _text(value)
        return out

    def set_recommendation(self, key: Text,
                           value: Text | bool | float | Iterable[int] | None) -> None:
        """Recommend `value` for `key` (None removes the entry).

        `value` is text as a command line would give it; numbers, booleans
        and a sequence of layer sizes (for "hidden") are converted.
        """
        where = "Rule.set_recommendation"
        if value is None:
            text = None
        elif isinstance(value, bool):
            text = b"true" if value else b"false"
        elif isinstance(value, (int, float)):
            text = repr(value).encode("ascii")
        elif isinstance(value, (str, bytes)):
            text = _check.text(value, where, "value")
        else:
            text = b",".join(b"%d" % _check.size(units, where, "value") for units in value)
        check(_c.bpl_rule_set_recommendation(self._handle, _check.text(key, where, "key"),
                                             text))

    def ignores(self, choice: Text) -> bool:
        """True if the rule, with its current hyperparameters, ignores a
        training choice ("activation", "init", ...): its model fixes it."""
        out = ctypes.c_int()
        check(_c.bpl_rule_ignores(self._handle, _check.text(choice, "Rule.ignores", "choice"),
                                  ctypes.byref(out)))
        return bool(out.value)

    # ---- the review's properties -------------------------------------------------

    def get_property(self, prop: Property | int | str) -> PropertyValue:
        """One property (a Property or its name) as a PropertyValue."""
        tick, note = ctypes.c_int(), ctypes.c_char_p()
        check(_c.bpl_rule_property(self._handle, property_value(prop, "Rule.get_property"),
                                   ctypes.byref(tick), ctypes.byref(note)))
        return PropertyValue(as_member(Tick, tick.value), _text(note))

    def set_property(self, prop: Property | int | str, tick: Tick | int | str,
                     note: Text = "") -> None:
        """Declare a property: a Tick (or "yes", "no", "partial", ...) and a note."""
        where = "Rule.set_property"
        check(_c.bpl_rule_set_property(self._handle, property_value(prop, where),
                                       tick_value(tick, where), _check.text(note, where, "note")))

    def properties(self) -> dict[str, PropertyValue]:
        """The review's table for this rule: {property name: PropertyValue}."""
        return {property_name(p): self.get_property(p) for p in Property}


class PythonRule(Rule):
    """A learning rule written in Python, run by the library through its vtable.

    Subclass it and implement the hooks; each receives the Net that runs
    the rule::

        class MyBackprop(bioplaus.PythonRule):
            def forward(self, net, x, batch):
                net.forward_dense(x, batch)

            def compute_targets(self, net, y, batch):
                net.output_delta(y, batch)
                for l in range(net.layer_count - 1, 0, -1):
                    net.project_delta(l, l - 1, "weight", forward_weight=True)

            def gradients(self, net, groups):
                for l in range(net.layer_count):
                    net.weight_gradients(l)
                return {bioplaus.Group.FORWARD}

    gradients(net, groups) fills the gradient buffers of the tensors the rule
    trains (``layer.tensor_grad(name)``, or the building blocks) and returns
    the groups the library is to step (`groups` holds every group the rule
    has an optimiser for; return None to step them all): the library then
    applies the optimisers, all or nothing, and calls after_apply(net)
    (optional) once the step stands.  bioplaus.Net.alignment runs the hooks
    up to gradients and applies nothing.  A rule written for version 1
    implements update(net) instead, which computes the gradients and calls
    net.apply_gradients() itself; such rules keep working.

    A rule with state of its own (a step count) implements save_state(),
    returning bytes, and load_state(net, data), which gets them back when a
    saved net gets its rule back (before attach) -- both or neither.  The
    bytes travel in model files: encode them portably (struct with "<")
    and start with a format byte of your own.

    `x` and `y` are read-only [batch][inputs] / [batch][outputs] views of
    the library's memory (numpy arrays, or memoryviews without numpy),
    valid during the hook.  attach(net), optional, runs when the rule is
    attached and may add tensors and buffers.  A hook fails by raising: the
    library call that ran it raises the matching BioplausError, with the
    exception's message, chained to the original exception.

    The rule starts with the forward optimiser's hyperparameters (Adam, lr
    1e-3); declare more with add_param() in __init__ after calling
    super().__init__().  Its name defaults to the class attribute
    `rule_name`, else the class name.
    """

    rule_name: str | None = None

    def __init__(self, name: Text | None = None, description: str | None = None) -> None:
        name = _check.text(name or self.rule_name or type(self).__name__, "PythonRule", "name")
        vtable = _lib.RuleVtable()
        check(_c.bpl_rule_vtable_init(ctypes.byref(vtable), RULE_VTABLE_VERSION))
        vtable.name = name
        # The library calls these for as long as the rule lives: they are
        # attributes of the rule object, which the owning net keeps alive.
        self._hooks = {
            "forward": _lib.FORWARD_FN(self._on_forward),
            "compute_targets": _lib.TARGETS_FN(self._on_targets),
            "destroy": _lib.DESTROY_FN(self._on_destroy),
        }
        if self._overrides("attach"):
            self._hooks["attach"] = _lib.ATTACH_FN(self._on_attach)
        if self._overrides("gradients"):   # the version-2 contract
            self._hooks["gradients"] = _lib.GRADIENTS_FN(self._on_gradients)
            if self._overrides("after_apply"):
                self._hooks["after_apply"] = _lib.AFTER_APPLY_FN(self._on_after_apply)
        else:                               # version 1: update applies itself
            self._hooks["update"] = _lib.UPDATE_FN(self._on_update)
        if self._overrides("save_state") or self._overrides("load_state"):
            # Both or neither: bpl_rule_create refuses one alone.
            self._hooks["save_state"] = _lib.SAVE_STATE_FN(self._on_save_state)
            self._hooks["load_state"] = _lib.LOAD_STATE_FN(self._on_load_state)
        self._saving: bytes | None = None  # save_state's bytes between size query and copy
        for hook, function in self._hooks.items():
            setattr(vtable, hook, function)
        out = ctypes.c_void_p()
        self._ptr = None
        self._owner = None
        check(_c.bpl_rule_create(ctypes.byref(out), ctypes.byref(vtable), None))
        self._ptr = out.value
        if description:
            self.description = description

    # ---- hooks to override ---------------------------------------------------------

    def attach(self, net: Net) -> None:
        """Per-net set-up when the rule is attached (optional)."""

    def forward(self, net: Net, x: FloatArray, batch: int) -> None:
        """Forward dynamics; the default is the dense forward pass."""
        net.forward_dense(x, batch)

    def compute_targets(self, net: Net, y: FloatArray, batch: int) -> None:
        """Errors, targets or second-phase states from y (required)."""
        raise NotImplementedError("%s does not implement compute_targets"
                                  % type(self).__name__)

    def update(self, net: Net) -> None:  # type: ignore[override]
        """Version 1: gradients, then net.apply_gradients() (implement this or
        gradients)."""
        raise NotImplementedError("%s implements neither gradients nor update"
                                  % type(self).__name__)

    def gradients(self, net: Net,
                  groups: frozenset[Group]) -> Iterable[Group | int | str] | None:
        """Version 2: fill the gradients; return the groups to step (None: all
        of `groups`).  The library applies them."""
        raise NotImplementedError("%s does not implement gradients" % type(self).__name__)

    def after_apply(self, net: Net) -> None:
        """Version 2, optional: what the rule does once a training step stands."""

    def save_state(self) -> bytes:
        """Optional, with load_state: the rule's own state as bytes."""
        raise NotImplementedError("%s does not implement save_state" % type(self).__name__)

    def load_state(self, net: Net, data: bytes) -> None:
        """Optional, with save_state: take back what save_state returned."""
        raise NotImplementedError("%s does not implement load_state" % type(self).__name__)

    @classmethod
    def _overrides(cls, hook: str) -> bool:
        return getattr(cls, hook) is not getattr(PythonRule, hook)

    # ---- what the library calls ----------------------------------------------------

    @staticmethod
    def _net(address: int) -> Net:
        from .net import Net  # net.py imports this module
        return Net._from_address(address)

    @staticmethod
    def _rows(net: Net, address: int, batch: int, cols: int) -> FloatArray:
        return _arrays.view(address, batch, cols, net, readonly=True)

    def _on_attach(self, _self: Any, net_address: int) -> int:
        with callback_scope():
            try:
                self.attach(self._net(net_address))
                return 0
            except BaseException as exc:  # cannot cross the C frames
                return report_callback_exception(exc)

    def _on_forward(self, _self: Any, net_address: int, x: int, batch: int) -> int:
        with callback_scope():
            try:
                net = self._net(net_address)
                self.forward(net, self._rows(net, x, batch, net.inputs), batch)
                return 0
            except BaseException as exc:
                return report_callback_exception(exc)

    def _on_targets(self, _self: Any, net_address: int, y: int, batch: int) -> int:
        with callback_scope():
            try:
                net = self._net(net_address)
                self.compute_targets(net, self._rows(net, y, batch, net.outputs), batch)
                return 0
            except BaseException as exc:
                return report_callback_exception(exc)

    def _on_update(self, _self: Any, net_address: int) -> int:
        with callback_scope():
            try:
                self.update(self._net(net_address))
                return 0
            except BaseException as exc:
                return report_callback_exception(exc)

    def _on_gradients(self, _self: Any, net_address: int, groups: Any) -> int:
        with callback_scope():
            try:
                offered = frozenset(g for g in Group
                                    if g != Group.NONE and groups[0] & (1 << g))
                chosen = self.gradients(self._net(net_address), offered)
                if chosen is not None:
                    mask = 0
                    for group in chosen:
                        bit = to_enum(Group, group, "PythonRule.gradients", "group")
                        if bit == Group.NONE:
                            raise ValueError("Group.NONE is never trained")
                        mask |= 1 << bit
                    groups[0] = mask
                return 0
            except BaseException as exc:
                return report_callback_exception(exc)

    def _on_after_apply(self, _self: Any, net_address: int) -> int:
        with callback_scope():
            try:
                self.after_apply(self._net(net_address))
                return 0
            except BaseException as exc:
                return report_callback_exception(exc)

    def _on_save_state(self, _self: Any, data: int | None, capacity: int,
                       size_out: Any) -> int:
        with callback_scope():
            try:
                if not data:  # the size query: ask the rule once, keep its bytes
                    state = self.save_state()
                    if not isinstance(state, (bytes, bytearray, memoryview)):
                        raise TypeError("save_state must return bytes, not %s"
                                        % type(state).__name__)
                    self._saving = bytes(state)
                state = self._saving if self._saving is not None else b""
                size_out[0] = len(state)
                if data and capacity >= len(state):
                    ctypes.memmove(data, state, len(state))
                    self._saving = None
                return 0
            except BaseException as exc:
                self._saving = None
                return report_callback_exception(exc)

    def _on_load_state(self, _self: Any, net_address: int, data: int, size: int) -> int:
        with callback_scope():
            try:
                state = ctypes.string_at(data, size) if size else b""
                self.load_state(self._net(net_address), state)
                return 0
            except BaseException as exc:
                return report_callback_exception(exc)

    def _on_destroy(self, _self: Any) -> None:
        # The library freed the rule (with its net, or replaced in it).
        self._ptr = None
        self._owner = None
