/*
 * torch.c - the PyTorch reference: bench/torch_conv.py run as a subprocess
 * with the same environment (OPENBLAS_CORETYPE included), its lines parsed.
 */
#include "bench_conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rules torch_conv.py implements. */
static int torch_has(const char *rule)
{
    return strcmp(rule, "backprop") == 0 || strcmp(rule, "fa") == 0;
}

int torch_info(const options *o)
{
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --info 2>&1", o->python, o->script);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char text[2048] = "";
    while (fgets(line, sizeof line, p))
        if (strlen(text) + strlen(line) < sizeof text)
            strcat(text, line);
    int ok = pclose(p) == 0;
    printf("%s%s", ok ? "" : "PyTorch reference: SKIPPED: ", text);
    return ok;
}

static double field(const char *line, const char *name)
{
    const char *at = strstr(line, name);
    return at ? strtod(at + strlen(name), NULL) : -1.0;
}

size_t run_torch(const options *o, size_t net, size_t threads, torch_entry *t, size_t room)
{
    char rules[256] = "", batches[128] = "", cmd[2048], line[1024];
    for (size_t r = 0; r < o->n_rules; r++)
        if (torch_has(o->rules[r]))
            snprintf(rules + strlen(rules), sizeof rules - strlen(rules), "%s%s",
                     rules[0] ? "," : "", o->rules[r]);
    if (!rules[0])
        return 0;
    for (size_t b = 0; b < o->n_batches; b++)
        snprintf(batches + strlen(batches), sizeof batches - strlen(batches), "%s%zu",
                 b ? "," : "", o->batches[b]);
    snprintf(cmd, sizeof cmd,
             "'%s' '%s' --arch '%s' --batches %s --rules %s --threads %zu --steps %zu "
             "--repeats %d %s%s%s",
             o->python, o->script, o->nets[net].arch, batches, rules, threads, o->steps,
             o->repeats, o->synthetic ? "--synthetic" : "--data '",
             o->synthetic ? "" : o->data, o->synthetic ? "" : "'");
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    while (p && fgets(line, sizeof line, p)) {
        if (strncmp(line, "torch_conv ", 11) != 0 || n == room)
            continue;
        torch_entry *e = &t[n++];
        const char *rule = strstr(line, "rule=");
        sscanf(rule ? rule + 5 : "?", "%31s", e->rule);
        e->net = net;
        e->threads = threads;
        e->batch = (size_t)field(line, "batch=");
        e->median = field(line, "median_s=");
        e->cpu_median = field(line, "cpu_s=");
        e->peak_rss_mib = field(line, "maxrss_mib=");
    }
    if (p && pclose(p) != 0)
        printf("  (the PyTorch reference failed: %s)\n", cmd);
    return n;
}
