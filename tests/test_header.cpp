// The public header compiles as C++ and its declarations have C linkage.
#include "bioplaus.h"

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
    return std::strcmp(bpl_version_string(), BPL_VERSION_STRING) == 0 ? 0 : 1;
}
