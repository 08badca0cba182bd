#define _GNU_SOURCE
#include "csupport.h"

#include <sys/prctl.h>

int ds_become_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void ds_child_fail(int report) {
    int e = errno;
    while (write(report, &e, sizeof e) < 0 && errno == EINTR) {}
    _exit(127);
}

/* Writes "0" to dir/cgroup.procs: the caller joins the cgroup. Async-signal-safe. */
static int join_cgroup(const char *dir) {
    static const char file[] = "/cgroup.procs";
    char path[4096];
    size_t d = strlen(dir);
    if (d + sizeof file > sizeof path) { errno = ENAMETOOLONG; return -1; }
    memcpy(path, dir, d);
    memcpy(path + d, file, sizeof file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, "0", 1);
    int e = errno;
    close(fd);
    if (n != 1) { errno = n < 0 ? e : EIO; return -1; }
    return 0;
}

void ds_child_exec_shell(int report, const struct ds_child_user *u, const char *command, char *const envp[]) {
    for (size_t i = 0; i < u->ncgroups; i++) {
        if (join_cgroup(u->cgroups[i]) != 0) ds_child_fail(report);
    }
    if (u->has_user && (setgroups(u->ngroups, u->groups) != 0 || setgid(u->gid) != 0 || setuid(u->uid) != 0)) ds_child_fail(report);
    if (u->cwd && chdir(u->cwd) != 0) ds_child_fail(report);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setpgid(0, 0) != 0) ds_child_fail(report);
    for (int fd = 3; fd < report; fd++) close(fd);
    if (syscall(SYS_close_range, (unsigned)report + 1, ~0U, 0) != 0) {
        for (int fd = report + 1; fd < 65536; fd++) close(fd);
    }
    if (u->nofile > 0) {
        struct rlimit own;
        if (getrlimit(RLIMIT_NOFILE, &own) == 0 && u->nofile < own.rlim_cur) {
            struct rlimit lowered = {.rlim_cur = (rlim_t)u->nofile, .rlim_max = own.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &lowered) != 0) ds_child_fail(report);
        }
    }
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    execve("/bin/sh", argv, envp);
    ds_child_fail(report);
}

int ds_await_exec(int report[2], pid_t pid) {
    close(report[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(report[0]);
    if (n == (ssize_t)sizeof e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return e ? e : EIO;
    }
    /* The parent sets the group too, so that a kill sent before the child got to it reaches it. */
    setpgid(pid, pid);
    return 0;
}

pid_t ds_spawn_shell_as(const char *command, char *const envp[], int stdin_fd, int stdout_fd, int stderr_fd,
                        const struct ds_child_user *user) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return -e;
    }
    if (pid == 0) {
        int out = stdout_fd >= 0 ? stdout_fd : open("/dev/null", O_WRONLY);
        if (out < 0 || dup2(stdin_fd, 0) < 0 || dup2(out, 1) < 0 || dup2(stderr_fd, 2) < 0) ds_child_fail(report[1]);
        ds_child_exec_shell(report[1], user, command, envp);
    }
    int e = ds_await_exec(report, pid);
    return e ? -e : pid;
}
