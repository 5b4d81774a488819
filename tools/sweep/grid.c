/*
 * grid.c - the grid file: one key per line, "KEY: VALUES", where KEY is a
 * bioplaus-train option without its dashes ("lr", "arch"), "param NAME" for
 * a rule hyperparameter, "seed", "count" or "search-seed", and VALUES is a
 * list "a | b | c" or a range "log LO HI", "uniform LO HI", "int LO HI".
 * '#' starts a comment.
 *
 * Without a range or a count, the runs are every combination of the lists
 * (the last key varying fastest), each with every seed.  With one, they are
 * `count` (default 20) configurations drawn at random, each with every
 * seed: a list gives one of its values, a range a value in it, all drawn
 * from a generator seeded with search-seed, so the same file gives the same
 * runs.
 */
#include "sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int bad(const char *path, int line, const char *why)
{
    fprintf(stderr, "bioplaus-sweep: %s:%d: %s\n", path, line, why);
    return 2;
}

static int parse_number(const char *text, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(text, &end);
    return errno == 0 && end != text && *trim(end) == '\0' && isfinite(*out);
}

static int parse_values(char *text, struct grid_key *k, const char *path, int line)
{
    char kind[16] = "", lo[64] = "", hi[64] = "", extra[2] = "";
    int n = sscanf(text, "%15s %63s %63s %1s", kind, lo, hi, extra);
    int is_range = strcmp(kind, "log") == 0 || strcmp(kind, "uniform") == 0 ||
                   strcmp(kind, "int") == 0;
    if (is_range) {
        if (n != 3 || !parse_number(lo, &k->lo) || !parse_number(hi, &k->hi) || k->lo > k->hi)
            return bad(path, line, "a range is 'log LO HI', 'uniform LO HI' or 'int LO HI' "
                                   "with LO <= HI");
        if (kind[0] == 'l' && k->lo <= 0.0)
            return bad(path, line, "a log range needs LO > 0");
        k->kind = kind[0] == 'l' ? VALUES_LOG : kind[0] == 'u' ? VALUES_UNIFORM : VALUES_INT;
        return 0;
    }
    k->kind = VALUES_LIST;
    for (char *item = strtok(text, "|"); item; item = strtok(NULL, "|")) {
        char *value = trim(item);
        if (!*value || k->n_values == MAX_VALUES || strlen(value) >= MAX_TEXT)
            return bad(path, line, "an empty value, a value too long, or more than 32 values");
        strcpy(k->values[k->n_values++], value);
    }
    return k->n_values ? 0 : bad(path, line, "no values");
}

static int parse_line(char *text, struct grid *g, const char *path, int line)
{
    char *colon = strchr(text, ':');
    if (!colon)
        return bad(path, line, "expected 'KEY: VALUES'");
    *colon = '\0';
    char *key = trim(text), *values = trim(colon + 1);
    if (strcmp(key, "count") == 0 || strcmp(key, "search-seed") == 0) {
        double v;
        if (!parse_number(values, &v) || v < (key[0] == 'c' ? 1 : 0) || v != floor(v) || v > 1e9)
            return bad(path, line, "count is a whole number >= 1, search-seed one >= 0");
        if (key[0] == 'c')
            g->count = (size_t)v;
        else
            g->search_seed = (uint64_t)v;
        return 0;
    }
    int is_seed = strcmp(key, "seed") == 0;
    if (!is_seed && g->n_keys == MAX_KEYS)
        return bad(path, line, "more than 32 keys");
    struct grid_key *k = is_seed ? &g->seeds : &g->keys[g->n_keys];
    memset(k, 0, sizeof *k);
    k->is_param = strncmp(key, "param ", 6) == 0;
    const char *name = k->is_param ? trim(key + 6) : key;
    if (!*name || strlen(name) >= MAX_TEXT || strpbrk(name, " \t="))
        return bad(path, line, "a key is an option name or 'param NAME'");
    static const char *const refused[] = {"csv", "save", "load", "quiet", "help", "version",
                                          "list-params"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (strcmp(name, refused[i]) == 0)
            return bad(path, line, "the sweep sets --csv, --save and the rest itself");
    strcpy(k->name, name);
    int rc = parse_values(values, k, path, line);
    if (rc == 0 && is_seed && k->kind != VALUES_LIST)
        return bad(path, line, "seeds are a list");
    if (rc == 0 && !is_seed)
        g->n_keys++;
    return rc;
}

int grid_parse(const char *path, struct grid *g)
{
    memset(g, 0, sizeof *g);
    g->search_seed = 1;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bioplaus-sweep: cannot read '%s': %s\n", path, strerror(errno));
        return 2;
    }
    char text[4096];
    int line = 0, rc = 0;
    while (rc == 0 && fgets(text, sizeof text, f)) {
        line++;
        if (!strchr(text, '\n') && !feof(f))
            rc = bad(path, line, "line too long");
        char *hash = strchr(text, '#');
        if (hash)
            *hash = '\0';
        char *t = trim(text);
        if (rc == 0 && *t)
            rc = parse_line(t, g, path, line);
    }
    fclose(f);
    if (rc == 0 && g->seeds.n_values == 0) {
        g->seeds.n_values = 1;
        strcpy(g->seeds.values[0], "1");
    }
    return rc;
}

