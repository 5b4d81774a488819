"""The enumerations of bioplaus.h and bioplaus_rule.h as IntEnum classes.

The values are those of the C header and never change; every function of
the package that takes one of them also accepts its name as a string
("relu", "glorot_uniform", "cross_entropy", ...).
"""

import enum


class Status(enum.IntEnum):
    """Status codes returned by the library (enum bpl_status)."""

    OK = 0
    INVALID_ARG = -1
    NOMEM = -2
    SHAPE = -3
    STATE = -4
    UNSUPPORTED = -5
    VERSION = -6
    IO = -7
    FORMAT = -8
    NUMERIC = -9
    CALLBACK = -10
    NOT_FOUND = -11
    OVERFLOW = -12
    RANGE = -13
    INTERNAL = -99


class Activation(enum.IntEnum):
    """Activation functions of dense layers (enum bpl_activation)."""

    LINEAR = 0
    RELU = 1
    TANH = 2
    SIGMOID = 3
    SOFTMAX = 4


class Init(enum.IntEnum):
    """Tensor initialisers (enum bpl_init)."""

    GLOROT_UNIFORM = 0
    GLOROT_NORMAL = 1
    HE_UNIFORM = 2
    HE_NORMAL = 3
    ORTHOGONAL = 4
    ZERO = 5
    UNIFORM = 6
    NORMAL = 7
    CONSTANT = 8


class Loss(enum.IntEnum):
    """Losses of the output layer (enum bpl_loss)."""

    CROSS_ENTROPY = 1
    MSE = 2


class Optimizer(enum.IntEnum):
    """Optimisers of a parameter group (enum bpl_optimizer)."""

    SGD = 0
    MOMENTUM = 1
    RMSPROP = 2
    ADAM = 3


class Group(enum.IntEnum):
    """Parameter groups (enum bpl_group)."""

    NONE = -1
    FORWARD = 0
    FEEDBACK = 1


class Needs(enum.IntFlag):
    """What a rule needs of every layer's kind (enum bpl_needs), for Rule.needs."""

    FORWARD = 1
    SEND_ERROR = 2
    GRADIENTS = 4
    DENSE = 8
    ALL = 15


#: The most dimensions a shape has (BPL_MAX_DIMS): Net.input_shape.
MAX_DIMS = 4


class ParamKind(enum.IntEnum):
    """Kinds of rule hyperparameter (enum bpl_param_kind)."""

    REAL = 0
    INT = 1
    BOOL = 2
    CHOICE = 3


class Property(enum.IntEnum):
    """The seven properties of the review's table (enum bpl_property)."""

    EXACT_GRADIENTS = 0
    NO_WEIGHT_TRANSPORT = 1
    NO_SEPARATE_PATHWAYS = 2
    DENDRITIC_INTEGRATION = 3
    SEPARATE_WEIGHTS_LEARNED = 4
    LINEAR_STABILIZATION = 5
    EXPLICIT_ERROR = 6


class Tick(enum.IntEnum):
    """Values of a property (enum bpl_tick)."""

    NO = 0
    YES = 1
    PARTIAL = 2
    NOT_APPLICABLE = 3
    UNKNOWN = 4


class Phase(enum.IntEnum):
    """What a net is doing while it calls its rule's hooks (enum bpl_phase)."""

    IDLE = 0
    TRAIN = 1
    PREDICT = 2
    DIAGNOSE = 3


class Event(enum.IntEnum):
    """Events reported to the progress callback of Net.fit (enum bpl_event)."""

    BATCH = 1
    EPOCH = 2


class LogLevel(enum.IntEnum):
    """Levels of the messages sent to a net's log callback."""

    ERROR = 1
    WARNING = 2
    INFO = 3


class Split(enum.IntEnum):
    """Which file of the MNIST layout to load (enum bpl_mnist_split)."""

    TRAIN = 0
    TEST = 1


RULE_VTABLE_VERSION = 2

# BPL_STATUS_MIN: every status, now or later, lies in [STATUS_MIN, -1]; a
# rule hook returning one fails with exactly that status.
STATUS_MIN = -1000
