// train.cpp - libbioplaus from C++17 (bioplaus.hpp: handles owned by
// std::unique_ptr, failures thrown as exceptions).
//
// It trains a small net on a synthetic two-class task (no data files needed)
// and checks that it learns, that a saved net predicts the same after
// loading, and that a bad call throws.  Exit status 0 when every check passes.
//
//     train [SAVE-PATH]
#include "bioplaus.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr std::size_t n_examples = 512;
constexpr std::size_t n_features = 2;
constexpr std::size_t n_classes = 2;

int failures = 0;

void expect(bool ok, const std::string &what)
{
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
    failures += ok ? 0 : 1;
}

// A fixed generator, so that the task is the same with every compiler.
class lcg {
public:
    explicit lcg(std::uint64_t seed) : state_(seed) {}
    double uniform()  // in [-1, 1)
    {
        state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>(state_ >> 11) / 4503599627370496.0 - 1.0;
    }

private:
    std::uint64_t state_;
};

// Points of the square; class 1 inside the circle of radius 0.6, one-hot rows.
void make_task(std::vector<float> &x, std::vector<float> &y)
{
    lcg gen(2024);
    x.resize(n_examples * n_features);
    y.assign(n_examples * n_classes, 0.0f);
    for (std::size_t i = 0; i < n_examples; i++) {
        double a = gen.uniform(), b = gen.uniform();
        x[i * n_features] = static_cast<float>(a);
        x[i * n_features + 1] = static_cast<float>(b);
        y[i * n_classes + (a * a + b * b < 0.36 ? 1 : 0)] = 1.0f;
    }
}

bpl::net_ptr build_net()
{
    bpl::net_ptr net = bpl::make_net(n_features, 7);
    bpl::check(bpl_net_add_dense(net.get(), 32, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    bpl::check(bpl_net_add_dense(net.get(), n_classes, BPL_ACT_SOFTMAX,
                                 BPL_INIT_GLOROT_UNIFORM));
    bpl::rule_ptr rule = bpl::make_rule("backprop");
    bpl::check(bpl_rule_set(rule.get(), "lr", 0.01));
    bpl::attach(net.get(), std::move(rule));
    expect(rule == nullptr, "the rule handle is released once the net owns it");
    return net;
}

// Progress callback: record each epoch's loss; never lets an exception out.
int record_epoch(int event, std::size_t, std::size_t, std::size_t, double loss,
                 void *user_data) noexcept
{
    try {
        if (event == BPL_EVENT_EPOCH)
            static_cast<std::vector<double> *>(user_data)->push_back(loss);
        return 0;
    } catch (...) {
        return 1; // stop training
    }
}

std::vector<float> predict(bpl_net *net, const std::vector<float> &x)
{
    std::vector<float> out(n_examples * n_classes);
    bpl::check(bpl_net_predict(net, x.data(), n_examples, out.data(), out.size()));
    return out;
}

void check_errors_throw()
{
    bpl::net_ptr net = bpl::make_net(3, 1);
    try {
        bpl::check(bpl_net_add_dense(net.get(), 0, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
        expect(false, "zero units throws");
    } catch (const bpl::error &e) {
        expect(e.status() == BPL_ERR_INVALID_ARG, "zero units throws BPL_ERR_INVALID_ARG");
        expect(std::strstr(e.what(), "bpl_net_add_dense") != nullptr,
               std::string("the message names the function: ") + e.what());
    }
    try {
        bpl::make_rule("no_such_rule");
        expect(false, "an unknown rule throws");
    } catch (const bpl::error &e) {
        expect(e.status() == BPL_ERR_NOT_FOUND, "an unknown rule throws BPL_ERR_NOT_FOUND");
    }
}

void check_training(const std::string &save_path)
{
    std::vector<float> x, y;
    make_task(x, y);
    bpl::dataset_ptr data = bpl::make_dataset(x, y, n_examples, n_features, n_classes);
    bpl::net_ptr net = build_net();
    double accuracy_before = 0.0;
    bpl::check(bpl_net_evaluate(net.get(), data.get(), &accuracy_before, nullptr));
    std::vector<double> losses;
    // The circle takes a while to leave the majority class's plateau: 150
    // epochs learn it from every seed tried (60 did not from some).
    constexpr std::size_t epochs = 150;
    bpl::check(bpl_net_fit(net.get(), data.get(), epochs, 32, record_epoch, &losses));
    double accuracy = 0.0, loss = 0.0;
    bpl::check(bpl_net_evaluate(net.get(), data.get(), &accuracy, &loss));
    std::printf("accuracy %.4f -> %.4f, loss %.4f -> %.4f over %zu epochs\n",
                accuracy_before, accuracy, losses.empty() ? NAN : losses.front(),
                losses.empty() ? NAN : losses.back(), losses.size());
    expect(losses.size() == epochs, "the progress callback saw every epoch");
    expect(!losses.empty() && losses.back() < 0.5 * losses.front(), "the loss falls");
    expect(accuracy >= 0.95, "the net learns the circle (accuracy >= 0.95)");

    bpl::check(bpl_net_save(net.get(), save_path.c_str()));
    bpl::net_ptr loaded = bpl::load_net(save_path);
    std::filesystem::remove(save_path);
    expect(std::string(bpl_rule_name(bpl_net_rule(loaded.get()))) == "backprop",
           "the loaded net has its rule attached");
    std::vector<float> a = predict(net.get(), x), b = predict(loaded.get(), x);
    expect(std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0,
           "the loaded net predicts exactly the same");
}

} // namespace

int main(int argc, char **argv)
{
    if (bpl_version_number() / 100 != BPL_VERSION_NUMBER / 100) {
        std::fprintf(stderr, "train: built with libbioplaus %s, running with %s\n",
                     BPL_VERSION_STRING, bpl_version_string());
        return 1;
    }
    std::string save_path = argc > 1 ? argv[1]
                                     : (std::filesystem::temp_directory_path() /
                                        "bioplaus-train-cpp.bpl").string();
    try {
        check_errors_throw();
        check_training(save_path);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "train: %s\n", e.what());
        return 1;
    }
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
