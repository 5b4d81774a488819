/*
 * properties.c - writes docs/properties.md, the review's property table for
 * every built-in rule, from the library's own metadata.
 *
 * usage: properties [FILE]
 *
 * The table is read through bpl_rule_property from freshly created
 * built-in rules, so the document says exactly what the library reports and
 * a test can tell when the two drift apart.  With FILE, the document
 * replaces FILE only once it is complete; otherwise it goes to stdout.
 */
#include <bioplaus.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The symbols as UTF-8 bytes, whatever the compiler's execution charset. */
#define SYMBOL_YES "\xE2\x9C\x93" /* U+2713 CHECK MARK */
#define SYMBOL_NO "\xE2\x9C\x97"  /* U+2717 BALLOT X */
#define SYMBOL_NA "\xE2\x80\x93"  /* U+2013 EN DASH */

/* One line per property.  The library names the properties but does not
 * define them, so the definitions live here, in the order of enum
 * bpl_property. */
static const char *const definitions[] = {
    [BPL_PROP_EXACT_GRADIENTS] =
        "the weight updates are the gradient of the loss, not an approximation of it.",
    [BPL_PROP_NO_WEIGHT_TRANSPORT] =
        "no neuron needs the values of synapses it does not own (such as W^T) to "
        "compute its update.",
    [BPL_PROP_NO_SEPARATE_PATHWAYS] =
        "the learning signal reaches a neuron through that neuron itself (its "
        "dendrites), not through a separate error or inverse network.",
    [BPL_PROP_DENDRITIC_INTEGRATION] =
        "neurons have compartments (basal and apical dendrites, soma) that keep "
        "feedforward and feedback input apart before combining them.",
    [BPL_PROP_SEPARATE_WEIGHTS_LEARNED] =
        "the feedback pathway has weights of its own, and they are learned rather "
        "than fixed.",
    [BPL_PROP_LINEAR_STABILIZATION] =
        "targets sent down through imperfect inverses are corrected by a linear "
        "term that cancels the inverses' reconstruction error.",
    [BPL_PROP_EXPLICIT_ERROR] =
        "some signal in the network stands for the error itself, rather than the "
        "error being only implicit in the difference between two phases.",
};
#define N_DEFINITIONS (sizeof definitions / sizeof definitions[0])

static const char *tick_symbol(int tick)
{
    switch (tick) {
    case BPL_TICK_NO: return SYMBOL_NO;
    case BPL_TICK_YES: return SYMBOL_YES;
    case BPL_TICK_PARTIAL: return SYMBOL_YES SYMBOL_NO;
    case BPL_TICK_NOT_APPLICABLE: return SYMBOL_NA;
    case BPL_TICK_UNKNOWN: return "?";
    default: return NULL;
    }
}

static const char *tick_meaning(int tick)
{
    switch (tick) {
    case BPL_TICK_NO: return "no";
    case BPL_TICK_YES: return "yes";
    case BPL_TICK_PARTIAL: return "in part (the note says where)";
    case BPL_TICK_NOT_APPLICABLE: return "does not apply to the rule";
    default: return "not declared by the rule";
    }
}

static void fail(const char *what, int status)
{
    fprintf(stderr, "properties: %s: %s: %s\n", what, bpl_strerror(status),
            bpl_last_error_message());
    exit(EXIT_FAILURE);
}

/* The library answers "unknown" past the last property: count up to it, and
 * insist on a definition for each, so a new property cannot be left out. */
static int count_properties(void)
{
    int n = 0;
    while (strcmp(bpl_property_name(n), "unknown") != 0)
        n++;
    if ((size_t)n != N_DEFINITIONS) {
        fprintf(stderr, "properties: the library has %d properties, this program defines %zu\n",
                n, N_DEFINITIONS);
        exit(EXIT_FAILURE);
    }
    return n;
}

/* Rule notes are free text: escape what Markdown would take as markup. */
static void put_markdown_text(FILE *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        if (strchr("\\`*_[]<>|", *c))
            fputc('\\', out);
        fputc(*c, out);
    }
}

