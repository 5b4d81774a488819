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

#endif
