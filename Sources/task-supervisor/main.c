/*
 * task-supervisor WORKER_PID PROGRAM [ARG...]
 *
 * Private helper of ds-worker, one per running task. It leads the task's process group and
 * runs PROGRAM in it. When the worker dies, even by SIGKILL, the kernel sends this process
 * SIGTERM (PR_SET_PDEATHSIG), and it kills the whole group: no task runs on beside the attempt
 * that failover starts elsewhere. PR_SET_PDEATHSIG is not inherited by the task's own
 * children, which is why this process stays between them and the worker.
 * Exit status: PROGRAM's, or 128 + the signal that ended it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void kill_group(int sig) {
    (void)sig;
    kill(0, SIGKILL);
    _exit(137);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: task-supervisor WORKER_PID PROGRAM [ARG...]\n");
        return 64;
    }
    pid_t worker = (pid_t)atol(argv[1]);
    /* The worker's own descriptors (its ZooKeeper socket among them) must not reach the task. */
    if (close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
    }
    signal(SIGTERM, kill_group);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        perror("task-supervisor: prctl");
        return 70;
    }
    if (getppid() != worker) kill_group(0); /* the worker died before we could watch it */

    pid_t child = fork();
    if (child < 0) {
        perror("task-supervisor: fork");
        return 70;
    }
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        execv(argv[2], argv + 2);
        perror("task-supervisor: exec");
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return 70;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
