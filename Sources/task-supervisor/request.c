#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

unsigned char *request_buffer_room(struct request_buffer *b, size_t *room) {
    if (b->at > 0) {
        memmove(b->bytes, b->bytes + b->at, b->len - b->at);
        b->len -= b->at;
        b->at = 0;
    }
    if (b->len == b->cap) {
        /* Only a request not yet whole is pending, so this stays below 2 * (4 + REQUEST_MAX_SIZE). */
        size_t cap = b->cap ? b->cap * 2 : REQUEST_BUFFER_INITIAL;
        unsigned char *bytes = realloc(b->bytes, cap);
        if (!bytes) return NULL;
        b->bytes = bytes;
        b->cap = cap;
    }
    *room = b->cap - b->len;
    return b->bytes + b->len;
}

enum request_status request_next(struct request_buffer *b, struct request *out) {
    size_t pending = b->len - b->at;
    if (pending < 4) return REQUEST_INCOMPLETE;
    uint32_t size;
    memcpy(&size, b->bytes + b->at, 4);
    if (size < 9 || size > REQUEST_MAX_SIZE) return REQUEST_INVALID;
    if (pending - 4 < size) return REQUEST_INCOMPLETE;
    unsigned char *msg = b->bytes + b->at + 4;
    out->kind = msg[0];
    memcpy(&out->id, msg + 1, 8);
    out->signal = 0;
    out->body = (char *)msg + 9;
    out->end = (char *)msg + size;
    if (out->kind == 'K') {
        if (size < 13) return REQUEST_INVALID;
        memcpy(&out->signal, msg + 9, 4);
    } else if (out->kind != 'S' && out->kind != 'L') {
        return REQUEST_INVALID;
    }
    b->at += 4 + (size_t)size;
    return REQUEST_READY;
}

/* A decimal number of 1 to 19 digits (no sign, no spaces), or -1. */
static int parse_u64(const char *s, uint64_t *out) {
    size_t len = strlen(s);
    if (len == 0 || len > 19) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A decimal id below 2^32 - 1 (which is -1, "unchanged", to setuid and friends), up to `stop`. */
static int parse_id(const char *s, const char *stop, unsigned *out) {
    if (s == stop) return EINVAL;
    unsigned long long v = 0;
    for (; s < stop; s++) {
        if (*s < '0' || *s > '9') return EINVAL;
        v = v * 10 + (unsigned)(*s - '0');
        if (v >= 0xffffffffull) return EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

enum option_key { OPT_UID, OPT_GID, OPT_GROUPS, OPT_CWD, OPT_LOG_MAX, OPT_NOFILE, OPT_CGROUP, OPT_MEMORY_MAX, OPT_CPU_QUOTA, OPT_COUNT };

/* One option "\x01key=value" into `out`; `seen` marks the keys met so far (each at most once,
 * but `cgroup`, one per hierarchy). */
static int parse_option(const char *s, struct spawn_request *out, unsigned *seen) {
    static const char *const keys[OPT_COUNT] = {"uid", "gid", "groups", "cwd", "log_max", "nofile", "cgroup", "memory_max", "cpu_quota"};
    const char *eq = strchr(s, '=');
    if (!eq) return EINVAL;
    size_t k = 0, len = (size_t)(eq - s);
    while (k < OPT_COUNT && !(strlen(keys[k]) == len && memcmp(s, keys[k], len) == 0)) k++;
    if (k == OPT_COUNT || (k != OPT_CGROUP && (*seen & (1u << k)))) return EINVAL;
    *seen |= 1u << k;
    const char *v = eq + 1, *vend = v + strlen(v);
    uint64_t n = 0;
    switch ((enum option_key)k) {
    case OPT_UID: out->has_user = 1; return parse_id(v, vend, &out->uid);
    case OPT_GID: return parse_id(v, vend, &out->gid);
    case OPT_GROUPS:
        out->ngroups = 0;
        while (v < vend) {
            const char *comma = memchr(v, ',', (size_t)(vend - v));
            const char *stop = comma ? comma : vend;
            if (out->ngroups == SPAWN_MAX_GROUPS) return EINVAL;
            if (parse_id(v, stop, &out->groups[out->ngroups++]) != 0) return EINVAL;
            v = comma ? comma + 1 : vend;
            if (comma && v == vend) return EINVAL;
        }
        return 0;
    case OPT_CWD:
        if (*v != '/') return EINVAL;
        out->cwd = (char *)v;
        return 0;
    case OPT_LOG_MAX: return parse_u64(v, &out->log_max) == 0 ? 0 : EINVAL;
    case OPT_NOFILE: return parse_u64(v, &out->nofile) == 0 ? 0 : EINVAL;
    case OPT_CGROUP:
        if (*v != '/' || out->ncgroups == SPAWN_MAX_CGROUPS) return EINVAL;
        out->cgroups[out->ncgroups++] = (char *)v;
        return 0;
    case OPT_MEMORY_MAX:
        if (parse_u64(v, &n) != 0 || n == 0 || n > UINT64_MAX / 2) return EINVAL;
        out->memory_max = n;
        return 0;
    case OPT_CPU_QUOTA:
        if (parse_u64(v, &n) != 0 || n == 0 || n > 100000) return EINVAL;
        out->cpu_quota = (uint32_t)n;
        return 0;
    default:
        return EINVAL;
    }
}

int spawn_request_parse(char *p, char *end, struct spawn_request *out) {
    struct spawn_request options = {0};
    unsigned seen = 0;
    char *strings[2];
    size_t n = 0, nenv = 0, capenv = 0;
    char **env = NULL;
    if (p >= end || end[-1] != '\0') return EINVAL;
    while (p < end) {
        char *s = p;
        p += strlen(p) + 1;
        if (n < 2) { strings[n++] = s; continue; }
        if (*s == '\x01') {
            if (parse_option(s + 1, &options, &seen) != 0) { free(env); return EINVAL; }
            continue;
        }
        if (nenv + 2 > capenv) {
            capenv = capenv ? capenv * 2 : 64;
            char **grown = realloc(env, capenv * sizeof *env);
            if (!grown) { free(env); return ENOMEM; }
            env = grown;
        }
        env[nenv++] = s;
    }
    /* A user is all three of uid, gid and groups, or none of them. */
    unsigned user = (1u << OPT_UID) | (1u << OPT_GID) | (1u << OPT_GROUPS);
    if (n < 2 || ((seen & user) != 0 && (seen & user) != user)) { free(env); return EINVAL; }
    if (!env && !(env = malloc(sizeof *env))) return ENOMEM;
    env[nenv] = NULL;
    options.log_path = strings[0];
    options.command = strings[1];
    options.env = env;
    *out = options;
    return 0;
}

void spawn_request_free(struct spawn_request *s) {
    free(s->env);
    s->env = NULL;
}
