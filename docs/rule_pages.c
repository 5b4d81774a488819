/*
 * rule_pages.c - checks that docs/rules/ documents every hyperparameter of
 * every built-in rule with the default the library really has.
 *
 * usage: rule-pages DIR        (DIR is docs/rules)
 *
 * For each rule returned by bpl_rule_builtin_name, DIR/<rule>.md must exist
 * and be listed in DIR/README.md, and each of the rule's hyperparameters
 * (bpl_rule_param_info) must appear in a Markdown table row of that page,
 * its name in backticks in the first cell and its default in the table's
 * "default" column.  A row may document several keys ("`g_L`, `g_B` | 0.1,
 * 0.6", or one value for all), may defer to another rule's page ("as
 * [`dtp`](dtp.md)"), and the shared optimiser keys may be left to the table
 * of DIR/README.md.  Parenthesised remarks and bold marks in a default cell
 * are ignored.  Prints every problem and exits 1 if there is any.
 */
#include <bioplaus.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CELLS 16
#define MAX_ITEMS 16
#define ITEM_LEN 128

static const char *const optimizer_keys[] = {"optimizer", "momentum", "beta1", "beta2",
                                             "eps",       "rho",      "weight_decay"};

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = 2 * (len + got + 1);
            char *grown = realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!text)
        text = calloc(1, 1);
    else
        text[len] = '\0';
    return text;
}

static void trim(char *s)
{
    size_t n = strlen(s), start = 0;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (isspace((unsigned char)s[start]))
        start++;
    memmove(s, s + start, n - start + 1);
}

/* Split one table line "| a | b |" into trimmed cells; returns their count. */
static size_t split_cells(const char *line, size_t len, char cells[MAX_CELLS][ITEM_LEN * 4])
{
    size_t n = 0;
    const char *p = line + 1, *end = line + len;
    while (p < end && n < MAX_CELLS) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        if (!bar)
            break;
        size_t w = (size_t)(bar - p);
        if (w >= ITEM_LEN * 4)
            w = ITEM_LEN * 4 - 1;
        memcpy(cells[n], p, w);
        cells[n][w] = '\0';
        trim(cells[n]);
        n++;
        p = bar + 1;
    }
    return n;
}

/* The backticked names of a key cell, in order. */
static size_t key_names(const char *cell, char names[MAX_ITEMS][ITEM_LEN])
{
    size_t n = 0;
    const char *p = cell;
    while (n < MAX_ITEMS && (p = strchr(p, '`')) != NULL) {
        const char *close = strchr(p + 1, '`');
        if (!close)
            break;
        size_t w = (size_t)(close - p - 1);
        if (w < ITEM_LEN) {
            memcpy(names[n], p + 1, w);
            names[n][w] = '\0';
            n++;
        }
        p = close + 1;
    }
    return n;
}

/* The comma-separated values of a default cell, without parenthesised
 * remarks, bold marks and backticks. */
static size_t default_values(const char *cell, char values[MAX_ITEMS][ITEM_LEN])
{
    char clean[ITEM_LEN * 4];
    size_t w = 0;
    int depth = 0;
    for (const char *p = cell; *p && w + 1 < sizeof clean; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        else if (depth == 0 && *p != '*' && *p != '`')
            clean[w++] = *p;
    }
    clean[w] = '\0';
    size_t n = 0;
    for (char *tok = strtok(clean, ","); tok && n < MAX_ITEMS; tok = strtok(NULL, ",")) {
        snprintf(values[n], ITEM_LEN, "%s", tok);
        trim(values[n]);
        n++;
    }
    return n;
}

/* Find `key` in the tables of `text`: its default cell's text for this key
 * goes to value_out (or the name of the page it defers to, with *defer set).
 * Returns 1 if found. */
static int find_key(const char *text, const char *key, char value_out[ITEM_LEN],
                    char defer_out[ITEM_LEN])
{
    int default_col = -1;
    const char *line = text;
    defer_out[0] = '\0';
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *next = eol ? eol + 1 : line + len;
        if (len == 0 || line[0] != '|') {
            default_col = -1;
            line = next;
            continue;
        }
        char cells[MAX_CELLS][ITEM_LEN * 4];
        size_t n = split_cells(line, len, cells);
        if (strncmp(next, "|--", 3) == 0 || strncmp(next, "| --", 4) == 0) {
            default_col = -1; /* a header row: find its "default" column */
            for (size_t c = 0; c < n; c++)
                if (strcmp(cells[c], "default") == 0)
                    default_col = (int)c;
            line = next;
            continue;
        }
        if (default_col > 0 && (size_t)default_col < n) {
            char names[MAX_ITEMS][ITEM_LEN];
            size_t k = key_names(cells[0], names);
            for (size_t i = 0; i < k; i++) {
                if (strcmp(names[i], key) != 0)
                    continue;
                const char *cell = cells[default_col];
                if (strncmp(cell, "as [`", 5) == 0) {
                    char target[MAX_ITEMS][ITEM_LEN];
                    if (key_names(cell, target) == 1) {
                        snprintf(defer_out, ITEM_LEN, "%s", target[0]);
                        return 1;
                    }
                }
                char values[MAX_ITEMS][ITEM_LEN];
                size_t v = default_values(cell, values);
                if (v == k)
                    snprintf(value_out, ITEM_LEN, "%s", values[i]);
                else if (v == 1)
                    snprintf(value_out, ITEM_LEN, "%s", values[0]);
                else
                    snprintf(value_out, ITEM_LEN, "(%zu values for %zu keys)", v, k);
                return 1;
            }
        }
        line = next;
    }
    return 0;
}

