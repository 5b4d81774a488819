// lenet.cpp - LeNet-5 on MNIST from C++17, as BioTorch benchmarks it: conv
// 6@5x5 pad 2 -> ReLU -> maxpool 2 -> conv 16@5x5 -> ReLU -> maxpool 2 ->
// conv 120@5x5 -> ReLU -> dense 84 -> dense 10 (the padding makes MNIST's
// 28x28 what LeNet's 32x32 input was).  Any rule that trains conv nets.
//
//     lenet MNIST-DIR [RULE [EPOCHS [TRAIN-IMAGES]]]
//
// Prints the test accuracy after each epoch.
#include "bioplaus.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace {

bpl::net_ptr build_lenet(const char *rule_name)
{
    static const std::size_t image[] = {1, 28, 28};
    const int relu = BPL_ACT_RELU, he = BPL_INIT_HE_NORMAL;
    bpl::net_ptr net = bpl::make_net(28 * 28, 1);
    bpl_net *n = net.get();
    bpl::check(bpl_net_set_input_shape(n, image, 3));
    bpl::check(bpl_net_add_conv2d(n, 6, 5, 5, 1, 2, relu, he)); // 6 x 28 x 28
    bpl::check(bpl_net_add_maxpool2d(n, 2, 0));                // 6 x 14 x 14
    bpl::check(bpl_net_add_conv2d(n, 16, 5, 5, 1, 0, relu, he)); // 16 x 10 x 10
    bpl::check(bpl_net_add_maxpool2d(n, 2, 0));                 // 16 x 5 x 5
    bpl::check(bpl_net_add_conv2d(n, 120, 5, 5, 1, 0, relu, he)); // 120 x 1 x 1
    bpl::check(bpl_net_add_dense(n, 84, relu, he));
    bpl::check(bpl_net_add_dense(n, 10, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    bpl::rule_ptr rule = bpl::make_rule(rule_name);
    bpl::check(bpl_rule_set(rule.get(), "lr", 1e-3)); // Adam, the rules' default optimiser
    bpl::attach(n, std::move(rule));
    return net;
}

std::size_t parse_count(const char *text, const char *what)
{
    char *end = nullptr;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (*text < '0' || *text > '9' || *end || value == 0)
        throw std::invalid_argument(std::string(what) + " must be a positive integer");
    return static_cast<std::size_t>(value);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        std::fprintf(stderr, "usage: lenet MNIST-DIR [RULE [EPOCHS [TRAIN-IMAGES]]]\n");
        return 2;
    }
    try {
        const char *rule = argc > 2 ? argv[2] : "backprop";
        std::size_t epochs = argc > 3 ? parse_count(argv[3], "EPOCHS") : 1;
        bpl::dataset_ptr train = bpl::load_mnist(argv[1], BPL_MNIST_TRAIN);
        bpl::dataset_ptr test = bpl::load_mnist(argv[1], BPL_MNIST_TEST);
        if (argc > 4)
            train = bpl::slice(train.get(), 0, parse_count(argv[4], "TRAIN-IMAGES"));
        bpl::net_ptr net = build_lenet(rule);
        std::printf("LeNet-5, %zu parameters, rule %s\n", bpl_net_param_count(net.get()), rule);
        for (std::size_t epoch = 1; epoch <= epochs; epoch++) {
            bpl::check(bpl_net_fit(net.get(), train.get(), 1, 64, nullptr, nullptr));
            double accuracy = 0.0;
            bpl::check(bpl_net_evaluate(net.get(), test.get(), &accuracy, nullptr));
            std::printf("epoch %zu test_accuracy=%.4f\n", epoch, accuracy);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "lenet: %s\n", e.what());
        return 1;
    }
    return 0;
}
