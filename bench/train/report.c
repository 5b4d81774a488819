/*
 * report.c - what bench-train prints and writes: the machine and options it
 * ran with, a table row per configuration, and the CSV file of --csv.
 */
#include "bench_train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

void net_name(const net_shape *s, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < s->n_sizes; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%zu", i ? "-" : "", s->sizes[i]);
}

/* "1 BLAS thread", "2 BLAS threads", or the BLAS's own choice for 0. */
const char *threads_text(size_t threads, char *out, size_t size)
{
    if (threads)
        snprintf(out, size, "%zu BLAS thread%s", threads, threads > 1 ? "s" : "");
    else
        snprintf(out, size, "the BLAS's default threads");
    return out;
}

void csv_list(char *out, size_t size, const size_t *v, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%zu", i ? "," : "", v[i]);
}

void print_machine(const options *o, int argc, char **argv)
{
    char line[512], cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
    double load[3] = {0, 0, 0};
    f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
        load[0] = load[1] = load[2] = -1;
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    time_t t = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", localtime(&t));

    printf("bench-train");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n\noptions:  --rules ");
    for (size_t r = 0; r < o->n_rules; r++)
        printf("%s%s", r ? "," : "", o->rules[r]);
    printf(" --nets ");
    for (size_t n = 0; n < o->n_nets; n++) {
        char name[128];
        net_name(&o->nets[n], name, sizeof name);
        printf("%s%s", n ? "," : "", name);
    }
    char list[256];
    csv_list(list, sizeof list, o->batches, o->n_batches);
    printf(" --batches %s", list);
    if (o->n_threads) {
        csv_list(list, sizeof list, o->threads, o->n_threads);
        printf(" --threads %s", list);
    }
    printf(" --repeats %d --gemm-seconds %g", o->repeats, o->gemm_seconds);
    for (size_t p = 0; p < o->n_params; p++)
        printf(" --param %s", o->params[p]);
    if (o->synthetic)
        printf(" --synthetic");
    else
        printf(" --data %s", o->data);
    if (o->torch)
        printf(" --torch %s --python %s", o->torch, o->python);
    if (o->in_process)
        printf(" --in-process");
    if (o->csv)
        printf(" --csv %s", o->csv);
    printf("\nwhen:     %s\n", when);
    printf("machine:  %s, %ld CPUs online, %s %s %s, load average %.2f %.2f %.2f\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, u.machine, load[0],
           load[1], load[2]);
    printf("library:  libbioplaus %s, BLAS %s (%s)\n", bpl_version_string(),
           bpl_blas_backend(), bpl_blas_info());
    if (o->n_threads)
        printf("          (the threads above are the BLAS's default; every configuration "
               "sets its own)\n");
#ifdef __VERSION__
    printf("compiler: %s (this program)\n", __VERSION__);
#endif
    static const char *const vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                       "OPENBLAS_NUM_THREADS",
                                       "OPENBLAS_VERBOSE", "BLIS_ARCH_TYPE",
                                       "BLIS_NUM_THREADS", "OMP_NUM_THREADS",
                                       "GOMP_CPU_AFFINITY"};
    printf("env:     ");
    int any = 0;
    for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++)
        if (getenv(vars[v])) {
            printf(" %s=%s", vars[v], getenv(vars[v]));
            any = 1;
        }
    printf("%s\n", any ? "" : " (no BLAS or OpenMP variables set)");
}

void print_header(void)
{
    printf("%-12s %5s %8s %15s %6s %7s %6s %7s %7s %5s %8s %7s %6s %8s %7s\n", "rule",
           "batch", "s/epoch", "range", "vs bp", "x bound", "GEMM%", "GEMM GF", "sgemmGF",
           "eff%", "RSS MiB", "theory", "RSS/th", "torch s", "x torch");
}

void print_row(const char *rule, size_t batch, const train_result *r, double median,
               double reference, const gemm_result *g, const torch_entry *te)
{
    if (!r->status.ok) {
        printf("%-12s %5zu FAILED: %s\n", rule, batch, r->status.error);
        return;
    }
    double th = r->dataset + r->params + r->state + r->workspace;
    char bound[16] = "-", sgemm[16] = "-", eff[16] = "-", torch[16] = "-", ratio[16] = "-";
    if (g && g->status.ok) {
        snprintf(bound, sizeof bound, "%.2fx", median / g->epoch_seconds);
        double rate = g->step_flops / g->step_seconds / 1e9;
        snprintf(sgemm, sizeof sgemm, "%.1f", rate);
        snprintf(eff, sizeof eff, "%.0f", 100.0 * r->gemm_gflops / rate);
    }
    if (te) {
        snprintf(torch, sizeof torch, "%.3f", te->median);
        snprintf(ratio, sizeof ratio, "%.2fx", median / te->median);
    }
    char range[32];
    snprintf(range, sizeof range, "%.3f-%.3f", r->seconds[0], r->seconds[r->repeats - 1]);
    printf("%-12s %5zu %8.3f %15s %5.2fx %7s %5.1f%% %7.1f %7s %5s %8.1f %7.1f %6.2f %8s "
           "%7s\n",
           rule, batch, median, range, reference > 0 ? median / reference : 1.0, bound,
           100.0 * r->gemm_share, r->gemm_gflops, sgemm, eff, r->peak_rss / MIB, th / MIB,
           r->peak_rss / th, torch, ratio);
}

void csv_row(FILE *csv, const char *rule, const char *net, size_t batch,
             size_t threads, const train_result *r, double median, double reference,
             const gemm_result *g, const torch_entry *te)
{
    if (!csv)
        return;
    double th = r->dataset + r->params + r->state + r->workspace;
    fprintf(csv, "%s,%s,%zu,%zu,%d,%s", rule, net, batch, threads, r->repeats,
            r->status.ok ? "ok" : "failed");
    if (!r->status.ok) {
        fprintf(csv, ",,,,,,,,,,,,,,,,,,,,,,\n");
        return;
    }
    fprintf(csv, ",%.4f,%.4f,%.4f,%.4f,%.4f,%.2f", median, r->seconds[0],
            r->seconds[r->repeats - 1], reference > 0 ? median / reference : 1.0,
            r->gemm_share, r->gemm_gflops);
    if (g && g->status.ok)
        fprintf(csv, ",%.2f,%.4f,%.4f", g->step_flops / g->step_seconds / 1e9,
                g->epoch_seconds, median / g->epoch_seconds);
    else
        fprintf(csv, ",,,");
    fprintf(csv, ",%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.3f", r->peak_rss / MIB, r->heap / MIB,
            r->dataset / MIB, r->params / MIB, r->state / MIB, r->workspace / MIB, th / MIB,
            r->peak_rss / th);
    if (te)
        fprintf(csv, ",%.4f,%.4f,%.4f,%.3f,%.1f\n", te->median, te->lo, te->hi,
                median / te->median, te->peak_rss_mib);
    else
        fprintf(csv, ",,,,,\n");
}

FILE *open_csv(const char *path)
{
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "bench-train: cannot write '%s': %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(csv, "rule,net,batch,threads,repeats,status,median_s,min_s,max_s,vs_backprop,"
                 "gemm_share,gemm_gflops,sgemm_gflops,gemm_bound_s,vs_bound,peak_rss_mib,"
                 "heap_mib,dataset_mib,params_mib,optimizer_state_mib,workspace_mib,"
                 "theory_mib,rss_over_theory,torch_median_s,torch_min_s,torch_max_s,"
                 "lib_over_torch,torch_peak_rss_mib\n");
    return csv;
}
