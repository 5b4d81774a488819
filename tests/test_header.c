/* The extension header compiles on its own as strict C99 (-pedantic
 * -Werror), bringing bioplaus.h with it, and the one transparent struct
 * keeps its layout. */
#include "bioplaus_rule.h"

#include <stddef.h>

/* The vtable layout is ABI: a change here needs a new vtable version. */
#define PIN(name, cond) typedef char name[(cond) ? 1 : -1]
PIN(version_first, offsetof(bpl_rule_vtable, version) == 0);
PIN(flags_second, offsetof(bpl_rule_vtable, flags) == sizeof(unsigned int));
PIN(name_third, offsetof(bpl_rule_vtable, name) == 2 * sizeof(unsigned int));
PIN(attach_after_name, offsetof(bpl_rule_vtable, attach) ==
                           offsetof(bpl_rule_vtable, name) + sizeof(const char *));
PIN(destroy_last_of_v1, offsetof(bpl_rule_vtable, destroy) ==
                            offsetof(bpl_rule_vtable, attach) + 4 * sizeof(void (*)(void)));
/* Version 2 appends four hooks after version 1's last. */
PIN(gradients_after_destroy, offsetof(bpl_rule_vtable, gradients) ==
                                 offsetof(bpl_rule_vtable, destroy) + sizeof(void (*)(void)));
PIN(load_state_last, offsetof(bpl_rule_vtable, load_state) ==
                         offsetof(bpl_rule_vtable, gradients) + 3 * sizeof(void (*)(void)));
PIN(size, sizeof(bpl_rule_vtable) ==
              offsetof(bpl_rule_vtable, load_state) + sizeof(void (*)(void)));
PIN(version_2, BPL_RULE_VTABLE_VERSION == 2);

int main(void)
{
    bpl_rule_vtable vt;
    if (bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION) != BPL_OK)
        return 1;
    /* Both headers declare bpl_net_create: the user API came with it. */
    bpl_net *net = NULL;
    if (bpl_net_create(&net, 2, 1) != BPL_OK)
        return 1;
    int phase = bpl_net_phase(net);
    bpl_net_destroy(net);
    return phase == BPL_PHASE_IDLE && bpl_version_number() == BPL_VERSION_NUMBER ? 0 : 1;
}
