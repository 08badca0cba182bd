/*
 * task-supervisor WORKER_PID
 *
 * Private helper of ds-worker: one per worker, started once, parent of every task the worker
 * runs. Starting each task from here costs one fork and one exec of /bin/sh, instead of
 * starting a supervisor process per task as well (which was a third of a no-op task's CPU).
 *
 * Requests arrive on standard input, events leave on standard output (pipes to the worker):
 *   request  = u32 length of the rest (9 to 16 MiB), u8 kind, u64 task id, then by kind
 *              'S' spawn: NUL-terminated strings: log path, command, then VAR=value entries;
 *                  an entry beginning with 0x01 is an option "\x01key=value": cgroup=DIR (one per
 *                  hierarchy), memory_max=BYTES, cpu_quota=PERCENT of one core (see request.h)
 *              'K' kill:  i32 signal, sent to the task's whole process group
 *              'L' lease: no body; the id field is the end of the worker's ZooKeeper lease,
 *                  CLOCK_MONOTONIC nanoseconds (see SessionLease in the worker)
 *   event    = u64 task id, i32 kind, i32 value (native byte order, 16 bytes)
 *              'R' ready, first of all (id 0, value: protocol version, 2),
 *              'P' started (value: pid), 'F' could not start (value: errno; ETIME when
 *              the lease has ended), 'X' exited (value: wait status),
 *              'E' lease ended (id 0, value: how many task groups it killed),
 *              'O' the kernel killed a process of the task for memory (value 1; just before 'X')
 * Each task runs `/bin/sh -c command` as the leader of a new process group, stdin from
 * /dev/null, stdout and stderr appended to its log, default signal dispositions, no
 * descriptor of the worker's. When the leader exits, whatever it left in its group is killed
 * before the leader is reaped: a task ends with its main process.
 * With cgroups (the worker's containment), the task runs in its own: made and limited before the
 * fork, joined by the child before exec, and every process in them is killed (cgroup.kill, or
 * freeze + kill + thaw) whenever the task's group is, then they are removed (cgroup.c). Without
 * them, what a finished task left is killed once this subreaper adopts it (kill_adopted).
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
#include <dirent.h>
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

#include "cgroup.h"
#include "request.h"

struct child {
    uint64_t id;
    pid_t pid;
    char *cgroups[SPAWN_MAX_CGROUPS]; /* the task's cgroup directories (none without containment) */
    size_t ncgroups;
};
static struct child *children;
static size_t nchildren, capchildren;
struct cgroups { char *dirs[SPAWN_MAX_CGROUPS]; size_t n; unsigned tries; };
static struct cgroups *pending;
static size_t npending, cappending;
/* The end of the worker's lease (CLOCK_MONOTONIC ns); 0 before the first. */
static uint64_t lease_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Every process of task i: its cgroups (also what left its process group), then its group. */
static void kill_whole_task(size_t i) {
    cgroup_kill(children[i].cgroups, children[i].ncgroups);
    kill(-children[i].pid, SIGKILL);
}

static void kill_all_and_exit(int status) {
    for (size_t i = 0; i < nchildren; i++) kill_whole_task(i);
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

/* ---- fork + exec: the child's setup, in the agreed order ------------------------------------ */

static const char *const shell_path = "/bin/sh";

/* Runs in the forked child (async-signal-safe calls only); returns only on failure, with errno. */
static int child_setup(const struct spawn_request *r, int log) {
    /* (1) cgroup: join the task's cgroups (made and limited by the parent) */
    int rc = cgroup_join(r->cgroups, r->ncgroups);
    if (rc != 0) return rc;
    /* (2) stdin /dev/null, stdout and stderr to the log */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0) return errno;
    if (dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) return errno;
    /* (3) user, groups, directory: none yet */
    /* common tail: default signal dispositions, empty mask, own process group, no other fd */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setpgid(0, 0) != 0) return errno;
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* the error pipe stays open until exec */
    char *argv[] = {(char *)shell_path, "-c", r->command, NULL};
    execve(shell_path, argv, r->env);
    return errno;
}

/* Forks and execs the task; its pid, or -errno when it could not start. */
static pid_t fork_task(const struct spawn_request *r, int log) {
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) { int e = errno; close(errpipe[0]); close(errpipe[1]); return -e; }
    if (pid == 0) {
        int err = child_setup(r, log);
        while (write(errpipe[1], &err, sizeof err) < 0 && errno == EINTR) {}
        _exit(127);
    }
    close(errpipe[1]);
    int err = 0;
    ssize_t n;
    while ((n = read(errpipe[0], &err, sizeof err)) < 0 && errno == EINTR) {}
    close(errpipe[0]);
    if (n == (ssize_t)sizeof err) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return -(err ? err : EIO);
    }
    return pid;
}

/* ---- tasks --------------------------------------------------------------------------------- */

static void free_dirs(char **dirs, size_t n) {
    for (size_t i = 0; i < n; i++) free(dirs[i]);
}

/* Kills what is left in a failed or finished task's cgroups and removes them (now or later). */
static void end_cgroups(char **dirs, size_t n) {
    if (n == 0) return;
    cgroup_kill(dirs, n);
    if (cgroup_remove(dirs, n) == 0) { free_dirs(dirs, n); return; }
    if (npending == cappending) {
        cappending = cappending ? cappending * 2 : 16;
        pending = realloc(pending, cappending * sizeof *pending);
        if (!pending) kill_all_and_exit(70);
    }
    struct cgroups *p = &pending[npending++];
    memcpy(p->dirs, dirs, n * sizeof *dirs);
    p->n = n;
    p->tries = 0;
}

