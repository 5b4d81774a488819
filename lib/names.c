/*
 * names.c - what a name may be.  Every name is 1 to max - 1 characters of
 * printable ASCII, as a saved file holds it (tensors, buffers, rules).
 * Hyperparameter names are narrower, identifiers of [A-Za-z0-9_.-]: they
 * also travel as "name=value" in recommendations and on command lines,
 * where '=', ',' or a space would split them.
 */
#include "bpl_internal.h"

#include <string.h>

static int identifier_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

int bpl__valid_name(const char *name, size_t max, int identifier)
{
    size_t n = strlen(name);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c > 0x7e || (identifier && !identifier_char(name[i])))
            return 0;
    }
    return 1;
}
