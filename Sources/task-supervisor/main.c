/*
 * task-supervisor WORKER_PID
 *
 * Private helper of ds-worker: one per worker, started once, parent of every task the worker
 * runs. Starting each task from here costs one fork and one exec of /bin/sh, instead of
 * starting a supervisor process per task as well (which was a third of a no-op task's CPU).
 *
 * Requests arrive on standard input, events leave on standard output (pipes to the worker):
 *   request  = u32 length of the rest (9 to 16 MiB), u8 kind, u64 task id, then by kind
 *              'S' spawn: NUL-terminated strings: log path, command, then VAR=value entries
 *              'K' kill:  i32 signal, sent to the task's whole process group
 *              'L' lease: no body; the id field is the end of the worker's ZooKeeper lease,
 *                  CLOCK_MONOTONIC nanoseconds (see SessionLease in the worker)
 *   event    = u64 task id, i32 kind, i32 value (native byte order, 16 bytes)
 *              'R' ready, first of all (id 0, value: protocol version, 2),
 *              'P' started (value: pid), 'F' could not start (value: errno; ETIME when
 *              the lease has ended), 'X' exited (value: wait status),
 *              'E' lease ended (id 0, value: how many task groups it killed)
 * Each task runs `/bin/sh -c command` as the leader of a new process group, stdin from
 * /dev/null, stdout and stderr appended to its log, default signal dispositions, no
 * descriptor of the worker's; with the options `uid`, `gid`, `groups` it runs as that user (its
 * supplementary groups set first), with `cwd` in that folder (see child_setup). A spawn entry
 * that begins with the byte 0x01 is such an option ("\x01key=value"), not an environment entry. When the leader exits, whatever it left in its group is killed
 * before the leader is reaped: a task ends with its main process.
 *
 * When the worker dies, even by SIGKILL, the kernel sends this process SIGTERM
 * (PR_SET_PDEATHSIG, armed for the worker's thread that started it, which lives as long as the
 * worker), and standard input reaches end of file: either way every task group still running is
 * killed with SIGKILL, so no task runs on beside the attempt that failover starts elsewhere.
 *
 * The lease is a watchdog: tasks run only while the worker holds a live ZooKeeper session.
 * No task starts before the first lease or after it ends, and when it ends every task group
 * is killed here, without the worker: a worker frozen by SIGSTOP, starved of CPU or cut off
 * from ZooKeeper cannot let a task run on beside the attempt that failover starts elsewhere
 * once its session expires.
 * Exit status: 0 after end of input, 137 after a signal, 64 on misuse, 70 on a system error.
 * Framing and parsing of requests live in request.c, where tests and fuzzers can reach them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "csupport.h"
#include "request.h"

struct child { uint64_t id; pid_t pid; };
static struct child *children;
static size_t nchildren, capchildren;
/* The end of the worker's lease (CLOCK_MONOTONIC ns); 0 before the first. */
static uint64_t lease_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void kill_all_and_exit(int status) {
    for (size_t i = 0; i < nchildren; i++) kill(-children[i].pid, SIGKILL);
    _exit(status);
}

static void send_event(uint64_t id, int32_t kind, int32_t value) {
    unsigned char buf[16];
    memcpy(buf, &id, 8);
    memcpy(buf + 8, &kind, 4);
    memcpy(buf + 12, &value, 4);
    size_t done = 0;
    while (done < sizeof buf) {
        ssize_t n = write(1, buf + done, sizeof buf - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) kill_all_and_exit(70); /* the worker is gone */
        done += (size_t)n;
    }
}

/* ---- The task's child: fork, set up, exec ---------------------------------------------------
 * Runs in the forked child, async-signal-safe calls only. On failure the step's errno goes
 * to `report` (close-on-exec: an exec that works closes it, unwritten) and the child exits. */
static void child_setup(const struct spawn_request *r, int log, int report) {
    /* (1) cgroup and limits: none yet. */
    /* (2) stdin from /dev/null, stdout and stderr to the log. */
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) ds_child_fail(report);
    /* (3) the tenant (groups, gid, uid, then its folder), and the common tail: default signal
     * dispositions and mask, setpgid(0,0), no descriptor of the supervisor's, exec /bin/sh -c. */
    gid_t groups[SPAWN_MAX_GROUPS];
    for (size_t i = 0; i < r->ngroups; i++) groups[i] = (gid_t)r->groups[i];
    struct ds_child_user user = {.has_user = r->has_user, .uid = (uid_t)r->uid, .gid = (gid_t)r->gid,
                                 .groups = groups, .ngroups = r->ngroups, .cwd = r->cwd};
    ds_child_exec_shell(report, &user, r->command, r->env);
}

