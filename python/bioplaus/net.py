"""Networks and their layers."""

from __future__ import annotations

import ctypes
import weakref
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, cast

from . import _arrays, _check, _lib
from ._handle import Handle, borrow, created
from ._names import activation_name, as_member, to_enum
from ._typing import AnyPath, ArrayLike, FloatArray, LogFn, ProgressFn, Text
from .enums import Activation, Event, Group, Init, Loss, LogLevel, MAX_DIMS, Phase, Status
from .errors import ShapeError, StateError, callback_scope, check, set_pending

if TYPE_CHECKING:
    from .dataset import Dataset
    from .rule import PythonRule, Rule

_c = _lib.lib


class Evaluation(NamedTuple):
    """Result of Net.evaluate: accuracy (fraction) and mean loss."""

    accuracy: float
    loss: float


class Profile(NamedTuple):
    """Timing of the training steps since profiling was switched on."""

    step_seconds: float
    gemm_seconds: float
    gemm_flops: float
    steps: int


class FitProgress(NamedTuple):
    """Where Net.fit is: epoch (from 1), step (from 1), steps per epoch."""

    epoch: int
    step: int
    steps: int


class EpochResult(NamedTuple):
    """One epoch of Net.fit's history: the epoch (from 1), its mean training
    loss (over its examples, each batch's loss taken before its update) and
    the steps it took."""

    epoch: int
    loss: float
    steps: int


class TensorInfo(NamedTuple):
    """Shape and parameter group of a layer tensor."""

    rows: int
    cols: int
    group: Group | int


# Nets by address, so that a rule hook receiving a bpl_net * can hand the
# Python object that owns it to the rule.
_NETS: weakref.WeakValueDictionary[int, Net] = weakref.WeakValueDictionary()


