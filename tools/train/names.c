/*
 * names.c - the names the program accepts and lists: built-in rules,
 * initialisers, optimisers, hidden activations and a hyperparameter's
 * choices.
 */
#include "train.h"

#include <stdio.h>
#include <string.h>

/* Write "a, b, c" of a NULL-terminated sequence of names into buf. */
void join_names(char *buf, size_t size, const char *(*name_at)(size_t))
{
    buf[0] = '\0';
    for (size_t i = 0; name_at(i) != NULL; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? ", " : "", name_at(i));
    }
}

const char *rule_name_at(size_t i)
{
    return bpl_rule_builtin_name(i);
}

/* The enum name functions answer "unknown" past the last value. */
const char *init_name_at(size_t i)
{
    const char *name = bpl_init_name((int)i);
    return strcmp(name, "unknown") == 0 ? NULL : name;
}

const char *optimizer_name_at(size_t i)
{
    const char *name = bpl_optimizer_name((int)i);
    return strcmp(name, "unknown") == 0 ? NULL : name;
}

const char *hidden_activation_name_at(size_t i)
{
    static const char *const names[] = {"tanh", "relu", "sigmoid", NULL};
    return i < sizeof names / sizeof names[0] ? names[i] : NULL;
}

/* The `index`-th name of "a|b|c", copied into buf. */
void choice_name(const char *choices, double index, char *buf, size_t size)
{
    const char *start = choices;
    for (long i = 0; i < (long)index && start; i++) {
        start = strchr(start, '|');
        start = start ? start + 1 : NULL;
    }
    size_t length = start ? strcspn(start, "|") : 0;
    snprintf(buf, size, "%.*s", (int)length, start ? start : "");
}
