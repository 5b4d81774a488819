/*
 * rule_state.c - a rule's own state as bytes: what the save_state hook
 * writes into a model file and the load_state hook reads back, and the
 * encoding the built-in rules give their step counts.
 */
#include "bpl_internal.h"

#include <string.h>

/* The built-in rules' state: a format byte, then a u64 little-endian count. */
#define COUNT_STATE_FORMAT 1

int bpl__count_state_save(uint64_t count, void *data, size_t capacity, size_t *size_out)
{
    *size_out = BPL__COUNT_STATE_SIZE;
    if (!data || capacity < BPL__COUNT_STATE_SIZE)
        return BPL_OK; /* the hook's contract: only the size when it does not fit */
    unsigned char *b = data;
    b[0] = COUNT_STATE_FORMAT;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(count >> (8 * i));
    return BPL_OK;
}

int bpl__count_state_load(const void *data, size_t size, uint64_t max, uint64_t *count_out)
{
    const unsigned char *b = data;
    if (size != BPL__COUNT_STATE_SIZE || b[0] != COUNT_STATE_FORMAT)
        return bpl__fail(BPL_ERR_FORMAT,
                             "the saved state is not a step count of format %d (%zu bytes, "
                             "format %d)",
                             COUNT_STATE_FORMAT, size, size ? b[0] : -1);
    uint64_t count = 0;
    for (int i = 7; i >= 0; i--)
        count = count << 8 | b[1 + i];
    if (count > max)
        return bpl__fail(BPL_ERR_FORMAT, "the saved step count %llu is beyond %llu",
                             (unsigned long long)count, (unsigned long long)max);
    *count_out = count;
    return BPL_OK;
}

void bpl__count_step(uint64_t *count)
{
    if (*count < BPL__MAX_RULE_STEPS)
        ++*count;
}

/* The hook's answer must be what it promised: a size within the limit,
 * and the same size when asked twice. */
static int check_size(const bpl_rule *rule, size_t size, size_t promised)
{
    if (size > BPL__MAX_STATE_BYTES)
        return bpl__fail(BPL_ERR_CALLBACK,
                         "rule '%s' save_state: a state of %zu bytes is beyond the %llu a "
                         "model file may hold",
                         rule->name, size, (unsigned long long)BPL__MAX_STATE_BYTES);
    if (promised != (size_t)-1 && size != promised)
        return bpl__fail(BPL_ERR_CALLBACK,
                         "rule '%s' save_state: said %zu bytes, then wrote %zu", rule->name,
                         promised, size);
    return BPL_OK;
}

int bpl__rule_save_state(const bpl_rule *rule, unsigned char **data_out, size_t *size_out)
{
    *data_out = NULL;
    *size_out = 0;
    if (!rule->vt.save_state)
        return BPL_OK;
    size_t size = 0;
    bpl_error_set(BPL_OK, "");
    int rc = bpl__hook_result(rule, "save_state", rule->vt.save_state(rule->self, NULL, 0,
                                                                      &size));
    if (rc == BPL_OK)
        rc = check_size(rule, size, (size_t)-1);
    if (rc != BPL_OK)
        return rc;
    unsigned char *data = bpl__malloc(size ? size : 1);
    if (!data)
        return bpl__fail(BPL_ERR_NOMEM, "rule '%s' save_state: out of memory", rule->name);
    size_t written = 0;
    rc = bpl__hook_result(rule, "save_state",
                          rule->vt.save_state(rule->self, data, size, &written));
    if (rc == BPL_OK)
        rc = check_size(rule, written, size);
    if (rc != BPL_OK) {
        bpl__free(data);
        return rc;
    }
    *data_out = data;
    *size_out = size;
    return BPL_OK;
}

int bpl__rule_load_state(bpl_rule *rule, bpl_net *net, const unsigned char *data, size_t size)
{
    if (!rule->vt.load_state)
        return bpl__fail(BPL_ERR_STATE,
                         "the saved net holds a state of rule '%s', which this rule has no "
                         "load_state hook to take",
                         rule->name);
    bpl_error_set(BPL_OK, "");
    bpl__callout previous = bpl__net_call_out(net, BPL__IN_ATTACH, "a rule's load_state hook");
    int rc = rule->vt.load_state(rule->self, net, data ? data : (const unsigned char *)"",
                                 size);
    bpl__net_return(net, previous);
    return bpl__hook_result(rule, "load_state", rc);
}