/* The whole table, read once, so that writing it cannot fail halfway on a
 * library error.  Cells are [property][rule]. */
typedef struct table {
    size_t n_rules;
    int n_properties;
    bpl_rule **rules;    /* the built-in rules, in registry order */
    int *ticks;
    const char **notes;  /* borrowed from the rules; "" for none */
    int *note_ids;       /* footnote number, 0 for none */
    int n_notes;
} table;

static void *allocate(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "properties: out of memory\n");
        exit(EXIT_FAILURE);
    }
    return p;
}

static size_t cell(const table *t, int p, size_t r)
{
    return (size_t)p * t->n_rules + r;
}

static void read_property(table *t, int p, size_t r)
{
    size_t c = cell(t, p, r);
    int rc = bpl_rule_property(t->rules[r], p, &t->ticks[c], &t->notes[c]);
    if (rc != BPL_OK)
        fail("bpl_rule_property", rc);
    if (!tick_symbol(t->ticks[c])) {
        fprintf(stderr, "properties: rule '%s', %s: value %d is not an enum bpl_tick\n",
                bpl_rule_name(t->rules[r]), bpl_property_name(p), t->ticks[c]);
        exit(EXIT_FAILURE);
    }
}

/* Footnotes are numbered row by row; rules that share a note within a row
 * share its footnote, which keeps the list short. */
static void number_notes(table *t)
{
    for (int p = 0; p < t->n_properties; p++) {
        for (size_t r = 0; r < t->n_rules; r++) {
            size_t c = cell(t, p, r);
            if (t->notes[c][0] == '\0')
                continue;
            for (size_t s = 0; s < r && !t->note_ids[c]; s++)
                if (strcmp(t->notes[cell(t, p, s)], t->notes[c]) == 0)
                    t->note_ids[c] = t->note_ids[cell(t, p, s)];
            if (!t->note_ids[c])
                t->note_ids[c] = ++t->n_notes;
        }
    }
}

static void table_open(table *t)
{
    t->n_properties = count_properties();
    t->n_rules = bpl_rule_builtin_count();
    t->rules = allocate(t->n_rules, sizeof *t->rules);
    for (size_t r = 0; r < t->n_rules; r++) {
        const char *name = bpl_rule_builtin_name(r);
        if (!name) {
            fprintf(stderr, "properties: built-in rule %zu has no name\n", r);
            exit(EXIT_FAILURE);
        }
        int rc = bpl_rule_create_builtin(&t->rules[r], name);
        if (rc != BPL_OK)
            fail("bpl_rule_create_builtin", rc);
    }

    size_t n_cells = (size_t)t->n_properties * t->n_rules;
    t->ticks = allocate(n_cells, sizeof *t->ticks);
    t->notes = allocate(n_cells, sizeof *t->notes);
    t->note_ids = allocate(n_cells, sizeof *t->note_ids);
    t->n_notes = 0;
    for (int p = 0; p < t->n_properties; p++)
        for (size_t r = 0; r < t->n_rules; r++)
            read_property(t, p, r);
    number_notes(t);
}

static void table_close(table *t)
{
    for (size_t r = 0; r < t->n_rules; r++)
        bpl_rule_destroy(t->rules[r]);
    free(t->rules);
    free(t->ticks);
    free(t->notes);
    free(t->note_ids);
}

static void write_header(FILE *out)
{
    fputs("# Properties of the built-in rules\n\n"
          "The review's comparison table, one column per built-in rule. This file is\n"
          "generated from the library's own metadata (`bpl_rule_property`) by\n"
          "`docs/properties.c`: do not edit it by hand. After changing a rule's\n"
          "properties, regenerate it with `meson compile -C build properties-md`.\n\n"
          "Each rule is shown as created, with its default hyperparameters; a few\n"
          "rules refine a value when attached to a net with other settings, and\n"
          "`bpl_rule_property` on the attached rule reports it.\n\n",
          out);
}

