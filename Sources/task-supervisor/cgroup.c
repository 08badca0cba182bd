#define _GNU_SOURCE
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes s into dir/file; 0 or an errno. Async-signal-safe (the child uses it). */
static int write_file(const char *dir, const char *file, const char *s) {
    char path[4096];
    size_t d = strlen(dir), f = strlen(file), n = strlen(s);
    if (d + f + 2 > sizeof path) return ENAMETOOLONG;
    memcpy(path, dir, d);
    path[d] = '/';
    memcpy(path + d + 1, file, f + 1);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = write(fd, s, n) == (ssize_t)n ? 0 : errno;
    close(fd);
    return rc;
}

static int has_file(const char *dir, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

int cgroup_prepare(const struct spawn_request *r) {
    int memory_done = 0, cpu_done = 0;
    char value[64];
    for (size_t i = 0; i < r->ncgroups; i++) {
        const char *dir = r->cgroups[i];
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return errno;
        int rc = 0;
        if (r->memory_max) {
            snprintf(value, sizeof value, "%llu", (unsigned long long)r->memory_max);
            if (has_file(dir, "memory.max")) {
                if ((rc = write_file(dir, "memory.max", value)) == 0) memory_done = 1;
                if (rc == 0 && has_file(dir, "memory.swap.max")) rc = write_file(dir, "memory.swap.max", "0");
            } else if (has_file(dir, "memory.limit_in_bytes")) {
                if ((rc = write_file(dir, "memory.limit_in_bytes", value)) == 0) memory_done = 1;
                /* No escape into swap: memory and swap together are held to the same bound. */
                if (rc == 0 && has_file(dir, "memory.memsw.limit_in_bytes")) rc = write_file(dir, "memory.memsw.limit_in_bytes", value);
            }
        }
        if (rc == 0 && r->cpu_quota) {
            /* percent of one core per 100 ms period: 150 -> 150000 us of CPU each 100000 us */
            snprintf(value, sizeof value, "%u", r->cpu_quota * 1000u);
            if (has_file(dir, "cpu.max")) {
                snprintf(value, sizeof value, "%u 100000", r->cpu_quota * 1000u);
                if ((rc = write_file(dir, "cpu.max", value)) == 0) cpu_done = 1;
            } else if (has_file(dir, "cpu.cfs_quota_us")) {
                if ((rc = write_file(dir, "cpu.cfs_period_us", "100000")) == 0 &&
                    (rc = write_file(dir, "cpu.cfs_quota_us", value)) == 0) cpu_done = 1;
            }
        }
        if (rc != 0) return rc;
    }
    if ((r->memory_max && !memory_done) || (r->cpu_quota && !cpu_done)) return EOPNOTSUPP;
    return 0;
}

/* SIGKILLs each pid listed in dir/cgroup.procs; how many it listed. */
static int kill_listed(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    int count = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        if (pid > 0) kill((pid_t)pid, SIGKILL);
        count++;
    }
    fclose(f);
    return count;
}

void cgroup_kill(char *const dirs[], size_t n) {
    for (size_t i = 0; i < n; i++)
        if (has_file(dirs[i], "cgroup.kill")) { write_file(dirs[i], "cgroup.kill", "1"); return; }
    /* No cgroup.kill: a v1 freezer stops forks between reading the list and killing it. */
    for (size_t i = 0; i < n; i++) {
        int frozen = has_file(dirs[i], "freezer.state") && write_file(dirs[i], "freezer.state", "FROZEN") == 0;
        for (int round = 0; round < 100 && kill_listed(dirs[i]) > 0; round++) {
            if (frozen) write_file(dirs[i], "freezer.state", "THAWED"); /* a frozen process cannot die */
            usleep(1000);
            if (frozen) write_file(dirs[i], "freezer.state", "FROZEN");
        }
        if (frozen) write_file(dirs[i], "freezer.state", "THAWED");
    }
}

int cgroup_oom_killed(char *const dirs[], size_t n) {
    static const char *files[] = {"memory.events", "memory.oom_control"};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < 2; k++) {
            char path[4096], line[256];
            snprintf(path, sizeof path, "%s/%s", dirs[i], files[k]);
            FILE *f = fopen(path, "re");
            if (!f) continue;
            long count = 0;
            while (fgets(line, sizeof line, f))
                if (sscanf(line, "oom_kill %ld", &count) == 1 && count > 0) break;
            fclose(f);
            if (count > 0) return 1;
        }
    }
    return 0;
}

int cgroup_remove(char *const dirs[], size_t n) {
    int left = 0;
    for (size_t i = 0; i < n; i++)
        if (dirs[i] && rmdir(dirs[i]) != 0 && errno != ENOENT) left = 1;
    return left;
}
