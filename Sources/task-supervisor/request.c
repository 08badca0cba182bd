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

/* A decimal number of at most `max`, digits only; 0 when it is not one (0 itself is refused). */
static uint64_t parse_number(const char *s, uint64_t max) {
    uint64_t n = 0;
    if (*s == '\0') return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        uint64_t digit = (uint64_t)(*s - '0');
        if (n > (max - digit) / 10) return 0;
        n = n * 10 + digit;
    }
    return n;
}

/* One "\x01key=value" option into out; EINVAL for an unknown key or a bad value. */
static int parse_option(char *s, struct spawn_request *out) {
    s++; /* the 0x01 */
    if (strncmp(s, "cgroup=", 7) == 0) {
        if (s[7] != '/' || out->ncgroups == SPAWN_MAX_CGROUPS) return EINVAL;
        out->cgroups[out->ncgroups++] = s + 7;
    } else if (strncmp(s, "memory_max=", 11) == 0) {
        if ((out->memory_max = parse_number(s + 11, UINT64_MAX / 2)) == 0) return EINVAL;
    } else if (strncmp(s, "cpu_quota=", 10) == 0) {
        if ((out->cpu_quota = (uint32_t)parse_number(s + 10, 100000)) == 0) return EINVAL;
    } else {
        return EINVAL;
    }
    return 0;
}

int spawn_request_parse(char *p, char *end, struct spawn_request *out) {
    struct spawn_request options = {0};
    char *strings[2];
    size_t n = 0, nenv = 0, capenv = 0;
    char **env = NULL;
    if (p >= end || end[-1] != '\0') return EINVAL;
    while (p < end) {
        char *s = p;
        p += strlen(p) + 1;
        if (n < 2) { strings[n++] = s; continue; }
        if (*s == '\x01') {
            if (parse_option(s, &options) != 0) { free(env); return EINVAL; }
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
    if (n < 2) { free(env); return EINVAL; }
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