class Net(Handle):
    """A fully connected network (bpl_net): layers, a rule, a generator.

    ``Net(inputs, seed)`` makes an empty net with `inputs` input features.
    The net owns its layers and, once attached, its rule.  Use it as a
    context manager or call close() to free it at a known time::

        with bioplaus.Net(784, seed=1) as net:
            net.add_dense(256, "relu", "he_normal")
            net.add_dense(10, "softmax")
            net.rule = bioplaus.Rule.builtin("backprop")
            net.fit(train, epochs=10, batch_size=128)
    """

    _kind = "net"
    _ptr: int | None
    _python_rule: PythonRule | None
    _rule_views: weakref.WeakSet[Rule]
    _log_callback: Any
    _forward_input: _arrays.Floats | None

    def __init__(self, inputs: int, seed: int = 0) -> None:
        self._ptr = None  # close() has nothing to free if creation fails
        inputs = _check.size(inputs, "Net", "inputs")
        seed = _check.uint64(seed, "Net", "seed")
        out = ctypes.c_void_p()
        check(_c.bpl_net_create(ctypes.byref(out), inputs, seed))
        self._init_handle(created(out), owned=True)

    def _init_handle(self, address: int, owned: bool) -> None:
        self._ptr = address
        self._owned = owned
        self._python_rule = None      # keeps a Python rule's callbacks alive
        self._rule_views = weakref.WeakSet()
        self._log_callback = None
        self._profiling = False
        self._forward_input = None    # what forward_dense's x pointer points into
        if owned:
            _NETS[address] = self

    @classmethod
    def _wrap(cls, address: int, owned: bool) -> Net:
        net = cls.__new__(cls)
        net._init_handle(address, owned)
        return net

    @classmethod
    def _from_address(cls, address: int) -> Net:
        """The Net object of a bpl_net * (a borrowed view if none is known)."""
        net = _NETS.get(address)
        return net if net is not None else cls._wrap(address, owned=False)

    @classmethod
    def load(cls, path: AnyPath) -> Net:
        """Load a net saved by save(); a built-in rule comes back attached.

        A rule that is not built in stays pending: attach a rule of the same
        name (e.g. the same PythonRule subclass) to restore its
        hyperparameters, tensors and state (its load_state).
        """
        path = _check.path(path, "Net.load")
        out = ctypes.c_void_p()
        check(_c.bpl_net_load(ctypes.byref(out), path))
        return cls._wrap(created(out), owned=True)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Net:
        """A net from the bytes of to_bytes() (or of a model file).

        The same checks as load(): the bytes may come from anywhere.  A rule
        that is not built in stays pending, as with load().
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("Net.from_bytes: data must be bytes-like, not %s"
                            % type(data).__name__)
        data = bytes(data)
        out = ctypes.c_void_p()
        check(_c.bpl_net_load_from_buffer(ctypes.byref(out), data, len(data)))
        return cls._wrap(created(out), owned=True)

    def to_bytes(self) -> bytes:
        """The net as bytes: exactly what save() writes to a file."""
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        check(_c.bpl_net_save_to_buffer(self._handle, ctypes.byref(data), ctypes.byref(size)))
        try:
            return ctypes.string_at(created(data), size.value)
        finally:
            _c.bpl_buffer_free(data.value)

    def __reduce__(self) -> tuple[Callable[[bytes], Net], tuple[bytes]]:
        # Pickling goes through the model bytes: a built-in rule comes back
        # attached; a Python rule is pending until one of its name is
        # attached again (it gets back its hyperparameters, tensors and state).
        return (_from_bytes, (self.to_bytes(),))

    # ---- lifetime --------------------------------------------------------

    @property
    def _handle(self) -> int:
        if self._ptr is None:
            raise StateError(Status.STATE, "the net is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        """True once close() has run."""
        return self._ptr is None

    def close(self) -> None:
        """Destroy the net, its layers and its rule.  Idempotent.

        Views of its tensors and layers must not be used afterwards.  Raises
        StateError while a running call (fit, train_batch, predict, evaluate,
        alignment, set_rule) uses the net, e.g. from its progress callback or
        a rule hook: close after that call returns.
        """
        super().close()

    def _release(self) -> None:
        if self._ptr is None or not self._owned:
            self._ptr = None
            return
        address, self._ptr = self._ptr, None
        _NETS.pop(address, None)
        _c.bpl_net_destroy(address)
        self._forget_rules()
        self._python_rule = None
        self._log_callback = None

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<bioplaus.Net closed>"
        sizes = [str(self.inputs)] + [str(layer.units) for layer in self.layers]
        rule = _c.bpl_net_rule(self._ptr)
        name = _c.bpl_rule_name(rule).decode() if rule else None
        return "<bioplaus.Net %s rule=%s>" % ("-".join(sizes), name)

    # ---- construction and introspection ----------------------------------

    def add_dense(self, units: int, activation: Activation | int | str = "tanh",
                  init: Init | int | str = "glorot_uniform") -> Layer:
        """Append a dense layer; return it.

        `activation` and `init` are names ("relu", "he_normal") or
        Activation / Init values.  Layers must be added before a rule is
        attached; a softmax layer must be the output layer.
        """
        where = "Net.add_dense"
        units = _check.size(units, where, "units")
        check(_c.bpl_net_add_dense(self._handle, units,
                                   to_enum(Activation, activation, where, "activation"),
                                   to_enum(Init, init, where, "init")))
        return self.layer(self.layer_count - 1)

    def add_conv2d(self, channels: int, kernel: int | tuple[int, int], stride: int = 1,
                   padding: int = 0, activation: Activation | int | str = "relu",
                   init: Init | int | str = "he_normal") -> Layer:
        """Append a 2-D convolution of `channels` output maps; return it.

        `kernel` is an int (square) or a (height, width) pair; `padding`
        zeros are added on every side.  The layer below (or the net's
        input_shape, set first) must be C x H x W.
        """
        where = "Net.add_conv2d"
        kernel_h, kernel_w = _pair(kernel, where, "kernel")
        check(_c.bpl_net_add_conv2d(self._handle, _check.size(channels, where, "channels"),
                                    kernel_h, kernel_w, _check.size(stride, where, "stride"),
                                    _check.size(padding, where, "padding"),
                                    to_enum(Activation, activation, where, "activation"),
                                    to_enum(Init, init, where, "init")))
        return self.layer(self.layer_count - 1)

    def add_maxpool2d(self, window: int, stride: int | None = None) -> Layer:
        """Append a max-pooling layer over window x window, moved by `stride`
        (the window when None); return it."""
        return self._add_pool(_c.bpl_net_add_maxpool2d, "Net.add_maxpool2d", window, stride)

    def add_avgpool2d(self, window: int, stride: int | None = None) -> Layer:
        """Append an average-pooling layer, as add_maxpool2d; return it."""
        return self._add_pool(_c.bpl_net_add_avgpool2d, "Net.add_avgpool2d", window, stride)

    def _add_pool(self, add: Callable[..., int], where: str, window: int,
                  stride: int | None) -> Layer:
        window = _check.size(window, where, "window")
        stride = 0 if stride is None else _check.size(stride, where, "stride")
        check(add(self._handle, window, stride))
        return self.layer(self.layer_count - 1)

    def set_loss(self, loss: Loss | int | str) -> None:
        """Select the loss: "cross_entropy" (the default) or "mse"."""
        check(_c.bpl_net_set_loss(self._handle, to_enum(Loss, loss, "Net.set_loss", "loss")))

    @property
    def loss(self) -> Loss | int:
        """The loss (a Loss); assignable by name or value."""
        return as_member(Loss, _c.bpl_net_loss(self._handle))

    @loss.setter
    def loss(self, value: Loss | int | str) -> None:
        self.set_loss(value)

    @property
    def inputs(self) -> int:
        """Number of input features."""
        return _c.bpl_net_inputs(self._handle)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input's shape, a tuple: (inputs,) unless set, e.g. (3, 32, 32)
        for C x H x W images.  Assignable before the first layer is added, to
        dims (at most MAX_DIMS, each > 0) whose product is `inputs`."""
        dims, ndim = (ctypes.c_size_t * MAX_DIMS)(), ctypes.c_size_t()
        check(_c.bpl_net_get_input_shape(self._handle, dims, MAX_DIMS, ctypes.byref(ndim)))
        return tuple(dims[:ndim.value])

    @input_shape.setter
    def input_shape(self, dims: tuple[int, ...] | list[int]) -> None:
        where = "Net.input_shape"
        if isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
            raise TypeError("%s: give a sequence of dims, not %s" % (where, type(dims).__name__))
        values = [_check.size(d, where, "a dim") for d in dims]
        array = (ctypes.c_size_t * max(len(values), 1))(*values)
        check(_c.bpl_net_set_input_shape(self._handle, array, len(values)))

    @property
    def outputs(self) -> int:
        """Number of outputs (0 without layers)."""
        return _c.bpl_net_outputs(self._handle)

    @property
    def layer_count(self) -> int:
        """Number of layers (hidden and output)."""
        return _c.bpl_net_layer_count(self._handle)

    @property
    def param_count(self) -> int:
        """Number of forward parameters (weights and biases)."""
        return _c.bpl_net_param_count(self._handle)

    @property
    def seed(self) -> int:
        """The seed the net was created with."""
        return _c.bpl_net_seed(self._handle)

    @property
    def phase(self) -> Phase | int:
        """What the net is doing (a Phase); meant for rule hooks."""
        return as_member(Phase, _c.bpl_net_phase(self._handle))

    def layer(self, index: int) -> Layer:
        """The layer at `index` (0 = first hidden layer, -1 = the output)."""
        index = _check.as_int(index, "Net.layer", "index")
        count = self.layer_count
        position = index + count if index < 0 else index
        if not 0 <= position < count:
            raise IndexError("layer %d out of range: the net has %d layers" % (index, count))
        return Layer(self, _c.bpl_net_layer(self._handle, position))

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers, first hidden to output, as a tuple of Layer views."""
        return tuple(self.layer(i) for i in range(self.layer_count))

    # ---- the rule ----------------------------------------------------------

    def set_rule(self, rule: Rule) -> None:
        """Attach `rule`; the net owns it from now on.

        The previously attached rule is destroyed, also when attaching
        fails (for example an attach hook raising); the new rule then stays
        with the caller.
        """
        previous = _c.bpl_net_rule(self._handle)
        try:
            with borrow("Net.set_rule", self, rule) as (net, address):
                check(_c.bpl_net_set_rule(net, address))
        finally:
            # What the library did, whatever check() raised: a failed attach
            # still dropped the old rule, and an exception of the log
            # callback is raised after the rule was attached.
            self._follow_rule(previous, rule)

    def _follow_rule(self, previous: int | None, rule: Rule) -> None:
        """Bring the Rule objects in line with the rule the net now has."""
        from .rule import PythonRule  # rule.py imports this module
        current = _c.bpl_net_rule(self._ptr) if self._ptr is not None else None
        if current == previous:
            return
        self._forget_rules()
        self._python_rule = None
        if current is not None and current == rule._ptr:
            rule._adopt(self)
            self._rule_views.add(rule)
            self._python_rule = rule if isinstance(rule, PythonRule) else None

    def _forget_rules(self) -> None:
        """Invalidate the Rule objects of a destroyed rule."""
        for view in list(self._rule_views):
            view._invalidate()
        self._rule_views = weakref.WeakSet()

    @property
    def rule(self) -> Rule | None:
        """The attached rule (a Rule borrowed from the net), or None."""
        from .rule import Rule
        address = _c.bpl_net_rule(self._handle)
        if not address:
            return None
        for view in self._rule_views:
            if view._ptr == address:
                return view
        view = Rule._borrow(address, self)
        self._rule_views.add(view)
        return view

    @rule.setter
    def rule(self, rule: Rule) -> None:
        self.set_rule(rule)

    def set_log(self, callback: LogFn | None) -> None:
        """Send the library's log messages to callback(level, message).

        `level` is a LogLevel.  None switches logging off.  An exception
        raised by the callback is raised again when the library call that
        logged returns.
        """
        if callback is None:
            no_callback = _lib.LOG_FN()  # type: ignore[call-overload]  # NULL
            check(_c.bpl_net_set_log_fn(self._handle, no_callback, None))
            self._log_callback = None
            return

        def on_log(level, message, _user_data):
            with callback_scope(decides=False):
                try:
                    callback(as_member(LogLevel, level), message.decode("utf-8", "replace"))
                except BaseException as exc:  # cannot cross the C frames
                    set_pending(exc)

        function = _lib.LOG_FN(on_log)
        check(_c.bpl_net_set_log_fn(self._handle, function, None))
        self._log_callback = function  # alive as long as the net may call it

    # ---- training and inference ------------------------------------------

    def _batch(self, x: ArrayLike, y: ArrayLike) -> tuple[_arrays.Floats, _arrays.Floats]:
        xf = _arrays.as_input(x, self.inputs, "x")
        yf = _arrays.as_input(y, self.outputs or None, "y")
        if xf.rows != yf.rows:
            raise ShapeError(Status.SHAPE, "x has %d rows but y has %d" % (xf.rows, yf.rows))
        return xf, yf

    def train_batch(self, x: ArrayLike, y: ArrayLike) -> float:
        """One training step on x [batch][inputs], y [batch][outputs].

        Returns the batch's mean loss before the update.
        """
        xf, yf = self._batch(x, y)
        loss = ctypes.c_double()
        with borrow("Net.train_batch", self) as (net,):
            check(_c.bpl_net_train_batch(net, xf.address, yf.address, xf.rows,
                                         ctypes.byref(loss)))
        return loss.value

    def fit(self, dataset: Dataset, epochs: int = 1, batch_size: int = 32,
            progress: ProgressFn | None = None) -> list[EpochResult]:
        """Train for `epochs` passes over `dataset` in shuffled mini-batches.

        Returns the history: one EpochResult(epoch, loss, steps) per
        completed epoch, in order, `loss` being the epoch's mean training
        loss (the loss of Event.EPOCH).  An epoch that progress stopped
        part-way has no entry, so the list is shorter than `epochs` then.

        progress(event, epoch, step, steps, loss), if given, runs after each
        batch (event Event.BATCH, the batch's loss) and each epoch
        (Event.EPOCH, the epoch's mean loss); a true return value stops
        training.  It may call evaluate() and predict(), but not close the
        net or the dataset (StateError).  An exception it raises stops
        training and is raised again here.
        """
        epochs = _check.size(epochs, "Net.fit", "epochs")
        batch_size = _check.size(batch_size, "Net.fit", "batch_size")
        history: list[EpochResult] = []
        function = _lib.PROGRESS_FN(_progress_callback(progress, history))
        with borrow("Net.fit", self, dataset) as (net, data):
            check(_c.bpl_net_fit(net, data, epochs, batch_size, function, None))
        return history

    def predict(self, x: ArrayLike, out: ArrayLike | None = None) -> FloatArray:
        """Outputs for x [batch][inputs], as [batch][outputs].

        `out`, if given, is written in place (a float32 C-contiguous numpy
        array, or a writable float32 buffer without numpy) and returned.
        """
        xf = _arrays.as_input(x, self.inputs, "x")
        of = _arrays.as_output(out, xf.rows, self.outputs)
        with borrow("Net.predict", self) as (net,):
            check(_c.bpl_net_predict(net, xf.address, xf.rows, of.address, of.size))
        return _arrays.result(of, out)

    def evaluate(self, dataset: Dataset) -> Evaluation:
        """Accuracy and mean loss over `dataset`, as an Evaluation."""
        accuracy, loss = ctypes.c_double(), ctypes.c_double()
        with borrow("Net.evaluate", self, dataset) as (net, data):
            check(_c.bpl_net_evaluate(net, data, ctypes.byref(accuracy), ctypes.byref(loss)))
        return Evaluation(accuracy.value, loss.value)

    def alignment(self, x: ArrayLike, y: ArrayLike) -> list[float]:
        """Per layer, the angle in degrees between the rule's update and the
        backprop gradient on this batch (NaN where either is zero)."""
        xf, yf = self._batch(x, y)
        count = self.layer_count
        angles = (ctypes.c_double * max(count, 1))()
        with borrow("Net.alignment", self) as (net,):
            check(_c.bpl_net_alignment(net, xf.address, yf.address, xf.rows, angles, count))
        return list(angles[:count])

    # ---- diagnostics, persistence, randomness -------------------------------

    @property
    def profiling(self) -> bool:
        """Whether training steps are timed; setting it resets the profile."""
        return self._profiling

    @profiling.setter
    def profiling(self, on: bool) -> None:
        check(_c.bpl_net_set_profiling(self._handle, 1 if on else 0))
        self._profiling = bool(on)

    def profile(self) -> Profile:
        """Training time and matrix-product work since profiling began."""
        step, gemm, flops = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        steps = ctypes.c_uint64()
        check(_c.bpl_net_profile(self._handle, ctypes.byref(step), ctypes.byref(gemm),
                                 ctypes.byref(flops), ctypes.byref(steps)))
        return Profile(step.value, gemm.value, flops.value, steps.value)

    def progress(self) -> FitProgress:
        """Where fit() is (all zero outside fit), as a FitProgress."""
        values = [ctypes.c_size_t() for _ in range(3)]
        check(_c.bpl_net_progress(self._handle, *map(ctypes.byref, values)))
        return FitProgress(*(v.value for v in values))

    def save(self, path: AnyPath) -> None:
        """Save architecture, tensors, optimiser and generator state and rule
        (its hyperparameters and state)."""
        path = _check.path(path, "Net.save")
        check(_c.bpl_net_save(self._handle, path))

    def random_uniform(self, n: int, low: float = 0.0, high: float = 1.0) -> FloatArray:
        """`n` draws from U(low, high) from the net's generator."""
        n = _check.size(n, "Net.random_uniform", "n")
        out = _arrays.as_output(None, 1, n)
        check(_c.bpl_net_random_uniform(self._handle, out.address, n, low, high))
        return _arrays.flat_result(out)

    def random_normal(self, n: int, mean: float = 0.0, stddev: float = 1.0) -> FloatArray:
        """`n` draws from N(mean, stddev^2) from the net's generator."""
        n = _check.size(n, "Net.random_normal", "n")
        out = _arrays.as_output(None, 1, n)
        check(_c.bpl_net_random_normal(self._handle, out.address, n, mean, stddev))
        return _arrays.flat_result(out)

    # ---- building blocks for rules ------------------------------------------

    def _rows(self, data: ArrayLike, cols: int | None, batch: int | None, what: str,
              where: str) -> tuple[_arrays.Floats, int]:
        if batch is not None:
            batch = _check.size(batch, where, "batch")
        floats = _arrays.as_input(data, cols, what)
        rows = floats.rows if batch is None else batch
        if rows > floats.rows:
            raise ShapeError(Status.SHAPE, "%s has %d rows, batch is %d"
                             % (what, floats.rows, rows))
        return floats, rows

    def forward_dense(self, x: ArrayLike, batch: int | None = None) -> None:
        """The dense forward pass: activation = act(input W^T + b), every layer.

        The library reads x again later in the step (it is the first layer's
        input), so pass the x the hook received, or an array that outlives
        the step; a converted copy is kept alive until the next call.
        """
        xf, rows = self._rows(x, self.inputs, batch, "x", "Net.forward_dense")
        check(_c.bpl_net_forward_dense(self._handle, xf.address, rows))
        self._forward_input = xf

    def output_delta(self, y: ArrayLike, batch: int | None = None) -> None:
        """dLoss/d(pre-activation) of the output layer / batch into its "delta"."""
        yf, rows = self._rows(y, self.outputs or None, batch, "y", "Net.output_delta")
        check(_c.bpl_net_output_delta(self._handle, yf.address, rows))

    def project_delta(self, from_layer: int, to_layer: int, m: ArrayLike | Text,
                      forward_weight: bool = False) -> None:
        """delta[to] = (delta[from] M^T) (.) act'(activation[to]).

        `m` is a [units(to)][units(from)] matrix (a feedback matrix), or
        with forward_weight=True the [units(from)][units(to)] weight of
        layer `from` used as is.  A string names a tensor of layer `from`.
        """
        where = "Net.project_delta"
        from_layer = _check.size(from_layer, where, "from_layer")
        to_layer = _check.size(to_layer, where, "to_layer")
        if isinstance(m, (str, bytes)):
            m = self.layer(from_layer).tensor(m)
        floats = _arrays.as_input(m, None, "m")
        count = self.layer_count
        if 0 <= from_layer < count and 0 <= to_layer < count:
            need = (_c.bpl_layer_units(_c.bpl_net_layer(self._handle, from_layer))
                    * _c.bpl_layer_units(_c.bpl_net_layer(self._handle, to_layer)))
            if floats.size != need:
                raise ShapeError(Status.SHAPE, "project_delta: m holds %d values, "
                                 "layers %d and %d need %d"
                                 % (floats.size, from_layer, to_layer, need))
        check(_c.bpl_net_project_delta(self._handle, from_layer, to_layer, floats.address,
                                       1 if forward_weight else 0))

    def weight_gradients(self, layer: int) -> None:
        """grad W = delta^T input and grad b = column sums of delta, of `layer`."""
        layer = _check.size(layer, "Net.weight_gradients", "layer")
        check(_c.bpl_net_weight_gradients(self._handle, layer))

    def apply_gradients(self, *groups: Group | int | str) -> None:
        """One optimiser step for the given groups (default: Group.FORWARD)."""
        mask = 0
        for group in groups or (Group.FORWARD,):
            bit = to_enum(Group, group, "Net.apply_gradients", "group")
            mask |= 1 << _check.integer(bit, "Net.apply_gradients", "group", 0,
                                        _check.UNSIGNED_BITS - 1, "bit of a group mask")
        check(_c.bpl_net_apply_gradients(self._handle, mask))


def _progress_callback(progress: ProgressFn | None,
                       history: list[EpochResult]) -> Callable[..., int]:
    """The C progress callback of fit: it records each epoch in `history`,
    then calls `progress`, if given, whose true result stops training."""
    def on_progress(event: int, epoch: int, step: int, steps: int, loss: float,
                    _user_data: Any) -> int:
        with callback_scope():
            try:
                if event == Event.EPOCH:
                    history.append(EpochResult(epoch, loss, steps))
                if progress is None:
                    return 0
                # An Event, unless the library has one this package does not know.
                member = cast(Event, as_member(Event, event))
                return 1 if progress(member, epoch, step, steps, loss) else 0
            except BaseException as exc:  # cannot cross the C frames
                set_pending(exc)
                return 1

    return on_progress


def _pair(value: int | tuple[int, int], where: str, what: str) -> tuple[int, int]:
    """An int or a pair of ints, as (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError("%s: %s must be an int or a (height, width) pair" % (where, what))
        return _check.size(value[0], where, what), _check.size(value[1], where, what)
    size = _check.size(value, where, what)
    return size, size


class Layer:
    """A layer of a net (bpl_layer), borrowed: it keeps its net alive.

    Tensors ("weight" [units][inputs], "bias" [1][units], and whatever the
    rule adds) are read with get() and written with set(); rule hooks use
    tensor(), tensor_grad(), buffer() and input(), which return views of the
    library's memory.
    """

    def __init__(self, net: Net, address: int) -> None:
        self._net = net
        self._ptr = address

    @property
    def _handle(self) -> int:
        self._net._handle  # raises if the net is closed
        return self._ptr

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layer) and other._ptr == self._ptr

    def __hash__(self) -> int:
        return hash(self._ptr)

    def __repr__(self) -> str:
        if self.kind == "dense":
            return "<bioplaus.Layer %d: %d -> %d %s>" % (
                self.index, self.inputs, self.units, activation_name(self.activation))
        return "<bioplaus.Layer %d %s: %d -> %s %s>" % (
            self.index, self.kind, self.inputs, "x".join(map(str, self.shape)),
            activation_name(self.activation))

    @property
    def net(self) -> Net:
        """The net this layer belongs to."""
        return self._net

    @property
    def index(self) -> int:
        """Position in the net (0 = first hidden layer)."""
        return _c.bpl_layer_index(self._handle)

    @property
    def units(self) -> int:
        """Number of neurons."""
        return _c.bpl_layer_units(self._handle)

    @property
    def inputs(self) -> int:
        """Width of the layer's input."""
        return _c.bpl_layer_inputs(self._handle)

    @property
    def activation(self) -> Activation | int:
        """The activation function (an Activation)."""
        return as_member(Activation, _c.bpl_layer_activation(self._handle))

    @property
    def param_count(self) -> int:
        """Elements of the weight and bias; 0 for a pooling layer."""
        return _c.bpl_layer_param_count(self._handle)

    @property
    def kind(self) -> str:
        """The layer's kind: "dense", "conv2d", "maxpool2d" or "avgpool2d"."""
        return _c.bpl_layer_kind(self._handle).decode()

    @property
    def shape(self) -> tuple[int, ...]:
        """The output's shape, a tuple: (units,) or (C, H, W)."""
        dims, ndim = (ctypes.c_size_t * MAX_DIMS)(), ctypes.c_size_t()
        check(_c.bpl_layer_get_shape(self._handle, dims, MAX_DIMS, ctypes.byref(ndim)))
        return tuple(dims[:ndim.value])

    @property
    def window(self) -> tuple[int, int, int, int]:
        """(kernel_h, kernel_w, stride, padding) of a spatial layer; zeros for
        a dense one."""
        values = [ctypes.c_size_t() for _ in range(4)]
        check(_c.bpl_layer_get_window(self._handle, *[ctypes.byref(v) for v in values]))
        kernel_h, kernel_w, stride, padding = (v.value for v in values)
        return kernel_h, kernel_w, stride, padding

    def tensor_names(self) -> list[str]:
        """Names of the layer's tensors."""
        handle = self._handle
        return [_c.bpl_layer_tensor_name(handle, i).decode("utf-8")
                for i in range(_c.bpl_layer_tensor_count(handle))]

    def tensor_info(self, name: Text) -> TensorInfo:
        """Shape and group of a tensor, as a TensorInfo."""
        rows, cols, group = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_int()
        name = _check.text(name, "Layer.tensor_info", "name")
        check(_c.bpl_layer_tensor_info(self._handle, name, ctypes.byref(rows),
                                       ctypes.byref(cols), ctypes.byref(group)))
        return TensorInfo(rows.value, cols.value, as_member(Group, group.value))

    def get(self, name: Text) -> FloatArray:
        """A copy of tensor `name`, [rows][cols] (a list of rows without numpy)."""
        name = _check.text(name, "Layer.get", "name")
        info = self.tensor_info(name)
        out = _arrays.as_output(None, info.rows, info.cols)
        check(_c.bpl_layer_get_tensor(self._handle, name, out.address, out.size))
        return _arrays.result(out)

    def set(self, name: Text, values: ArrayLike) -> None:
        """Copy `values` ([rows][cols], or flat) into tensor `name`."""
        name = _check.text(name, "Layer.set", "name")
        info = self.tensor_info(name)
        floats = _arrays.as_input(values, info.cols, name.decode("utf-8", "replace"))
        if floats.size != info.rows * info.cols:
            raise ShapeError(Status.SHAPE, "tensor '%s' is %d x %d, got %d values"
                             % (name.decode("utf-8", "replace"), info.rows, info.cols,
                                floats.size))
        check(_c.bpl_layer_set_tensor(self._handle, name, floats.address, floats.size))

    def is_frozen(self, name: Text = "weight") -> bool:
        """True if tensor `name` is frozen (skipped by the optimiser)."""
        return bool(_c.bpl_layer_frozen(self._handle,
                                        _check.text(name, "Layer.is_frozen", "name")))

    def set_frozen(self, name: Text = "weight", frozen: bool = True) -> None:
        """Freeze or unfreeze a trained tensor."""
        check(_c.bpl_layer_set_frozen(self._handle, _check.text(name, "Layer.set_frozen", "name"),
                                      1 if frozen else 0))

    @property
    def frozen(self) -> bool:
        """Whether both "weight" and "bias" are frozen; assignable."""
        return self.is_frozen("weight") and self.is_frozen("bias")

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.set_frozen("weight", value)
        self.set_frozen("bias", value)

    # ---- for rule authors ----------------------------------------------------

    def add_tensor(self, name: Text, rows: int, cols: int,
                   group: Group | int | str = Group.NONE,
                   init: Init | int | str = "glorot_uniform", gain: float = 1.0) -> bool:
        """Add a tensor (in an attach hook); True if new, False if it existed."""
        where = "Layer.add_tensor"
        name = _check.text(name, where, "name")
        rows = _check.size(rows, where, "rows")
        cols = _check.size(cols, where, "cols")
        created = ctypes.c_int()
        check(_c.bpl_layer_add_tensor(self._handle, name, rows, cols,
                                      to_enum(Group, group, where, "group"),
                                      to_enum(Init, init, where, "init"), gain,
                                      ctypes.byref(created)))
        return bool(created.value)

    def init_tensor(self, name: Text, init: Init | int | str, gain: float = 1.0) -> None:
        """Re-initialise an existing tensor."""
        where = "Layer.init_tensor"
        check(_c.bpl_layer_init_tensor(self._handle, _check.text(name, where, "name"),
                                       to_enum(Init, init, where, "init"), gain))

    def add_buffer(self, name: Text, cols: int) -> None:
        """Register a per-example batch buffer `cols` floats wide."""
        where = "Layer.add_buffer"
        check(_c.bpl_layer_add_buffer(self._handle, _check.text(name, where, "name"),
                                      _check.size(cols, where, "cols")))

    # ---- building blocks, whatever the layer's kind ---------------------------

    def forward(self, inputs: ArrayLike, activation: Activation | int | str | None = None,
                out: ArrayLike | None = None) -> FloatArray:
        """act(f(inputs) + bias) for rows [batch][inputs]: the layer's forward
        map (inputs W^T + b for a dense layer) with `activation` (default: the
        layer's own; "linear" gives the pre-activation).  Returns out, or a
        new [batch][units] array."""
        where = "Layer.forward"
        act = self.activation if activation is None else activation
        floats = _arrays.as_input(inputs, self.inputs, "inputs")
        result = _arrays.as_output(out, floats.rows, self.units)
        check(_c.bpl_layer_forward(self._handle, floats.address, floats.rows,
                                   to_enum(Activation, act, where, "activation"),
                                   result.address))
        return _arrays.result(result, out)

    def send_error(self, err: ArrayLike, through: Text | None = None, transposed: bool = False,
                   alpha: float = 1.0, beta: float = 0.0,
                   out: ArrayLike | None = None) -> FloatArray:
        """beta out + alpha (err sent to the input through M): err [batch][units]
        times the weight (`through` None), or the layer's tensor `through` of
        the weight's shape, or with transposed=True of its transpose's.
        Returns out, or a new [batch][inputs] array (then beta must be 0)."""
        where = "Layer.send_error"
        floats = _arrays.as_input(err, self.units, "err")
        result = _arrays.as_output(out, floats.rows, self.inputs)
        name = None if through is None else _check.text(through, where, "through")
        check(_c.bpl_layer_send_error(self._handle, name, 1 if transposed else 0,
                                      floats.address, floats.rows, alpha,
                                      beta if out is not None else 0.0, result.address))
        return _arrays.result(result, out)

    def gradients(self, err: ArrayLike, inputs: ArrayLike, alpha: float = 1.0,
                  bias_scale: float = 1.0, bias_divisor: float = 1.0) -> None:
        """Write the weight's and bias's gradients (tensor_grad): alpha err^T
        inputs, and the column sums of bias_scale err / bias_divisor."""
        e = _arrays.as_input(err, self.units, "err")
        x = _arrays.as_input(inputs, self.inputs, "inputs")
        if x.rows != e.rows:
            raise ShapeError(Status.SHAPE, "Layer.gradients: err has %d rows, inputs %d"
                             % (e.rows, x.rows))
        check(_c.bpl_layer_gradients(self._handle, e.address, x.address, e.rows, alpha,
                                     bias_scale, bias_divisor))

    def _view(self, function: Callable[..., int], name: Text | None, where: str,
              readonly: bool = False) -> FloatArray:
        data, rows, cols = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_size_t()
        named = (_check.text(name, where, "name"),) if name is not None else ()
        args = (self._handle,) + named
        check(function(*args, ctypes.byref(data), ctypes.byref(rows), ctypes.byref(cols)))
        return _arrays.view(data.value, rows.value, cols.value, self._net, readonly)

    def tensor(self, name: Text) -> FloatArray:
        """A writable view of tensor `name` (no copy).

        Valid until another rule is attached or the net is closed.
        """
        return self._view(_c.bpl_layer_tensor, name, "Layer.tensor")

    def tensor_grad(self, name: Text) -> FloatArray:
        """A writable view of the gradient of tensor `name` (no copy)."""
        return self._view(_c.bpl_layer_tensor_grad, name, "Layer.tensor_grad")

    def buffer(self, name: Text) -> FloatArray:
        """A writable view of batch buffer `name` ([batch][cols]).

        Valid only during the current hook call.
        """
        return self._view(_c.bpl_layer_buffer, name, "Layer.buffer")

    def input(self) -> FloatArray:
        """A read-only view of the layer's input for the current batch."""
        return self._view(_c.bpl_layer_input, None, "Layer.input", readonly=True)


def _from_bytes(data: bytes) -> Net:
    """Unpickle a Net (a module-level function, as pickle needs)."""
    return Net.from_bytes(data)