static void write_table(FILE *out, const table *t)
{
    fputs("| property |", out);
    for (size_t r = 0; r < t->n_rules; r++)
        fprintf(out, " `%s` |", bpl_rule_name(t->rules[r]));
    fputs("\n|---|", out);
    for (size_t r = 0; r < t->n_rules; r++)
        fputs(":-:|", out);
    fputc('\n', out);
    for (int p = 0; p < t->n_properties; p++) {
        fprintf(out, "| %s |", bpl_property_name(p));
        for (size_t r = 0; r < t->n_rules; r++) {
            size_t c = cell(t, p, r);
            fprintf(out, " %s", tick_symbol(t->ticks[c]));
            if (t->note_ids[c])
                fprintf(out, "<sup>%d</sup>", t->note_ids[c]);
            fputs(" |", out);
        }
        fputc('\n', out);
    }
}

/* The key lists only the symbols the table uses. */
static void write_key(FILE *out, const table *t)
{
    static const int order[] = {BPL_TICK_YES, BPL_TICK_NO, BPL_TICK_PARTIAL,
                                BPL_TICK_NOT_APPLICABLE, BPL_TICK_UNKNOWN};
    const char *separator = "\nKey: ";
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        size_t c = 0, n_cells = (size_t)t->n_properties * t->n_rules;
        while (c < n_cells && t->ticks[c] != order[k])
            c++;
        if (c == n_cells)
            continue;
        fprintf(out, "%s%s %s", separator, tick_symbol(order[k]), tick_meaning(order[k]));
        separator = ", ";
    }
    fputs(".\n", out);
}

static void write_notes(FILE *out, const table *t)
{
    if (t->n_notes == 0)
        return;
    fputs("\n## Notes\n\n", out);
    int next = 1;
    for (int p = 0; p < t->n_properties; p++) {
        for (size_t r = 0; r < t->n_rules; r++) {
            size_t c = cell(t, p, r);
            if (t->note_ids[c] != next)
                continue;
            fprintf(out, "%d. %s in `%s`", next, bpl_property_name(p),
                    bpl_rule_name(t->rules[r]));
            for (size_t s = r + 1; s < t->n_rules; s++)
                if (t->note_ids[cell(t, p, s)] == next)
                    fprintf(out, ", `%s`", bpl_rule_name(t->rules[s]));
            fputs(": ", out);
            put_markdown_text(out, t->notes[c]);
            fputc('\n', out);
            next++;
        }
    }
}

static void write_definitions(FILE *out, const table *t)
{
    fputs("\n## Definitions\n\n", out);
    for (int p = 0; p < t->n_properties; p++)
        fprintf(out, "- **%s**: %s\n", bpl_property_name(p), definitions[p]);
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
        return EXIT_FAILURE;
    }
    /* Read everything first: a library error then leaves no file behind. */
    table t;
    table_open(&t);

    const char *path = argc == 2 ? argv[1] : NULL;
    char *tmp = NULL;
    FILE *out = stdout;
    if (path) {
        tmp = malloc(strlen(path) + sizeof ".tmp");
        if (!tmp) {
            fprintf(stderr, "properties: out of memory\n");
            return EXIT_FAILURE;
        }
        strcat(strcpy(tmp, path), ".tmp");
        if (!(out = fopen(tmp, "w"))) {
            perror(tmp);
            return EXIT_FAILURE;
        }
    }

    write_header(out);
    write_table(out, &t);
    write_key(out, &t);
    write_notes(out, &t);
    write_definitions(out, &t);
    table_close(&t);

    /* A full disk or a closed pipe must not pass for a finished document. */
    int failed = fflush(out) != 0 || ferror(out);
    if (path) {
        failed |= fclose(out) != 0;
        if (!failed && rename(tmp, path) != 0)
            failed = 1;
        if (failed) {
            perror(path);
            remove(tmp);
        }
        free(tmp);
    } else if (failed) {
        perror("properties: stdout");
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
