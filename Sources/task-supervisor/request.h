/*
 * The requests ds-worker sends task-supervisor (the protocol is described in main.c): framing
 * and parsing only, without side effects, so that a fuzzer can drive them without the main loop.
 */
#ifndef TASK_SUPERVISOR_REQUEST_H
#define TASK_SUPERVISOR_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* The longest request (after its length word): eight times what exec accepts by default
 * (ARG_MAX, 2 MiB). A longer length is misuse, not a reason to allocate gigabytes. */
#define REQUEST_MAX_SIZE (16u << 20)
/* The input buffer's first size; it doubles up to twice the longest request. */
#ifndef REQUEST_BUFFER_INITIAL
#define REQUEST_BUFFER_INITIAL (1u << 16)
#endif

/* Bytes read from the worker and not yet taken as requests. Start with all zeros. */
struct request_buffer {
    unsigned char *bytes;
    size_t len, cap, at; /* bytes[at..<len] are pending */
};

/* One request. `body` .. `end` points into the buffer until the next request_buffer_room. */
struct request {
    unsigned char kind; /* 'S' spawn, 'K' kill or 'L' lease */
    uint64_t id;        /* 'L': the lease's end, CLOCK_MONOTONIC nanoseconds */
    int32_t signal;     /* 'K' */
    char *body, *end;   /* 'S': the NUL-terminated strings */
};

enum request_status { REQUEST_READY, REQUEST_INCOMPLETE, REQUEST_INVALID };

/* Where the next read may put up to *room bytes (add what was read to b->len); NULL when out of memory. */
unsigned char *request_buffer_room(struct request_buffer *b, size_t *room);

/* Takes the next whole request from b; REQUEST_INVALID for a length below 9 or above
 * REQUEST_MAX_SIZE, an unknown kind or a short kill. */
enum request_status request_next(struct request_buffer *b, struct request *out);

/* The most cgroup directories one task joins (one per hierarchy: v2, v1 memory, cpu, pids, freezer). */
#define SPAWN_MAX_CGROUPS 6

/* A spawn request's strings: log path, command, then VAR=value entries. An entry that begins
 * with the byte 0x01 is a supervisor option "\x01key=value", not an environment entry. */
struct spawn_request {
    char *log_path, *command;
    char **env; /* NULL-terminated; free with spawn_request_free */
    /* cgroup engineer: `cgroup=DIR` (repeatable, one per hierarchy: the task joins each),
     * `memory_max=BYTES`, `cpu_quota=PERCENT` of one core (0: not asked). */
    char *cgroups[SPAWN_MAX_CGROUPS];
    size_t ncgroups;
    uint64_t memory_max;
    uint32_t cpu_quota;
};

/* Splits a spawn body: 0, EINVAL when it is not NUL-terminated, lacks the command or has an
 * unknown or malformed option, or ENOMEM. */
int spawn_request_parse(char *body, char *end, struct spawn_request *out);
void spawn_request_free(struct spawn_request *s);

#endif