/* Cgroups whose processes were still dying when their task ended: removed as they empty. */
static void retry_pending(void) {
    for (size_t i = 0; i < npending;) {
        struct cgroups *p = &pending[i];
        if (p->tries++ % 10 == 9) cgroup_kill(p->dirs, p->n);
        if (cgroup_remove(p->dirs, p->n) == 0 || p->tries > 600) {
            free_dirs(p->dirs, p->n);
            pending[i] = pending[--npending];
        } else {
            i++;
        }
    }
}

static void spawn_task(uint64_t id, char *body, char *end) {
    if (now_ns() >= lease_end) { send_event(id, 'F', ETIME); return; }
    struct spawn_request request;
    int rc = spawn_request_parse(body, end, &request);
    if (rc == ENOMEM) kill_all_and_exit(70);
    if (rc != 0) { send_event(id, 'F', rc); return; }

    struct child child = {.id = id};
    for (size_t i = 0; i < request.ncgroups; i++)
        if (!(child.cgroups[child.ncgroups++] = strdup(request.cgroups[i]))) kill_all_and_exit(70);
    rc = cgroup_prepare(&request);
    if (rc != 0) {
        end_cgroups(child.cgroups, child.ncgroups);
        spawn_request_free(&request);
        send_event(id, 'F', rc);
        return;
    }
    int log = open(request.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
        rc = errno;
        end_cgroups(child.cgroups, child.ncgroups);
        spawn_request_free(&request);
        send_event(id, 'F', rc);
        return;
    }
    pid_t pid = fork_task(&request, log);
    close(log);
    spawn_request_free(&request);
    if (pid < 0) { end_cgroups(child.cgroups, child.ncgroups); send_event(id, 'F', -pid); return; }
    if (nchildren == capchildren) {
        capchildren = capchildren ? capchildren * 2 : 64;
        children = realloc(children, capchildren * sizeof *children);
        if (!children) { kill(-pid, SIGKILL); kill_all_and_exit(70); }
    }
    child.pid = pid;
    children[nchildren++] = child;
    send_event(id, 'P', pid);
}

static void kill_task(uint64_t id, int32_t sig) {
    /* Only a child not yet reaped is signalled: its pid cannot have been reused. */
    for (size_t i = 0; i < nchildren; i++)
        if (children[i].id == id) {
            if (sig == SIGKILL) kill_whole_task(i);
            else kill(-children[i].pid, sig);
            return;
        }
}

/* Past the lease's end: every task group dies, and the worker hears how many. */
static void enforce_lease(void) {
    if (nchildren == 0 || now_ns() < lease_end) return;
    for (size_t i = 0; i < nchildren; i++) kill_whole_task(i);
    send_event(0, 'E', (int32_t)nchildren);
    /* Their exits are reported as they are reaped; until a new lease nothing starts. */
    lease_end = 0;
}

/* Milliseconds poll may sleep before the lease needs enforcing; -1 with no task to watch. */
static int poll_timeout(void) {
    if (npending > 0) return 100; /* cgroups to remove as their processes go */
    if (nchildren == 0) return -1;
    uint64_t now = now_ns();
    if (now >= lease_end) return 0;
    uint64_t ms = (lease_end - now + 999999u) / 1000000u;
    return ms > 60000 ? 60000 : (int)ms;
}

/* Without cgroups, what a finished task left running was adopted by this subreaper when its
 * parent died (`setsid sleep &`, a double fork): every child that is no task's main process is
 * killed. (A running task's orphans go too: there is no telling whose they are.) */
static void kill_adopted(void) {
    DIR *proc = opendir("/proc");
    if (!proc) return;
    pid_t me = getpid();
    struct dirent *e;
    while ((e = readdir(proc))) {
        pid_t pid = (pid_t)atol(e->d_name);
        if (pid <= 0) continue;
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (n <= 0) continue;
        stat[n] = '\0';
        char *close_paren = strrchr(stat, ')');
        int ppid = 0;
        char state;
        if (!close_paren || sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2 || ppid != me) continue;
        int is_task = 0;
        for (size_t i = 0; i < nchildren; i++) is_task |= children[i].pid == pid;
        if (!is_task) { kill(pid, SIGKILL); kill(-pid, SIGKILL); }
    }
    closedir(proc);
}

/* Reaps every child that has exited. A task's group and cgroups are killed before its leader is
 * reaped: until then the leader is a zombie whose pid (and so the group id) cannot be reused, so
 * the signal reaches only what the task left running (`sleep 300 &`), never a stranger. Whether
 * the kernel killed one of its processes for memory is read first, and sent as 'O' before 'X'. */
static void reap(void) {
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
        pid_t pid = info.si_pid;
        size_t i = 0;
        while (i < nchildren && children[i].pid != pid) i++;
        int oom = 0;
        if (i < nchildren) {
            oom = cgroup_oom_killed(children[i].cgroups, children[i].ncgroups);
            kill_whole_task(i);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (i < nchildren) {
            struct child done = children[i];
            children[i] = children[--nchildren];
            if (done.ncgroups == 0) kill_adopted();
            end_cgroups(done.cgroups, done.ncgroups);
            if (oom) send_event(done.id, 'O', 1);
            send_event(done.id, 'X', status);
        }
    }
    retry_pending();
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
        if (ready == 0 && npending > 0) reap();
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
