/* System calls Swift cannot reach directly (prctl is variadic in C, and Swift imports no variadic
 * function). One function per use, each returning 0 or -1 with errno set. */
#ifndef DS_CSUPPORT_H
#define DS_CSUPPORT_H

/* Makes the calling process a child subreaper: orphaned descendants are reparented to it. */
int ds_become_child_subreaper(void);

#include <stddef.h>
#include <sys/types.h>

/* Who a started program runs as: first it joins each cgroup directory in `cgroups` (writes 0 to
 * its cgroup.procs, while still the parent's user); with has_user, the supplementary groups, gid
 * and uid (set in that order); with cwd, the folder it starts in. */
struct ds_child_user {
    int has_user;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    const char *cwd; /* NULL: unchanged */
    char *const *cgroups;
    size_t ncgroups;
    /* The soft RLIMIT_NOFILE the program gets (0: unchanged), set after every descriptor of the
     * parent is closed: set earlier, the parent's descriptors would count against it. */
    unsigned long long nofile;
};

/* In a forked child, async-signal-safe: writes errno to `report` and exits 127. */
void ds_child_fail(int report);

/* In a forked child whose descriptors 0, 1, 2 are in place: becomes `user`, then the common
 * tail: default signal dispositions, an empty mask, a process group of its own, every
 * descriptor above 2 closed but `report` (close-on-exec), execve of /bin/sh -c command. Returns
 * only by ds_child_fail. */
void ds_child_exec_shell(int report, const struct ds_child_user *user, const char *command, char *const envp[]);

/* The parent's end of a child forked with the pipe `report` (close-on-exec): closes its write
 * end, then 0 once the child has exec'd (its process group set here too, so a kill sent at once
 * reaches it), or the errno the child reported (the child is then reaped). */
int ds_await_exec(int report[2], pid_t pid);

/* Starts `/bin/sh -c command` with `envp`, its descriptors 0, 1, 2 from stdin_fd, stdout_fd
 * (-1: /dev/null) and stderr_fd, as `user` (see ds_child_exec_shell). Returns the pid, or -errno
 * of the step that failed (the child is then reaped). Fork and exec, for what posix_spawn
 * cannot do (change the user). */
pid_t ds_spawn_shell_as(const char *command, char *const envp[], int stdin_fd, int stdout_fd, int stderr_fd,
                        const struct ds_child_user *user);

#endif
