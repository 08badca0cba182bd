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
 *                  an entry "\x01key=value" is an option (see request.h): log_max (bytes of
 *                  output logged), nofile (the task's soft RLIMIT_NOFILE), uid, gid, groups, cwd
 *                  (the tenant), cgroup=DIR (one per hierarchy), memory_max=BYTES, cpu_quota=PERCENT
 *              'K' kill:  i32 signal, sent to the task's whole process group
 *              'L' lease: no body; the id field is the end of the worker's ZooKeeper lease,
 *                  CLOCK_MONOTONIC nanoseconds (see SessionLease in the worker)
 *   event    = u64 task id, i32 kind, i32 value (native byte order, 16 bytes)
 *              'R' ready, first of all (id 0, value: protocol version, 4),
 *              'P' started (value: pid), 'F' could not start (value: errno; ETIME when
 *              the lease has ended), 'O' could not create its log (value: errno; EEXIST
 *              when something is already at the path), 'W' its log could not be written
 *              (value: errno; the task is killed, its 'X' follows), 'X' exited (value: wait status),
 *              'E' lease ended (id 0, value: how many task groups it killed),
 *              'M' the kernel killed a process of the task for memory (value 1; just before 'X')
 * Each task runs `/bin/sh -c command` as the leader of a new process group, stdin from
 * /dev/null, stdout and stderr a pipe this process relays into its log (created here, exclusively,
 * 0640; at most log_max bytes, then one marker line), default signal dispositions, no
 * descriptor of the worker's; with the options `uid`, `gid`, `groups` it runs as that user (its
 * supplementary groups set first), with `cwd` in that folder (see child_setup). When the leader
 * exits, whatever it left in its group is killed
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
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "csupport.h"
#include "request.h"

/* A task not yet reaped. Its output (stdout and stderr) comes through the pipe `out`, relayed here
 * into `log`: the task never holds the log's descriptor, and its output is counted. */
struct child {
    uint64_t id;
    pid_t pid;
    int out, log;        /* -1 once closed */
    uint64_t written;    /* bytes written to the log */
    uint64_t log_max;    /* 0: no cap */
    int dropping;        /* past log_max (the marker is written) or the log failed: output is dropped */
    char *cgroups[SPAWN_MAX_CGROUPS]; /* the task's cgroup directories (none without containment) */
    size_t ncgroups;
};
static struct child *children;
static size_t nchildren, capchildren;
struct cgroups { char *dirs[SPAWN_MAX_CGROUPS]; size_t n; unsigned tries; };
static struct cgroups *pending;
static size_t npending, cappending;
/* Whether tasks run without cgroups (the worker's containment is none): what they leave is
 * found only as this subreaper adopts it. */
static int uncontained;
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

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        if (w == 0) return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates the task's log: only a new regular file this process made, never what is already at the
 * path (a FIFO that would block the open, a symbolic link that would send output elsewhere, a file
 * planted there), 0640 whatever the umask. Returns the descriptor, or -1 with errno set. */
static int create_log(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
        close(fd);
        errno = EEXIST;
        return -1;
    }
    if (fchmod(fd, 0640) != 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

/* Writes output of task c to its log, up to its cap: past it one marker line, then nothing. A log
 * that cannot be written (a full disk) ends the task: the worker hears why ('W') before its exit. */
static void write_log(struct child *c, const char *p, size_t n) {
    if (c->dropping || n == 0) return;
    int rc = 0;
    if (c->log_max && c->written + n > c->log_max) {
        size_t room = (size_t)(c->log_max - c->written);
        rc = write_all(c->log, p, room);
        if (rc == 0) {
            char marker[160];
            int len = snprintf(marker, sizeof marker,
                               "\n[ds] log exceeds --max-log-size (%llu bytes); further output dropped\n",
                               (unsigned long long)c->log_max);
            rc = write_all(c->log, marker, (size_t)len);
            c->written += room;
            c->dropping = 1;
        }
    } else {
        rc = write_all(c->log, p, n);
        if (rc == 0) c->written += n;
    }
    if (rc != 0) {
        c->dropping = 1;
        send_event(c->id, 'W', rc);
        cgroup_kill(c->cgroups, c->ncgroups);
        kill(-c->pid, SIGKILL); /* not reaped yet: the group id is still its own */
    }
}

/* Relays what task c printed: `reads` reads at most (one per round keeps it fair among tasks),
 * fewer when the pipe is empty. Never blocks: the pipe is non-blocking. End of file closes it. */
static void relay(struct child *c, int reads) {
    static char buf[64 << 10];
    while (c->out >= 0 && reads-- > 0) {
        ssize_t n = read(c->out, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) { close(c->out); c->out = -1; return; }
        write_log(c, buf, (size_t)n);
    }
}

/* ---- The task's child: fork, set up, exec ---------------------------------------------------
 * Runs in the forked child, async-signal-safe calls only. On failure the step's errno goes
 * to `report` (close-on-exec: an exec that works closes it, unwritten) and the child exits. */
static void child_setup(const struct spawn_request *r, int out, int report) {
    /* (1) stdin from /dev/null, stdout and stderr to the output pipe (relayed into the log). */
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) ds_child_fail(report);
    /* (2) its cgroups (made and limited by the parent), then the tenant (groups, gid, uid, then
     * its folder), and the common tail: default signal dispositions and mask, setpgid(0,0), no
     * descriptor of the supervisor's, the task's descriptor limit (the worker's before it raised
     * its own: set last, when only 0, 1 and 2 count against it), exec /bin/sh -c. */
    gid_t groups[SPAWN_MAX_GROUPS];
    for (size_t i = 0; i < r->ngroups; i++) groups[i] = (gid_t)r->groups[i];
    struct ds_child_user user = {.has_user = r->has_user, .uid = (uid_t)r->uid, .gid = (gid_t)r->gid,
                                 .groups = groups, .ngroups = r->ngroups, .cwd = r->cwd,
                                 .cgroups = r->cgroups, .ncgroups = r->ncgroups, .nofile = r->nofile};
    ds_child_exec_shell(report, &user, r->command, r->env);
}

