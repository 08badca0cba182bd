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

/* The most supplementary groups a `groups` option may list. */
#define SPAWN_MAX_GROUPS 256
/* The most cgroup directories one task joins (one per hierarchy: v2, v1 memory, cpu, pids, freezer). */
#define SPAWN_MAX_CGROUPS 6

/* A spawn request's strings: log path, command, then VAR=value entries; an entry that begins with
 * the byte 0x01 is an option "\x01key=value" of the supervisor, not an environment entry. Every
 * option but `cgroup` may be given once. */
struct spawn_request {
    char *log_path, *command;
    char **env; /* NULL-terminated; free with spawn_request_free */
    /* Output. log_max: bytes of output written to the log (0: no cap); past it one marker
     * line, and the rest is read and dropped. nofile: the task's soft RLIMIT_NOFILE (0: this
     * process's own), the worker's before it raised its own. */
    uint64_t log_max, nofile;
    /* Tenant: `uid`, `gid` (decimal), `groups` (comma-separated gids, may be empty), `cwd` (an
     * absolute path). has_user is set when uid is given: uid, gid and groups then must all be
     * given, and the child drops to them before exec. */
    int has_user;
    unsigned uid, gid;
    size_t ngroups;
    unsigned groups[SPAWN_MAX_GROUPS];
    char *cwd; /* NULL: the supervisor's */
    /* Containment: `cgroup=DIR` (repeatable, one per hierarchy: the task joins each),
     * `memory_max=BYTES`, `cpu_quota=PERCENT` of one core (0: not asked). */
    char *cgroups[SPAWN_MAX_CGROUPS];
    size_t ncgroups;
    uint64_t memory_max;
    uint32_t cpu_quota;
};

/* Splits a spawn body: 0, EINVAL when it is not NUL-terminated, lacks the command or holds an
 * option that is unknown, repeated or malformed, or ENOMEM. */
int spawn_request_parse(char *body, char *end, struct spawn_request *out);
void spawn_request_free(struct spawn_request *s);

#endif
