/*
 * fuzz_format.h - how the fuzz targets read their input, shared with the
 * program that writes their seed corpora.
 */
#ifndef BPL_FUZZ_FORMAT_H
#define BPL_FUZZ_FORMAT_H

/* ---- fuzz_idx --------------------------------------------------------------
 *
 *   byte 0   flags (below); bits 4-7: bytes cut from a damaged stream, minus 1
 *   byte 1   n_classes - 1 of the first load
 *   byte 2-3 little-endian length of the image file; the labels are the rest
 *   byte 4-  the image file, then the label file
 *
 * Compression happens in the target, so mutations act on the IDX content
 * rather than being rejected by the gzip checksum; a seed whose files are
 * gzip streams already, with no flag set, covers corrupt gzip data. */
enum {
    IDX_HEAD_SIZE = 4,
    IDX_GZIP_IMAGES = 1 << 0,
    IDX_GZIP_LABELS = 1 << 1,
    IDX_CUT_IMAGES = 1 << 2, /* drop the end of the compressed images */
    IDX_CUT_LABELS = 1 << 3
};

/* ---- fuzz_params -----------------------------------------------------------
 *
 *   byte 0   built-in rule: index modulo bpl_rule_builtin_count()
 *   then     operations, each an opcode byte (modulo OP_COUNT) and operands
 *
 * Operands: a NAME is a byte; below NAME_RAW it picks declared parameter
 * (byte modulo the count), else a STRING follows.  A STRING is a length byte
 * and that many bytes.  A VALUE is a selector byte (modulo VALUE_KINDS) and
 * then 8 bytes (VALUE_RAW, a little-endian double), one byte (an index into
 * the target's table of special values, a fraction of the named parameter's
 * bounds, or a small integer). */
enum {
    NAME_RAW = 0xc0
};

enum {
    VALUE_RAW = 0,
    VALUE_SPECIAL = 1,
    VALUE_IN_BOUNDS = 2,
    VALUE_SMALL_INT = 3,
    VALUE_KINDS = 4
};

enum fuzz_op {
    OP_SET = 0,         /* NAME VALUE */
    OP_SET_STRING,      /* NAME STRING */
    OP_GET,             /* NAME */
    OP_PARAM_INFO,      /* index byte */
    OP_ADD_PARAM,       /* STRING kind-byte VALUE VALUE VALUE flags-byte STRING STRING */
    OP_ADD_OPTIMIZER,   /* group-byte STRING optimiser-byte VALUE */
    OP_PROPERTY,        /* property-byte tick-byte STRING */
    OP_DESCRIPTION,     /* STRING */
    OP_ATTACH,          /* rule-byte if no unattached rule exists; then, if there is
                         * no net yet: seed, inputs, layers, and per layer units,
                         * activation and initialiser */
    OP_TRAIN,           /* batch-byte, then batch x (inputs + 1) bytes */
    OP_PREDICT,         /* batch-byte, then batch x inputs bytes */
    OP_NEW_RULE,        /* rule-byte: a fresh unattached rule replaces the unattached one */
    OP_COUNT
};

/* ---- fuzz_api --------------------------------------------------------------
 *
 * A sequence of operations, each an opcode byte (modulo API_OP_COUNT) and its
 * operands; an exhausted input reads as zeros.  The target keeps SLOTS nets,
 * unattached rules and datasets; a NET operand is a slot byte (an empty slot
 * gives the first net there is).  Most operations read a VARIANT byte: below
 * VARIANT_HOSTILE the call is well formed for the object's state; from it
 * on, (byte - VARIANT_HOSTILE) picks one of the operation's hostile calls
 * (a NULL object or buffer, a zero, overflowing or wrong length, NaN data,
 * a bad enum).  Operands NAME, VALUE and STRING are those of fuzz_params.
 * DATA is one byte per float, (b - 128) / 32, read as needed.
 *
 * API_RULE_USER's SCRIPT (USER_SCRIPT_SIZE bytes) says what the user rule's
 * hooks do: its name, the behaviour of attach, forward, compute_targets and
 * update, the call each hook makes back into the library (REENTER_*, only
 * when not already inside such a call), which hook fails and with which
 * status, the group of the tensors it adds and how many hyperparameters it
 * declares.  API_FIT's CALLBACK is a byte after which progress event the
 * callback stops bpl_net_fit (0: no callback), the event at which it calls
 * back into the library and the REENTER_* call it makes. */
enum {
    SLOTS = 3,
    VARIANT_HOSTILE = 0xc0
};

