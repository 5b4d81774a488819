/* The user header compiles on its own as strict C99 (-pedantic -Werror) and
 * stands alone: a program that trains nets needs nothing of the extension
 * API, so bioplaus.h must not pull bioplaus_rule.h in. */
#include "bioplaus.h"

#ifdef BIOPLAUS_RULE_H
#error "bioplaus.h includes bioplaus_rule.h"
#endif
#ifdef BPL_RULE_VTABLE_VERSION
#error "bioplaus.h defines what belongs to bioplaus_rule.h"
#endif

#include <string.h>

int main(void)
{
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    if (bpl_net_create(&net, 2, 1) != BPL_OK)
        return 1;
    int ok = bpl_net_add_dense(net, 1, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM) == BPL_OK &&
             bpl_rule_create_builtin(&rule, "backprop") == BPL_OK &&
             bpl_net_set_rule(net, rule) == BPL_OK;
    if (!ok)
        bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    /* The version macros and the library agree. */
    ok = ok && bpl_version_number() == BPL_VERSION_NUMBER &&
         strcmp(bpl_version_string(), BPL_VERSION_STRING) == 0 &&
         BPL_VERSION_NUMBER ==
             BPL_VERSION_MAJOR * 10000 + BPL_VERSION_MINOR * 100 + BPL_VERSION_PATCH;
    return ok ? 0 : 1;
}
