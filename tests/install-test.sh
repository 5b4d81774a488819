#!/bin/sh
# install-test.sh SOURCE-DIR MESON NINJA - check what `meson install` ships.
#
# Configures fresh builds of SOURCE-DIR in a temporary directory (prefix /usr,
# a non-default libdir), installs each with DESTDIR into a staging tree, and
# checks the staged files: where they land, the library's SONAME and the
# absence of RPATH/RUNPATH, a clean pkg-config file, C and C++ consumers
# built only from `pkg-config` pointed into the staging tree, and the
# bioplaus-train tool with its manual page.  A second build
# with -Ddefault_library=both must also install libbioplaus.a, and a consumer
# must link it statically with `pkg-config --static`.
#
# The last line is "N passed, N failed"; the exit status is 0 only when
# nothing failed.

# The helpers below run through check(), which shellcheck cannot follow.
# shellcheck disable=SC2317
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 SOURCE-DIR MESON NINJA" >&2
    exit 2
fi
src=$1
meson=$2
ninja=$3
prefix=/usr
libdir=lib/bpl-test-arch # not a default, so that --libdir is seen to be honoured
cc=${CC:-cc}
cxx=${CXX:-c++}
# What the installed files are called: the release (the header's version)
# and the soname (meson.build's bpl_soversion).
version=$(sed -n 's/^#define BPL_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/bioplaus.h")
soname=libbioplaus.so.$(sed -n "s/^bpl_soversion = '\(.*\)'\$/\1/p" "$src/meson.build")

work=$(mktemp -d "${TMPDIR:-/tmp}/bioplaus-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

pass() {
    echo "ok: $*"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

# check DESCRIPTION COMMAND...: pass if COMMAND succeeds, else fail with its output.
check() {
    what=$1
    shift
    if "$@" >"$work/log" 2>&1; then
        pass "$what"
    else
        fail "$what"
        sed 's/^/    /' "$work/log"
        return 1
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# build NAME [MESON-OPTION...]: configure, build and stage a build of $src.
build() {
    name=$1
    shift
    check "$name: meson setup --prefix=$prefix --libdir=$libdir $*" \
        "$meson" setup "$work/$name" "$src" --prefix="$prefix" --libdir="$libdir" \
        -Dtests=disabled -Dexamples=false -Dbench=false -Ddocs=disabled "$@" &&
        check "$name: build" "$ninja" -C "$work/$name" &&
        check "$name: install with DESTDIR" \
            env DESTDIR="$work/stage-$name" "$meson" install -C "$work/$name" --no-rebuild
}

# pc STAGE ARGS...: pkg-config that sees the staged bioplaus.pc first.
pc() {
    stage=$1
    shift
    PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=$stage$prefix/$libdir/pkgconfig \
        pkg-config "$@"
}

write_consumers() {
    cat >"$work/consumer.c" <<'EOF'
#include <bioplaus.h>

#include <stdio.h>
#include <string.h>

/* XOR with backprop: the consumer links and the library really trains. */
int main(void)
{
    static const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const float y[4][1] = {{0}, {1}, {1}, {0}};
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    bpl_dataset *data = NULL;
    float out[4];
    int rc, correct = 0;
    if (bpl_version_number() != BPL_VERSION_NUMBER) {
        printf("version mismatch: header %s, library %s\n", BPL_VERSION_STRING,
               bpl_version_string());
        return 1;
    }
    rc = bpl_net_create(&net, 2, 42);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, 1, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_rule_create_builtin(&rule, "backprop");
    if (rc == BPL_OK)
        rc = bpl_rule_set(rule, "lr", 0.1);
    if (rc == BPL_OK && (rc = bpl_net_set_rule(net, rule)) == BPL_OK)
        rule = NULL;
    if (rc == BPL_OK)
        rc = bpl_dataset_from_f32(&data, &x[0][0], &y[0][0], 4, 2, 1);
    if (rc == BPL_OK)
        rc = bpl_net_fit(net, data, 300, 4, NULL, NULL);
    if (rc == BPL_OK)
        rc = bpl_net_predict(net, &x[0][0], 4, out, 4);
    for (int i = 0; rc == BPL_OK && i < 4; i++)
        correct += (out[i] > 0.5f) == (y[i][0] > 0.5f);
    if (rc != BPL_OK)
        printf("error: %s\n", bpl_last_error_message());
    else
        printf("consumer-c %s xor %d/4\n", bpl_version_string(), correct);
    bpl_dataset_destroy(data);
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    return rc == BPL_OK && correct == 4 ? 0 : 1;
}
EOF
    cat >"$work/consumer.cpp" <<'EOF'
#include <bioplaus.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

struct net_deleter {
    void operator()(bpl_net *net) const noexcept { bpl_net_destroy(net); }
};

static void check(int status)
{
    if (status != BPL_OK)
        throw std::runtime_error(bpl_last_error_message());
}

int main()
{
    try {
        bpl_net *raw = nullptr;
        check(bpl_net_create(&raw, 3, 1));
        std::unique_ptr<bpl_net, net_deleter> net(raw);
        check(bpl_net_add_dense(net.get(), 5, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
        check(bpl_net_add_dense(net.get(), 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
        try {
            check(bpl_net_add_dense(net.get(), 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
            return 1;
        } catch (const std::runtime_error &e) {
            if (std::string(e.what()).find("bpl_net_add_dense") == std::string::npos)
                return 1;
        }
        std::printf("consumer-cxx %s params %zu\n", bpl_version_string(),
                    bpl_net_param_count(net.get()));
        return bpl_net_param_count(net.get()) == 3 * 5 + 5 + 5 * 2 + 2 ? 0 : 1;
    } catch (const std::exception &e) {
        std::printf("error: %s\n", e.what());
        return 1;
    }
}
EOF
    cat >"$work/consumer-rule.c" <<'EOF'
#include <bioplaus_rule.h>

#include <stdio.h>

/* A rule written against the installed extension header: backprop through
 * the building blocks, on the version-2 contract. */
static int forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    int rc = bpl_net_output_delta(net, y, batch);
    (void)self;
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *w;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, w, 1);
    }
    return rc;
}

static int gradients(void *self, bpl_net *net, unsigned int *groups)
{
    int rc = BPL_OK;
    (void)self;
    (void)groups;
    for (size_t l = 0; rc == BPL_OK && l < bpl_net_layer_count(net); l++)
        rc = bpl_net_weight_gradients(net, l);
    return rc;
}

int main(void)
{
    static const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const float y[4][1] = {{0}, {1}, {1}, {0}};
    bpl_rule_vtable vt;
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    double first = 0, last = 0;
    int rc = bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION);
    vt.name = "consumer_bp";
    vt.forward = forward;
    vt.compute_targets = targets;
    vt.gradients = gradients;
    if (rc == BPL_OK)
        rc = bpl_net_create(&net, 2, 7);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, 1, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_rule_create(&rule, &vt, NULL);
    if (rc == BPL_OK)
        rc = bpl_rule_set(rule, "lr", 0.05);
    if (rc == BPL_OK && (rc = bpl_net_set_rule(net, rule)) == BPL_OK)
        rule = NULL;
    for (int step = 0; rc == BPL_OK && step < 200; step++)
        rc = bpl_net_train_batch(net, &x[0][0], &y[0][0], 4, step ? &last : &first);
    if (rc != BPL_OK)
        printf("error: %s\n", bpl_last_error_message());
    else
        printf("consumer-rule %s %s\n", bpl_version_string(),
               last < first ? "learns" : "does not learn");
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
    return rc == BPL_OK && last < first ? 0 : 1;
}
EOF
}

# output_is FILE TEXT: FILE's first line is TEXT.
output_is() {
    [ "$(head -n 1 "$1")" = "$2" ] || { echo "got: $(cat "$1")"; return 1; }
}

# run_tool STAGE: the installed trainer finds the staged library and says so.
run_tool() {
    LD_LIBRARY_PATH=$1$prefix/$libdir "$1$prefix/bin/bioplaus-train" --version \
        >"$work/tool.out" 2>&1 &&
        grep -q '^bioplaus-train (libbioplaus) [0-9]' "$work/tool.out" &&
        LD_LIBRARY_PATH=$1$prefix/$libdir ldd "$1$prefix/bin/bioplaus-train" |
        grep 'libbioplaus' | grep -q "$1"
}

no_rpath() {
    ! readelf -d "$1" | grep -E 'RPATH|RUNPATH'
}

has_soname() {
    readelf -d "$1" | grep -qF "Library soname: [$soname]"
}

clean_pc() {
    ! grep -n -e '-pthread' -e "$work" -e "$src" "$1" &&
        grep -q "^prefix=$prefix\$" "$1" &&
        grep -q "^libdir=\${prefix}/$libdir\$" "$1"
}

only_prefix_staged() {
    [ "$(ls -A "$1")" = "${prefix#/}" ]
}

# staged_pc STAGE: pkg-config resolves bioplaus to the staged file, with the
# staged include and library folders.
staged_pc() {
    [ "$(pc "$1" --variable=pcfiledir bioplaus)" = "$1$prefix/$libdir/pkgconfig" ] &&
        pc "$1" --cflags bioplaus | grep -q -e "-I$1$prefix/include" &&
        pc "$1" --libs bioplaus | grep -q -e "-L$1$prefix/$libdir"
}

# run_consumer STAGE PROGRAM: run it against the staged library.
run_consumer() {
    LD_LIBRARY_PATH=$1$prefix/$libdir "$2" >"$2.out" 2>&1 &&
        LD_LIBRARY_PATH=$1$prefix/$libdir ldd "$2" | grep 'libbioplaus' | grep -q "$1"
}

check_shared_install() {
    stage=$work/stage-shared
    lib=$stage$prefix/$libdir
    check "DESTDIR honoured: only .$prefix in the staging dir" only_prefix_staged "$stage"
    check "header in \$prefix/include" \
        cmp "$src/include/bioplaus.h" "$stage$prefix/include/bioplaus.h"
    check "extension header in \$prefix/include" \
        cmp "$src/include/bioplaus_rule.h" "$stage$prefix/include/bioplaus_rule.h"
    check "library in \$prefix/\$libdir" test -f "$lib/libbioplaus.so.$version"
    check "soname link $soname" test -L "$lib/$soname"
    check "development link libbioplaus.so" test -L "$lib/libbioplaus.so"
    check "no static library by default" test ! -e "$lib/libbioplaus.a"
    check "pkg-config file in \$libdir/pkgconfig" test -f "$lib/pkgconfig/bioplaus.pc"
    check "SONAME is $soname" has_soname "$lib/libbioplaus.so.$version"
    check "no RPATH or RUNPATH in the installed library" no_rpath "$lib/libbioplaus.so.$version"
    check "bioplaus.pc: no -pthread, no build paths, prefix and libdir" \
        clean_pc "$lib/pkgconfig/bioplaus.pc"
    check "pkg-config finds the staged bioplaus.pc" staged_pc "$stage"
    flags=$(pc "$stage" --cflags --libs bioplaus)
    # $flags is split into words on purpose.
    # shellcheck disable=SC2086
    check "C consumer builds from pkg-config alone" \
        "$cc" -std=c99 -Wall -Werror "$work/consumer.c" $flags -o "$work/consumer-c"
    check "C consumer runs against the staged library" \
        run_consumer "$stage" "$work/consumer-c"
    check "C consumer output" output_is "$work/consumer-c.out" "consumer-c $version xor 4/4"
    # shellcheck disable=SC2086
    check "rule consumer builds from pkg-config alone (bioplaus_rule.h)" \
        "$cc" -std=c99 -Wall -Werror "$work/consumer-rule.c" $flags -o "$work/consumer-rule"
    check "rule consumer runs against the staged library" \
        run_consumer "$stage" "$work/consumer-rule"
    check "rule consumer output" output_is "$work/consumer-rule.out" \
        "consumer-rule $version learns"
    check "bioplaus-train in \$prefix/bin" test -x "$stage$prefix/bin/bioplaus-train"
    check "its manual page in \$prefix/share/man/man1" \
        test -f "$stage$prefix/share/man/man1/bioplaus-train.1"
    check "bioplaus-train runs against the staged library" run_tool "$stage"
    if command -v "$cxx" >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        check "C++ consumer builds from pkg-config alone" \
            "$cxx" -std=c++17 -Wall -Werror "$work/consumer.cpp" $flags \
            -o "$work/consumer-cxx"
        check "C++ consumer runs against the staged library" \
            run_consumer "$stage" "$work/consumer-cxx"
        check "C++ consumer output" output_is "$work/consumer-cxx.out" \
            "consumer-cxx $version params 32"
    else
        echo "skip: no C++ compiler ($cxx)"
    fi
}

# Link libbioplaus.a whole into the program, its dependencies as pkg-config
# --static lists them.
static_flags() {
    pc "$1" --static --cflags --libs bioplaus |
        sed 's/-lbioplaus/-Wl,-Bstatic -lbioplaus -Wl,-Bdynamic/'
}

not_needed() {
    ! readelf -d "$1" | grep 'NEEDED' | grep 'libbioplaus'
}

check_static_install() {
    stage=$work/stage-both
    lib=$stage$prefix/$libdir
    check "default_library=both installs libbioplaus.a" test -f "$lib/libbioplaus.a"
    check "default_library=both installs the shared library too" \
        test -f "$lib/libbioplaus.so.$version"
    check "static library: bioplaus.pc clean" clean_pc "$lib/pkgconfig/bioplaus.pc"
    flags=$(static_flags "$stage")
    # shellcheck disable=SC2086
    check "C consumer links libbioplaus.a with pkg-config --static" \
        "$cc" -std=c99 -Wall -Werror "$work/consumer.c" $flags -o "$work/consumer-static"
    check "the static consumer does not need libbioplaus.so" \
        not_needed "$work/consumer-static"
    check "the static consumer runs without the shared library" \
        env -u LD_LIBRARY_PATH sh -c "'$work/consumer-static' >'$work/consumer-static.out'"
    check "static consumer output" output_is "$work/consumer-static.out" \
        "consumer-c $version xor 4/4"
}

for tool in pkg-config readelf "$cc"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
done
[ "$failed" -eq 0 ] || finish
write_consumers
if build shared; then
    check_shared_install
fi
if build both -Ddefault_library=both; then
    check_static_install
fi
finish