/* Starts the task's shell: 0 and its pid, or the errno of the step that failed. */
static int spawn_child(const struct spawn_request *r, int out, pid_t *pid) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return e;
    }
    if (child == 0) child_setup(r, out, report[1]);
    int e = ds_await_exec(report, child);
    if (e == 0) *pid = child;
    return e;
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

    struct child child = {.id = id, .out = -1, .log = -1, .log_max = request.log_max};
    for (size_t i = 0; i < request.ncgroups; i++)
        if (!(child.cgroups[child.ncgroups++] = strdup(request.cgroups[i]))) kill_all_and_exit(70);
    rc = cgroup_prepare(&request);
    if (rc != 0) {
        end_cgroups(child.cgroups, child.ncgroups);
        spawn_request_free(&request);
        send_event(id, 'F', rc);
        return;
    }
    int log = create_log(request.log_path);
    if (log < 0) {
        rc = errno;
        end_cgroups(child.cgroups, child.ncgroups);
        spawn_request_free(&request);
        send_event(id, 'O', rc);
        return;
    }
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        rc = errno;
        close(log);
        end_cgroups(child.cgroups, child.ncgroups);
        spawn_request_free(&request);
        send_event(id, 'F', rc);
        return;
    }
    pid_t pid;
    rc = spawn_child(&request, out[1], &pid);
    close(out[1]);
    spawn_request_free(&request);
    if (rc != 0) {
        close(out[0]);
        close(log);
        end_cgroups(child.cgroups, child.ncgroups);
        send_event(id, 'F', rc);
        return;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    if (nchildren == capchildren) {
        capchildren = capchildren ? capchildren * 2 : 64;
        children = realloc(children, capchildren * sizeof *children);
        if (!children) { kill(-pid, SIGKILL); kill_all_and_exit(70); }
    }
    uncontained = child.ncgroups == 0;
    child.pid = pid;
    child.out = out[0];
    child.log = log;
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
    /* Cgroups to remove as their processes go are looked at every 100 ms, the lease at its end. */
    int limit = npending > 0 ? 100 : 60000;
    if (nchildren == 0) return npending > 0 ? 100 : -1;
    uint64_t now = now_ns();
    if (now >= lease_end) return 0;
    uint64_t ms = (lease_end - now + 999999u) / 1000000u;
    return ms > (uint64_t)limit ? limit : (int)ms;
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
 * the kernel killed one of its processes for memory is read first, and sent as 'M' before 'X'. */
static void reap(void) {
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
        pid_t pid = info.si_pid;
        size_t i = 0;
        while (i < nchildren && children[i].pid != pid) i++;
        /* What the task printed before it ended is in the pipe: into the log before its exit is
         * reported, so the worker reads a whole log. A process that escaped the group and holds
         * the pipe gets EPIPE from now on. */
        int oom = 0;
        if (i < nchildren) {
            oom = cgroup_oom_killed(children[i].cgroups, children[i].ncgroups);
            kill_whole_task(i);
            /* Bounded: a process that escaped the group and writes without pause cannot hold
             * this loop; the pipe holds at most its capacity of what the task wrote. */
            relay(&children[i], 64);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (i < nchildren) {
            struct child done = children[i];
            children[i] = children[--nchildren];
            if (done.out >= 0) close(done.out);
            if (done.log >= 0) close(done.log);
            if (done.ncgroups == 0) kill_adopted();
            end_cgroups(done.cgroups, done.ncgroups);
            if (oom) send_event(done.id, 'M', 1);
            send_event(done.id, 'X', status);
        } else if (uncontained) {
            /* An adopted process died (killed above, or on its own): what it started in a session
             * of its own (`setsid sh -c 'setsid sleep &'`) is adopted now, and goes too. */
            kill_adopted();
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
    /* Two descriptors per running task (its output pipe and its log): the supervisor takes the
     * hard limit, whatever soft one the worker had when it started us. Each task gets back the
     * worker's first soft limit (the `nofile` option), set last in its child. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    fcntl(0, F_SETFD, FD_CLOEXEC);
    fcntl(1, F_SETFD, FD_CLOEXEC);
    send_event(0, 'R', 4);

    struct request_buffer input = {0};
    struct pollfd *fds = NULL;
    size_t capfds = 0;
    for (;;) {
        /* The worker's requests, signals, then the output pipe of every task. */
        if (capfds < nchildren + 2) {
            capfds = (nchildren + 2) * 2;
            fds = realloc(fds, capfds * sizeof *fds);
            if (!fds) kill_all_and_exit(70);
        }
        fds[0] = (struct pollfd){.fd = 0, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = sfd, .events = POLLIN};
        size_t watched = nchildren;
        for (size_t i = 0; i < watched; i++) fds[2 + i] = (struct pollfd){.fd = children[i].out, .events = POLLIN};
        int ready = poll(fds, 2 + watched, poll_timeout());
        if (ready < 0) {
            if (errno == EINTR) continue;
            kill_all_and_exit(70);
        }
        enforce_lease();
        /* One read per task per round, before any child is reaped (which reorders `children`). */
        for (size_t i = 0; i < watched; i++)
            if (fds[2 + i].revents && children[i].out == fds[2 + i].fd) relay(&children[i], 1);
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
