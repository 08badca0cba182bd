/*
 * libFuzzer target `supervisor-request`: the bytes after the first are what ds-worker writes to
 * task-supervisor's standard input; the first byte seeds how reads split them.
 *
 * Properties: framing and parsing never read or write outside the buffer (AddressSanitizer) or
 * leak; the buffer stays below twice the longest request; the requests taken, and where the
 * stream turns invalid, do not depend on how reads split it (whole reads against reads of
 * 1 to 64 bytes); a parsed spawn's strings and environment lie in its body, NUL-terminated.
 * Built with a small REQUEST_BUFFER_INITIAL so that short inputs make the buffer grow.
 */
#include "request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(condition, ...)                                                   \
    do {                                                                          \
        if (!(condition)) {                                                       \
            fprintf(stderr, "property failed: %s: ", #condition);                 \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* What one request amounted to, to compare two ways of reading the same stream. */
struct taken { unsigned char kind; uint64_t id; int32_t signal; size_t size; uint64_t hash; int spawn_rc; size_t nenv; };
struct log { struct taken *items; size_t n, cap; int invalid; };

static uint64_t fnv1a(const char *p, const char *end) {
    uint64_t h = 1469598103934665603u;
    for (; p < end; p++) h = (h ^ (unsigned char)*p) * 1099511628211u;
    return h;
}

static int same(const struct taken *a, const struct taken *b) {
    return a->kind == b->kind && a->id == b->id && a->signal == b->signal && a->size == b->size && a->hash == b->hash &&
           a->spawn_rc == b->spawn_rc && a->nenv == b->nenv;
}

static int inside(const char *s, const struct request *r) { return s >= r->body && s < r->end; }

static void record(struct log *log, const struct request *r) {
    struct taken t = {.kind = r->kind, .id = r->id, .signal = r->signal, .size = (size_t)(r->end - r->body),
                      .hash = fnv1a(r->body, r->end), .spawn_rc = -1};
    REQUIRE(r->kind == 'S' || r->kind == 'K' || r->kind == 'L', "kind %d", r->kind);
    REQUIRE(r->body <= r->end && (size_t)(r->end - r->body) <= REQUEST_MAX_SIZE, "body of %td bytes", r->end - r->body);
    if (r->kind == 'S') {
        struct spawn_request s;
        t.spawn_rc = spawn_request_parse(r->body, r->end, &s);
        if (t.spawn_rc == 0) {
            REQUIRE(inside(s.log_path, r) && inside(s.command, r), "strings outside the body");
            REQUIRE(s.log_path + strlen(s.log_path) < s.command, "log path runs into the command");
            for (char **e = s.env; *e; e++, t.nenv++) {
                REQUIRE(inside(*e, r) && *e + strlen(*e) < r->end, "environment entry %zu outside the body", t.nenv);
            }
            spawn_request_free(&s);
        } else {
            REQUIRE(t.spawn_rc == EINVAL, "spawn_request_parse gave %d", t.spawn_rc);
        }
    }
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 16;
        log->items = realloc(log->items, log->cap * sizeof *log->items);
        if (!log->items) abort();
    }
    log->items[log->n++] = t;
}

/* Feeds `stream` through a request_buffer as the main loop does: reads as large as the room
 * allows, or with a seed, of 1 to 64 bytes. */
static void read_stream(const uint8_t *stream, size_t size, unsigned seed, struct log *log) {
    struct request_buffer b = {0};
    size_t fed = 0;
    while (fed < size && !log->invalid) {
        size_t room;
        unsigned char *into = request_buffer_room(&b, &room);
        REQUIRE(into != NULL, "out of memory");
        REQUIRE(b.cap <= REQUEST_BUFFER_INITIAL + 2 * (4 + (size_t)REQUEST_MAX_SIZE), "buffer of %zu bytes", b.cap);
        size_t n = size - fed < room ? size - fed : room;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t limit = 1 + (seed >> 16) % 64;
            if (n > limit) n = limit;
        }
        memcpy(into, stream + fed, n);
        b.len += n;
        fed += n;
        struct request r;
        enum request_status status;
        while ((status = request_next(&b, &r)) == REQUEST_READY) record(log, &r);
        if (status == REQUEST_INVALID) log->invalid = 1;
        REQUIRE(b.at <= b.len && b.len <= b.cap, "at %zu len %zu cap %zu", b.at, b.len, b.cap);
    }
    free(b.bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    struct log whole = {0}, pieces = {0};
    read_stream(data + 1, size - 1, 0, &whole);
    read_stream(data + 1, size - 1, data[0] | 1u, &pieces);
    REQUIRE(whole.n == pieces.n && whole.invalid == pieces.invalid, "whole reads took %zu requests%s, short reads %zu%s",
            whole.n, whole.invalid ? " then an invalid one" : "", pieces.n, pieces.invalid ? " then an invalid one" : "");
    for (size_t i = 0; i < whole.n; i++) {
        REQUIRE(same(&whole.items[i], &pieces.items[i]), "request %zu differs", i);
    }
    free(whole.items);
    free(pieces.items);
    return 0;
}
