// bioplaus.hpp - the C API's handles in C++17: owned by std::unique_ptr
// with the library's destroy functions as deleters, and failures thrown as
// exceptions that carry the status code and the library's message.  Shared
// by the C++ examples; copy it into a project of your own.
#ifndef BIOPLAUS_EXAMPLE_HPP
#define BIOPLAUS_EXAMPLE_HPP

#include <bioplaus.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpl {

// A failed call: the status (enum bpl_status) and the library's explanation.
class error : public std::runtime_error {
public:
    error(int status, const std::string &message)
        : std::runtime_error(std::string(bpl_strerror(status)) + ": " + message),
          status_(status)
    {
    }
    int status() const noexcept { return status_; }

private:
    int status_;
};

// Must run right after the call: the message is the calling thread's last one.
inline void check(int status)
{
    if (status != BPL_OK)
        throw error(status, bpl_last_error_message());
}

struct net_deleter {
    void operator()(bpl_net *net) const noexcept { bpl_net_destroy(net); }
};
struct rule_deleter {
    void operator()(bpl_rule *rule) const noexcept { bpl_rule_destroy(rule); }
};
struct dataset_deleter {
    void operator()(bpl_dataset *ds) const noexcept { bpl_dataset_destroy(ds); }
};
using net_ptr = std::unique_ptr<bpl_net, net_deleter>;
using rule_ptr = std::unique_ptr<bpl_rule, rule_deleter>;
using dataset_ptr = std::unique_ptr<bpl_dataset, dataset_deleter>;

inline net_ptr make_net(std::size_t inputs, std::uint64_t seed)
{
    bpl_net *raw = nullptr;
    check(bpl_net_create(&raw, inputs, seed));
    return net_ptr(raw);
}

inline net_ptr load_net(const std::string &path)
{
    bpl_net *raw = nullptr;
    check(bpl_net_load(&raw, path.c_str()));
    return net_ptr(raw);
}

inline rule_ptr make_rule(const char *name)
{
    bpl_rule *raw = nullptr;
    check(bpl_rule_create_builtin(&raw, name));
    return rule_ptr(raw);
}

// The net owns the rule once attached: the unique_ptr lets go only then.
inline void attach(bpl_net *net, rule_ptr rule)
{
    check(bpl_net_set_rule(net, rule.get()));
    rule.release();
}

inline dataset_ptr load_mnist(const std::string &dir, int split)
{
    bpl_dataset *raw = nullptr;
    check(bpl_dataset_load_mnist(&raw, dir.c_str(), split));
    return dataset_ptr(raw);
}

inline dataset_ptr slice(const bpl_dataset *ds, std::size_t start, std::size_t count)
{
    bpl_dataset *raw = nullptr;
    check(bpl_dataset_slice(&raw, ds, start, count));
    return dataset_ptr(raw);
}

inline dataset_ptr make_dataset(const std::vector<float> &x, const std::vector<float> &y,
                                std::size_t n, std::size_t features, std::size_t targets)
{
    bpl_dataset *raw = nullptr;
    check(bpl_dataset_from_f32(&raw, x.data(), y.data(), n, features, targets));
    return dataset_ptr(raw);
}

} // namespace bpl

#endif
