/*
 * torch.c - the PyTorch reference: bench/torch_ref.py run as a subprocess
 * with the same environment, asked first whether it can run (--info), its
 * per-configuration lines parsed.
 */
#include "bench_train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Rules that bench/torch_ref.py implements. */
static const char *const TORCH_RULES[] = {"backprop", "fa", "dtp"};

/* Single-quote `s` for the shell. */
static void quote(char *out, size_t size, const char *s)
{
    size_t n = 0;
    if (n + 1 < size)
        out[n++] = '\'';
    for (; *s && n + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *s;
        }
    }
    if (n + 1 < size)
        out[n++] = '\'';
    out[n] = '\0';
}

static int torch_command(const options *o, char *cmd, size_t size)
{
    char py[1024], script[1024];
    quote(py, sizeof py, o->python);
    quote(script, sizeof script, o->torch);
    return snprintf(cmd, size, "%s %s", py, script) < (int)size;
}

/* Run the reference's --info; 0 and the reason printed if it cannot run. */
int torch_available(const options *o)
{
    char cmd[2200], line[1024];
    if (!torch_command(o, cmd, sizeof cmd - 20))
        return 0;
    strcat(cmd, " --info 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("PyTorch reference: SKIPPED: cannot run '%s %s': %s\n", o->python, o->torch,
               strerror(errno));
        return 0;
    }
    char text[4096] = "";
    while (fgets(line, sizeof line, p))
        if (strlen(text) + strlen(line) < sizeof text)
            strcat(text, line);
    int status = pclose(p);
    if (status != 0) {
        size_t end = strlen(text);
        while (end > 0 && text[end - 1] == '\n')
            text[--end] = '\0';
        const char *last = strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text;
        printf("PyTorch reference: SKIPPED: '%s %s --info' failed: %s\n"
               "  Install Debian's PyTorch (apt-get install python3-torch) or name an "
               "interpreter that has it with --python.\n",
               o->python, o->torch, last[0] ? last : "no output");
        return 0;
    }
    printf("%s", text);
    return 1;
}

/* Run the reference for one net and thread count over every batch and every
 * rule it implements, appending to `t`. */
void run_torch(const options *o, size_t net, size_t threads, torch_entry *t,
               size_t *n_t)
{
    char cmd[4096], name[128], batches[256], rules[128] = "", data[1024];
    net_name(&o->nets[net], name, sizeof name);
    csv_list(batches, sizeof batches, o->batches, o->n_batches);
    /* Backprop always: the tables time every rule against it. */
    for (size_t i = 0; i < sizeof TORCH_RULES / sizeof TORCH_RULES[0]; i++) {
        int wanted = i == 0;
        for (size_t r = 0; r < o->n_rules; r++)
            wanted |= strcmp(o->rules[r], TORCH_RULES[i]) == 0;
        if (wanted)
            snprintf(rules + strlen(rules), sizeof rules - strlen(rules), "%s%s",
                     rules[0] ? "," : "", TORCH_RULES[i]);
    }
    quote(data, sizeof data, o->data);
    torch_command(o, cmd, sizeof cmd);
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd),
             " --net %s --batches %s --rules %s --threads %zu --repeats %d %s%s 2>&1", name,
             batches, rules, threads, o->repeats, o->synthetic ? "--synthetic" : "--data ",
             o->synthetic ? "" : data);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("PyTorch reference failed to start: %s\n", strerror(errno));
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        torch_entry e = {.net = net, .threads = threads};
        char net_text[128];
        if (*n_t < MAX_TORCH &&
            sscanf(line, "torch_ref rule=%31s net=%127s batch=%zu threads=%*u median_s=%lf "
                         "min_s=%lf max_s=%lf repeats=%*d maxrss_mib=%lf",
                   e.rule, net_text, &e.batch, &e.median, &e.lo, &e.hi,
                   &e.peak_rss_mib) == 7)
            t[(*n_t)++] = e;
        else if (strncmp(line, "torch_ref", 9) != 0)
            printf("  [torch_ref] %s", line); /* warnings and errors, shown as they are */
    }
    if (pclose(p) != 0)
        printf("  PyTorch reference exited with an error (command: %s)\n", cmd);
}

const torch_entry *torch_find(const torch_entry *t, size_t n_t, const char *rule,
                              size_t net, size_t batch, size_t threads)
{
    for (size_t i = 0; i < n_t; i++)
        if (strcmp(t[i].rule, rule) == 0 && t[i].net == net && t[i].batch == batch &&
            t[i].threads == threads)
            return &t[i];
    return NULL;
}
