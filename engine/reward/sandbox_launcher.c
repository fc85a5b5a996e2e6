/*
 * engine/reward/sandbox_launcher.c — rlvr-sandbox: the tiny launcher between the reward
 * host and an untrusted program. The host spawns it (through libuv, detached: its own
 * session and process group) with the program's stdin/stdout/stderr on fds 0-2 and a
 * report pipe on fd 3. It:
 *   1. dies with its parent (PR_SET_PDEATHSIG);
 *   2. enters new PID, network, IPC, UTS and mount namespaces when allowed (as root
 *      directly, else inside a new user namespace), so the program has no network and
 *      every process it starts dies with the namespace's init;
 *   3. forks the namespace init ("reaper"), which mounts a fresh /proc and small tmpfs
 *      over /tmp, /var/tmp and /dev/shm, forks the program and reaps until it exits;
 *   4. the program gets: the work dir as cwd, rlimits (CPU, AS, FSIZE, NOFILE, NPROC,
 *      CORE=0), closed descriptors, an unprivileged uid/gid of its own when we are root
 *      (--uid; RLIMIT_NPROC is not enforced for root and counts per uid, so each
 *      concurrent run gets a distinct uid and a fork bomb in one cannot starve another),
 *      no-new-privileges and a minimal environment.
 * Report lines on fd 3: "iso=<what was achieved>", then "exit=N", "signal=N" or
 * "error=<message>".
 *
 * usage: rlvr-sandbox --dir D --uid UID --cpu SEC --mem BYTES --fsize BYTES --nproc N --nofile N
 *                     -- PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPORT_FD 3

static void report(const char *fmt, const char *a, long v) {
    char line[512];
    int n = a ? snprintf(line, sizeof line, fmt, a) : snprintf(line, sizeof line, fmt, v);
    if (n > 0) {
        ssize_t w = write(REPORT_FD, line, (size_t)n < sizeof line ? (size_t)n : sizeof line);
        (void)w;
    }
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void set_limit(int res, unsigned long long soft, unsigned long long hard) {
    struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
    setrlimit(res, &rl);
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    unsigned long long uid = 65534, cpu = 10, mem = 1ull << 30, fsize = 16ull << 20, nproc = 32,
                       nofile = 64;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (i + 1 >= argc) break;
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--dir")) dir = v;
        else if (!strcmp(k, "--uid")) uid = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--cpu")) cpu = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--mem")) mem = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--fsize")) fsize = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--nproc")) nproc = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--nofile")) nofile = strtoull(v, NULL, 10);
    }
    if (!dir || i >= argc) {
        report("error=%s\n", "rlvr-sandbox: usage: --dir D [limits] -- PROGRAM [ARGS]", 0);
        return 2;
    }
    char **prog = argv + i;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 1;
    signal(SIGPIPE, SIG_DFL);

    char iso[256] = "pgrp,rlimits,env,fds";
    const int root = geteuid() == 0;
    int ns = 0, mnt = 0;
    const int flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
    if (root) {
        if (unshare(flags | CLONE_NEWNS) == 0) ns = mnt = 1;
        else if (unshare(flags) == 0) ns = 1;
    } else {
        uid_t u = getuid();
        gid_t g = getgid();
        if (unshare(CLONE_NEWUSER | flags | CLONE_NEWNS) == 0) {
            char map[64];
            write_file("/proc/self/setgroups", "deny");
            snprintf(map, sizeof map, "%u %u 1", (unsigned)u, (unsigned)u);
            int a = write_file("/proc/self/uid_map", map);
            snprintf(map, sizeof map, "%u %u 1", (unsigned)g, (unsigned)g);
            int b = write_file("/proc/self/gid_map", map);
            ns = 1;
            mnt = a == 0 && b == 0;
            strcat(iso, ",userns");
        }
    }
    if (ns) strcat(iso, ",pidns,netns");
    if (mnt) {
        /* Keep mounts from propagating back to the host. */
        if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) mnt = 0;
    }
    if (root) strcat(iso, ",uid");
    strcat(iso, ",nonewprivs");

    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        report("error=%s\n", "rlvr-sandbox: cannot open the work dir", 0);
        return 2;
    }
    if (mnt) {
        const char *tmps[] = {"/tmp", "/var/tmp", "/dev/shm"};
        int okm = 1;
        for (int t = 0; t < 3; t++)
            if (mount("tmpfs", tmps[t], "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777"))
                okm = 0;
        /* The work dir lived under the old /tmp: give it back its path, bind-mounted. */
        if (okm && !strncmp(dir, "/tmp/", 5) && !strchr(dir + 5, '/')) {
            char src[64];
            snprintf(src, sizeof src, "/proc/self/fd/%d", dirfd);
            if (mkdir(dir, 0700) != 0 || mount(src, dir, NULL, MS_BIND, NULL) != 0) okm = 0;
        }
        if (okm) strcat(iso, ",mntns,tmpfs");
        else {
            report("error=%s\n", "rlvr-sandbox: cannot set up the private /tmp", 0);
            return 2;
        }
    }
    report("iso=%s\n", iso, 0);

    int ep[2]; /* exec-error pipe: EOF means exec succeeded */
    if (pipe2(ep, O_CLOEXEC) != 0) {
        report("error=%s\n", "rlvr-sandbox: pipe failed", 0);
        return 2;
    }
    pid_t reaper = fork();
    if (reaper < 0) {
        report("error=%s\n", "rlvr-sandbox: fork failed", 0);
        return 2;
    }
    if (reaper == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (ns && mnt) mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        pid_t g = fork();
        if (g < 0) {
            report("error=%s\n", "rlvr-sandbox: fork of the program failed", 0);
            _exit(2);
        }
        if (g == 0) {
            close(ep[0]);
            if (fchdir(dirfd) != 0) goto fail;
            set_limit(RLIMIT_CPU, cpu, cpu + 1);
            set_limit(RLIMIT_AS, mem, mem);
            set_limit(RLIMIT_FSIZE, fsize, fsize);
            set_limit(RLIMIT_NOFILE, nofile, nofile);
            set_limit(RLIMIT_CORE, 0, 0);
            set_limit(RLIMIT_NPROC, nproc, nproc);
            set_limit(RLIMIT_MSGQUEUE, 0, 0);
            set_limit(RLIMIT_MEMLOCK, 0, 0);
            if (root) {
                if (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid)) goto fail;
            }
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) goto fail;
            /* Close everything but stdio and the exec-error pipe. */
            for (int fd = 3; fd < 1024; fd++)
                if (fd != ep[1]) close(fd);
            char home[4200];
            snprintf(home, sizeof home, "HOME=%s", dir);
            char tmpd[4200];
            snprintf(tmpd, sizeof tmpd, "TMPDIR=%s", dir);
            char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home, tmpd, "LANG=C.UTF-8",
                           "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8", NULL};
            execve(prog[0], prog, env);
        fail:;
            int e = errno;
            ssize_t w = write(ep[1], &e, sizeof e);
            (void)w;
            _exit(127);
        }
        close(ep[1]);
        int st = 0, gst = 0, got = 0;
        for (;;) {
            pid_t p = waitpid(-1, &st, 0);
            if (p < 0 && errno == EINTR) continue;
            if (p < 0) break;
            if (p == g) {
                gst = st;
                got = 1;
                break;
            }
        }
        int e = 0;
        ssize_t r = read(ep[0], &e, sizeof e);
        if (r == (ssize_t)sizeof e) {
            char msg[300];
            snprintf(msg, sizeof msg, "rlvr-sandbox: cannot run %s: %s", prog[0], strerror(e));
            report("error=%s\n", msg, 0);
        } else if (!got) {
            report("error=%s\n", "rlvr-sandbox: lost the program", 0);
        } else if (WIFEXITED(gst)) {
            report("exit=%ld\n", NULL, WEXITSTATUS(gst));
        } else if (WIFSIGNALED(gst)) {
            report("signal=%ld\n", NULL, WTERMSIG(gst));
        }
        /* As the namespace's init, leaving kills everything the program left behind. */
        if (ns) kill(-1, SIGKILL);
        _exit(0);
    }
    close(ep[0]);
    close(ep[1]);
    close(dirfd);
    close(REPORT_FD);
    close(0);
    close(1);
    int st;
    while (waitpid(reaper, &st, 0) < 0 && errno == EINTR) {
    }
    return 0;
}