/* ---- the runs ------------------------------------------------------------------- */

static uint64_t next(uint64_t *state) /* splitmix64 */
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state)
{
    return (double)(next(state) >> 11) * 0x1.0p-53;
}

static void draw(const struct grid_key *k, uint64_t *state, char *out)
{
    double u = uniform01(state);
    switch (k->kind) {
    case VALUES_LIST:
        strcpy(out, k->values[(size_t)(u * (double)k->n_values) % k->n_values]);
        break;
    case VALUES_LOG:
        snprintf(out, MAX_TEXT, "%.3g", exp(log(k->lo) + u * (log(k->hi) - log(k->lo))));
        break;
    case VALUES_UNIFORM:
        snprintf(out, MAX_TEXT, "%.3g", k->lo + u * (k->hi - k->lo));
        break;
    default:
        snprintf(out, MAX_TEXT, "%.0f", floor(k->lo + u * (k->hi - k->lo + 1.0)));
        if (atof(out) > k->hi)
            snprintf(out, MAX_TEXT, "%.0f", k->hi);
    }
}

/* The precisions bound each copy by its destination, which the grid's
 * own limits (MAX_TEXT) already keep every value within. */
static void add_arg(struct run *r, const char *a, const char *b)
{
    snprintf(r->args[r->n_args++], ARG_TEXT, "%.*s", ARG_TEXT - 1, a);
    if (b)
        snprintf(r->args[r->n_args++], ARG_TEXT, "%.*s", ARG_TEXT - 1, b);
}

static const uint64_t fnv_offset = 0xcbf29ce484222325ULL;

/* FNV-1a: `h` (fnv_offset to start) with the `n` bytes at `data` added. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    for (const unsigned char *c = data; n--; c++) {
        h ^= *c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The run's files are named after its command (FNV-1a), not its place in
 * the grid: a grid that changes keeps the runs it still has. */
static void name_run(struct run *r)
{
    char text[MAX_ARGS * (ARG_TEXT + 1)];
    run_command_text(r, text, sizeof text);
    uint64_t h = fnv1a(fnv_offset, text, strlen(text));
    snprintf(r->id, sizeof r->id, "%016llx", (unsigned long long)h);
}

/* The run of one configuration (a value per key) with one seed. */
static void make_run(const struct grid *g, char values[][MAX_TEXT], const char *seed,
                     struct run *r)
{
    memset(r, 0, sizeof *r);
    strcpy(r->rule, "backprop");
    for (size_t i = 0; i < g->n_keys; i++) {
        const struct grid_key *k = &g->keys[i];
        char option[MAX_TEXT + 2], param[2 * MAX_TEXT + 1];
        if (k->is_param) {
            snprintf(param, sizeof param, "%.*s=%.*s", MAX_TEXT - 1, k->name, MAX_TEXT - 1,
                     values[i]);
            add_arg(r, "--param", param);
        } else {
            snprintf(option, sizeof option, "--%s", k->name);
            add_arg(r, option, values[i]);
            if (strcmp(k->name, "rule") == 0)
                snprintf(r->rule, sizeof r->rule, "%.*s", (int)sizeof r->rule - 1, values[i]);
        }
        size_t used = strlen(r->setup);
        snprintf(r->setup + used, sizeof r->setup - used, "%s%s%s=%s", used ? " " : "",
                 k->is_param ? "param." : "", k->name, values[i]);
    }
    add_arg(r, "--seed", seed);
    snprintf(r->seed, sizeof r->seed, "%s", seed);
    name_run(r);
}