/* Starts the task's shell: 0 and its pid, or the errno of the step that failed. */
static int spawn_child(const struct spawn_request *r, int log, pid_t *pid) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return e;
    }
    if (child == 0) child_setup(r, log, report[1]);
    int e = ds_await_exec(report, child);
    if (e == 0) *pid = child;
    return e;
}

static void spawn_task(uint64_t id, char *body, char *end) {
    if (now_ns() >= lease_end) { send_event(id, 'F', ETIME); return; }
    struct spawn_request request;
    int rc = spawn_request_parse(body, end, &request);
    if (rc == ENOMEM) kill_all_and_exit(70);
    if (rc != 0) { send_event(id, 'F', rc); return; }

    int log = open(request.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) { send_event(id, 'F', errno); spawn_request_free(&request); return; }
    pid_t pid;
    rc = spawn_child(&request, log, &pid);
    close(log);
    spawn_request_free(&request);
    if (rc != 0) { send_event(id, 'F', rc); return; }
    if (nchildren == capchildren) {
        capchildren = capchildren ? capchildren * 2 : 64;
        children = realloc(children, capchildren * sizeof *children);
        if (!children) { kill(-pid, SIGKILL); kill_all_and_exit(70); }
    }
    children[nchildren++] = (struct child){id, pid};
    send_event(id, 'P', pid);
}

static void kill_task(uint64_t id, int32_t sig) {
    /* Only a child not yet reaped is signalled: its pid cannot have been reused. */
    for (size_t i = 0; i < nchildren; i++)
        if (children[i].id == id) { kill(-children[i].pid, sig); return; }
}

/* Past the lease's end: every task group dies, and the worker hears how many. */
static void enforce_lease(void) {
    if (nchildren == 0 || now_ns() < lease_end) return;
    for (size_t i = 0; i < nchildren; i++) kill(-children[i].pid, SIGKILL);
    send_event(0, 'E', (int32_t)nchildren);
    /* Their exits are reported as they are reaped; until a new lease nothing starts. */
    lease_end = 0;
}

/* Milliseconds poll may sleep before the lease needs enforcing; -1 with no task to watch. */
static int poll_timeout(void) {
    if (nchildren == 0) return -1;
    uint64_t now = now_ns();
    if (now >= lease_end) return 0;
    uint64_t ms = (lease_end - now + 999999u) / 1000000u;
    return ms > 60000 ? 60000 : (int)ms;
}

/* Reaps every child that has exited. A task's group is killed before its leader is reaped: until
 * then the leader is a zombie whose pid (and so the group id) cannot be reused, so the signal
 * reaches only what the task left running in its group (`sleep 300 &`), never a stranger. */
static void reap(void) {
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
        pid_t pid = info.si_pid;
        size_t i = 0;
        while (i < nchildren && children[i].pid != pid) i++;
        if (i < nchildren) kill(-pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (i < nchildren) {
            uint64_t id = children[i].id;
            children[i] = children[--nchildren];
            send_event(id, 'X', status);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: task-supervisor WORKER_PID (started by ds-worker, not by hand)\n");
        return 64;
    }
    pid_t worker = (pid_t)atol(argv[1]);
    /* The worker's own descriptors (its ZooKeeper socket among them) must not reach tasks. */
    if (close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
    }
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    sigprocmask(SIG_BLOCK, &handled, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) { perror("task-supervisor: signalfd"); return 70; }
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) { perror("task-supervisor: prctl"); return 70; }
    /* Processes a task leaves behind (its shell exited first) become ours, not init's: reap()
     * collects them, and they stay within reach of this worker. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) { perror("task-supervisor: prctl"); return 70; }
    if (getppid() != worker) return 137; /* the worker died before we could watch it */
    fcntl(0, F_SETFD, FD_CLOEXEC);
    fcntl(1, F_SETFD, FD_CLOEXEC);
    send_event(0, 'R', 2);

    struct request_buffer input = {0};
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    for (;;) {
        int ready = poll(fds, 2, poll_timeout());
        if (ready < 0) {
            if (errno == EINTR) continue;
            kill_all_and_exit(70);
        }
        enforce_lease();
        if (fds[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo != SIGCHLD) kill_all_and_exit(137);
            }
            reap();
        }
        if (fds[0].revents) {
            size_t room;
            unsigned char *into = request_buffer_room(&input, &room);
            if (!into) kill_all_and_exit(70);
            ssize_t n = read(0, into, room);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) kill_all_and_exit(0); /* the worker closed its end or died */
            input.len += (size_t)n;
            struct request request;
            enum request_status status;
            while ((status = request_next(&input, &request)) == REQUEST_READY) {
                if (request.kind == 'S') spawn_task(request.id, request.body, request.end);
                else if (request.kind == 'L') lease_end = request.id;
                else kill_task(request.id, request.signal);
            }
            if (status == REQUEST_INVALID) kill_all_and_exit(64);
        }
    }
}
