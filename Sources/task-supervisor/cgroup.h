/*
 * The cgroups of one task (see main.c): made and limited before its fork, joined by its forked
 * child before exec (ds_child_exec_shell in CSupport), killed when the task ends (its main process exits, it is stopped or timed
 * out, the lease or the worker ends), then removed.
 */
#ifndef TASK_SUPERVISOR_CGROUP_H
#define TASK_SUPERVISOR_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

/* Makes each directory of r and writes the limits r asks for into whichever of them has the
 * controller's file (v2 memory.max / cpu.max, v1 memory.limit_in_bytes / cpu.cfs_quota_us).
 * 0, or an errno; EOPNOTSUPP when a limit is asked and no directory can hold it. */
int cgroup_prepare(const struct spawn_request *r);

/* Kills every process in the task's cgroups: cgroup.kill where the directory has one, else
 * freeze (v1 freezer), SIGKILL each pid in cgroup.procs, thaw, until it is empty. */
void cgroup_kill(char *const dirs[], size_t n);

/* Whether the kernel killed a process of these cgroups for memory (memory.events or
 * memory.oom_control "oom_kill N" above 0). */
int cgroup_oom_killed(char *const dirs[], size_t n);

/* Removes the directories (after cgroup_kill); 0 when all are gone, else try again later. */
int cgroup_remove(char *const dirs[], size_t n);

#endif