static int is_random(const struct grid *g)
{
    if (g->count)
        return 1;
    for (size_t i = 0; i < g->n_keys; i++)
        if (g->keys[i].kind != VALUES_LIST)
            return 1;
    return 0;
}

/* The configurations a random search has drawn, as 64-bit hashes of their
 * values in an open-addressing set: a draw that repeats one is drawn
 * again, so that a search of lists alone does not train a run twice. */
struct drawn_set {
    uint64_t *slots; /* 0: empty */
    size_t mask;
};

static uint64_t values_hash(const struct grid *g, char values[][MAX_TEXT])
{
    uint64_t h = fnv_offset;
    for (size_t i = 0; i < g->n_keys; i++) /* each value with its NUL */
        h = fnv1a(h, values[i], strlen(values[i]) + 1);
    return h ? h : 1;
}

/* Adds `h`; 0 if it was there already. */
static int remember(struct drawn_set *set, uint64_t h)
{
    size_t i = (size_t)h & set->mask;
    while (set->slots[i]) {
        if (set->slots[i] == h)
            return 0;
        i = (i + 1) & set->mask;
    }
    set->slots[i] = h;
    return 1;
}

/* Redraws of a configuration before the search decides its lists hold no
 * other one. */
enum { MAX_REDRAWS = 1000 };

/* Configuration c: every combination's c-th, or a random draw that is not
 * in `set` (NULL: every combination).  0 if no new one could be drawn. */
static int configuration(const struct grid *g, size_t c, uint64_t *state,
                         struct drawn_set *set, char values[][MAX_TEXT])
{
    for (int attempt = 0; attempt < MAX_REDRAWS; attempt++) {
        size_t rest = c;
        for (size_t i = g->n_keys; i-- > 0;) {
            const struct grid_key *k = &g->keys[i];
            if (set) {
                draw(k, state, values[i]);
            } else {
                strcpy(values[i], k->values[rest % k->n_values]);
                rest /= k->n_values;
            }
        }
        if (!set || remember(set, values_hash(g, values)))
            return 1;
    }
    return 0;
}

int grid_runs(const struct grid *g, struct run **out, size_t *n_out)
{
    size_t configs = 1;
    int random = is_random(g);
    if (random) {
        configs = g->count ? g->count : 20;
    } else {
        for (size_t i = 0; i < g->n_keys; i++) {
            if (configs > 100000 / g->keys[i].n_values) {
                fprintf(stderr, "bioplaus-sweep: more than 100000 combinations; use count\n");
                return 2;
            }
            configs *= g->keys[i].n_values;
        }
    }
    size_t slots = 2;
    while (random && slots < 2 * configs && slots <= SIZE_MAX / 4)
        slots *= 2;
    struct drawn_set set = {random ? calloc(slots, sizeof *set.slots) : NULL, slots - 1};
    struct run *runs = calloc(configs, g->seeds.n_values * sizeof *runs);
    if (!runs || (random && !set.slots)) {
        fprintf(stderr, "bioplaus-sweep: out of memory\n");
        free(runs);
        free(set.slots);
        return 1;
    }
    uint64_t state = g->search_seed;
    char values[MAX_KEYS][MAX_TEXT];
    size_t made = 0;
    for (; made < configs; made++) {
        if (!configuration(g, made, &state, random ? &set : NULL, values)) {
            fprintf(stderr, "bioplaus-sweep: the grid's lists hold only %zu different "
                            "configurations; count asks for %zu\n", made, configs);
            break;
        }
        for (size_t s = 0; s < g->seeds.n_values; s++)
            make_run(g, values, g->seeds.values[s], &runs[made * g->seeds.n_values + s]);
    }
    free(set.slots);
    *out = runs;
    *n_out = made * g->seeds.n_values;
    return 0;
}