/* The choice at `index` of "a|b|c". */
static void choice_name(const char *choices, double index, char out[ITEM_LEN])
{
    out[0] = '\0';
    const char *p = choices;
    for (long i = 0; p && i < (long)index; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p)
        return;
    size_t w = strcspn(p, "|");
    if (w >= ITEM_LEN)
        w = ITEM_LEN - 1;
    memcpy(out, p, w);
    out[w] = '\0';
}

static int value_matches(const char *text, int kind, double def, const char *choices)
{
    if (kind == BPL_PARAM_CHOICE) {
        char name[ITEM_LEN];
        choice_name(choices, def, name);
        return strcmp(text, name) == 0;
    }
    if (kind == BPL_PARAM_BOOL && (strcmp(text, "true") == 0 || strcmp(text, "false") == 0))
        return (strcmp(text, "true") == 0) == (def != 0.0);
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || *end != '\0')
        return 0;
    return fabs(v - def) <= 1e-9 * fmax(fabs(v), fabs(def));
}

static int is_shared_optimizer_key(const char *key)
{
    if (strncmp(key, "fb_", 3) == 0)
        key += 3;
    for (size_t i = 0; i < sizeof optimizer_keys / sizeof optimizer_keys[0]; i++)
        if (strcmp(key, optimizer_keys[i]) == 0)
            return 1;
    return 0;
}

static char *read_page(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.md", dir, name);
    return read_text(path);
}

/* Check one hyperparameter; returns the number of problems (0 or 1). */
static int check_param(const char *dir, const char *rule_name, const char *page,
                       const char *readme, const char *key, int kind, double def,
                       const char *choices)
{
    char value[ITEM_LEN] = "", defer[ITEM_LEN] = "";
    const char *where = rule_name;
    int found = find_key(page, key, value, defer);
    char *deferred = NULL;
    if (found && defer[0]) {
        deferred = read_page(dir, defer);
        where = defer;
        found = deferred && find_key(deferred, key, value, defer) && !defer[0];
    }
    if (!found && is_shared_optimizer_key(key)) {
        const char *base = strncmp(key, "fb_", 3) == 0 ? key + 3 : key;
        where = "README";
        found = find_key(readme, base, value, defer);
    }
    int problems = 0;
    if (!found) {
        printf("%s.md: hyperparameter `%s` is not documented\n", rule_name, key);
        problems = 1;
    } else if (!value_matches(value, kind, def, choices)) {
        char expected[ITEM_LEN];
        if (kind == BPL_PARAM_CHOICE)
            choice_name(choices, def, expected);
        else
            snprintf(expected, sizeof expected, "%g", def);
        printf("%s.md: `%s` documented (in %s.md) with default '%s'; the library's is %s\n",
               rule_name, key, where, value, expected);
        problems = 1;
    }
    free(deferred);
    return problems;
}

static int check_rule(const char *dir, const char *name, const char *readme)
{
    char link[ITEM_LEN];
    snprintf(link, sizeof link, "](%s.md)", name);
    int problems = 0;
    if (!strstr(readme, link)) {
        printf("README.md does not link %s.md\n", name);
        problems++;
    }
    char *page = read_page(dir, name);
    if (!page) {
        printf("%s/%s.md: cannot read it\n", dir, name);
        return problems + 1;
    }
    bpl_rule *rule = NULL;
    if (bpl_rule_create_builtin(&rule, name) != BPL_OK) {
        printf("%s: %s\n", name, bpl_last_error_message());
        free(page);
        return problems + 1;
    }
    size_t count = bpl_rule_param_count(rule);
    for (size_t i = 0; i < count; i++) {
        const char *key, *choices;
        int kind;
        double def;
        if (bpl_rule_param_info(rule, i, &key, &kind, &def, NULL, NULL, &choices, NULL) !=
            BPL_OK) {
            printf("%s: %s\n", name, bpl_last_error_message());
            problems++;
            continue;
        }
        problems += check_param(dir, name, page, readme, key, kind, def, choices);
    }
    printf("%s.md: %zu hyperparameters, %d problem(s)\n", name, count, problems);
    bpl_rule_destroy(rule);
    free(page);
    return problems;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (docs/rules)\n", argv[0]);
        return 2;
    }
    char *readme = read_page(argv[1], "README");
    if (!readme) {
        fprintf(stderr, "%s/README.md: cannot read it\n", argv[1]);
        return 1;
    }
    int problems = 0;
    size_t rules = bpl_rule_builtin_count();
    for (size_t r = 0; r < rules; r++)
        problems += check_rule(argv[1], bpl_rule_builtin_name(r), readme);
    free(readme);
    printf("%zu rules, %d problem(s)\n", rules, problems);
    return problems ? 1 : 0;
}