enum api_op {
    API_NET_CREATE = 0, /* slot inputs-byte seed-byte VARIANT */
    API_ADD_DENSE,      /* NET units-byte activation-byte init-byte VARIANT */
    API_SET_LOSS,       /* NET loss-byte */
    API_RULE_BUILTIN,   /* slot index-byte VARIANT */
    API_RULE_USER,      /* slot SCRIPT VARIANT */
    API_RULE_SET,       /* rule-byte NAME VALUE */
    API_RULE_SET_STRING,/* rule-byte NAME STRING */
    API_RULE_GET,       /* rule-byte NAME kind-byte */
    API_ATTACH,         /* NET rule-slot VARIANT */
    API_TRAIN,          /* NET batch-byte VARIANT DATA */
    API_PREDICT,        /* NET batch-byte VARIANT DATA */
    API_FIT,            /* NET dataset-byte epochs-byte batch-byte CALLBACK VARIANT */
    API_EVALUATE,       /* NET dataset-byte VARIANT */
    API_ALIGNMENT,      /* NET batch-byte VARIANT DATA */
    API_TENSOR_GET,     /* NET layer-byte NAME VARIANT */
    API_TENSOR_SET,     /* NET layer-byte NAME VARIANT DATA */
    API_TENSOR_INIT,    /* NET layer-byte NAME init-byte VALUE */
    API_TENSOR_ADD,     /* NET layer-byte STRING rows-byte cols-byte group-byte VARIANT */
    API_FREEZE,         /* NET layer-byte NAME flag-byte */
    API_RANDOM,         /* NET n-byte kind-byte VALUE VALUE */
    API_SAVE,           /* NET VARIANT */
    API_LOAD,           /* slot VARIANT */
    API_DATASET,        /* slot NET kind-byte rows-byte VARIANT DATA */
    API_DATASET_SLICE,  /* slot dataset-byte start-byte count-byte */
    API_DATASET_GET,    /* dataset-byte kind-byte start-byte count-byte VARIANT */
    API_DESTROY,        /* kind-byte slot */
    API_MISC,           /* which-byte NET, then what the call needs */
    API_ADD_CONV2D,     /* NET shape-byte channels-byte kernel-h-byte kernel-w-byte
                           stride-byte padding-byte activation-byte init-byte VARIANT */
    API_ADD_POOL2D,     /* NET shape-byte kind-byte (odd: max) window-byte stride-byte VARIANT */
    API_OP_COUNT
};

/* What a user rule's hook, or a progress callback, calls back into the
 * library on the net it runs for. */
enum reenter {
    REENTER_NONE = 0,
    REENTER_TRAIN,
    REENTER_PREDICT,
    REENTER_EVALUATE,
    REENTER_FIT,
    REENTER_ALIGNMENT,
    REENTER_SAVE,
    REENTER_LOAD,
    REENTER_SET_RULE,
    REENTER_ADD_DENSE,
    REENTER_SET_LOSS,
    REENTER_SET_TENSOR,
    REENTER_INIT_TENSOR,
    REENTER_ADD_TENSOR,
    REENTER_FREEZE,
    REENTER_RULE_SET,
    REENTER_RANDOM,
    REENTER_ADD_BUFFER,
    REENTER_RULE_DESTROY,
    REENTER_BUFFER,
    REENTER_APPLY,
    REENTER_KINDS
};

/* The bytes of a user rule's SCRIPT, in order. */
enum user_script {
    SCRIPT_NAME = 0,  /* below 0x80 "user", else another name (built-in ones too) */
    SCRIPT_ATTACH,    /* 0 nothing, 1 feedback tensors, 2 and a buffer, 3 a hostile add */
    SCRIPT_FORWARD,   /* 0 dense, 1 wrong batch, 2 nothing, 3 NaN output, 4 NULL x */
    SCRIPT_TARGETS,   /* 0 backprop, 1 through the feedback tensors, 2 hostile, 3 nothing */
    SCRIPT_UPDATE,    /* 0 gradients and step, 1 hostile, 2 feedback gradient, 3 step only */
    SCRIPT_REENTER,   /* 4 bytes: REENTER_* of attach, forward, compute_targets, update */
    SCRIPT_FAIL_HOOK = SCRIPT_REENTER + 4, /* modulo 8: the hook (0-3) that fails, or none */
    SCRIPT_FAIL_CODE, /* index into the target's table of statuses a hook returns */
    SCRIPT_GROUP,     /* modulo 3, minus 1: the group of the tensors attach adds */
    SCRIPT_PARAMS,    /* bits 0-1: hyperparameters declared; bit 2: a feedback optimiser */
    USER_SCRIPT_SIZE
};

#endif
