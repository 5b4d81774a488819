// Both public headers compile as C++ and their declarations have C linkage.
#include "bioplaus_rule.h"

#include <cstring>
#include <memory>

int main()
{
    std::unique_ptr<bpl_net, decltype(&bpl_net_destroy)> net(nullptr, bpl_net_destroy);
    bpl_net *raw = nullptr;
    if (bpl_net_create(&raw, 4, 1) != BPL_OK)
        return 1;
    net.reset(raw);
    if (bpl_net_add_dense(net.get(), 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM) != BPL_OK)
        return 1;
    bpl_rule_vtable vt;
    if (bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION) != BPL_OK)
        return 1;
    return std::strcmp(bpl_version_string(), BPL_VERSION_STRING) == 0 ? 0 : 1;
}
