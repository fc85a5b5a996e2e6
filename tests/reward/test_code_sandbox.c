/*
 * tests/reward/test_code_sandbox.c — the `code` reward and its sandbox, each case run as
 * model-written code: a correct program, wrong output, a crash, a busy loop, a fork bomb,
 * a 100 GB allocation, a huge file, 1 GB of output, a setsid daemon, kill(-1), network
 * access, sys.exit(0) before the tests, printing "PASSED", overriding builtins.exec, and
 * HumanEval/MBPP/APPS test formats. Each must get the right verdict, the test process
 * must survive, and no process may be left behind (checked by scanning /proc for the
 * sandbox uids when running as root).
 *
 * Exits 77 (skipped) when /usr/bin/python3 is missing.
 */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/reward/reward_host.h"
#include "tests/common/check.h"

typedef struct {
    const char *name;
    const char *program;
    const char *extra; /* row fields as JSON */
    double want_score;
    const char *want_verdict; /* first verdict, or NULL */
} sbx_case;

#define IO1 "{\"tests\":[{\"input\":\"2 3\\n\",\"output\":\"5\\n\"}]}"
#define ASSERT1 "{\"test_list\":[\"assert f(1) == 2\"]}"

static const sbx_case k_cases[] = {
    {"correct", "a, b = map(int, input().split())\nprint(a + b)\n", IO1, 1.0, "passed"},
    {"wrong", "a, b = map(int, input().split())\nprint(a - b)\n", IO1, 0.0, "wrong answer"},
    {"crash", "raise ValueError('boom')\n", IO1, 0.0, "runtime error"},
    {"busy loop", "while True:\n    pass\n", IO1, 0.0, "time limit"},
    {"fork bomb",
     "import os\nwhile True:\n    try:\n        os.fork()\n    except Exception:\n        pass\n",
     IO1, 0.0, NULL},
    {"100 GB allocation", "x = bytearray(100 * 10**9)\nprint(5)\n", IO1, 0.0, "memory limit"},
    {"huge file",
     "f = open('big.bin', 'wb')\nwhile True:\n    f.write(b'x' * 1048576)\n    f.flush()\n",
     IO1, 0.0, "output limit"},
    {"1 GB of output", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", IO1, 0.0,
     "output limit"},
    {"setsid daemon",
     "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
     "        time.sleep(60)\n    os._exit(0)\nprint(5)\n",
     IO1, 1.0, "passed"},
    {"kill(-1)", "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint(5)\n", IO1, 0.0, NULL},
    {"network",
     "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\nprint(5)\n", IO1,
     0.0, "runtime error"},
    {"sys.exit(0) before the tests", "import sys\nsys.exit(0)\ndef f(x):\n    return x + 1\n",
     ASSERT1, 0.0, "wrong answer"},
    {"prints PASSED", "print('PASSED')\nprint('All tests passed')\ndef f(x):\n    return 0\n",
     ASSERT1, 0.0, "wrong answer"},
    {"overrides exec",
     "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, "
     "**k: None\ndef f(x):\n    return 0\n",
     ASSERT1, 0.0, "wrong answer"},
    {"assert style partial", "def f(x):\n    return x + 1\n",
     "{\"test_list\":[\"assert f(1) == 2\",\"assert f(2) == 3\",\"assert f(3) == 5\"]}",
     2.0 / 3.0, "passed"},
    {"humaneval", "def sq(x):\n    return x * x\n",
     "{\"test\":\"def check(c):\\n    assert c(2) == 4\\n    assert c(3) == 9\\n\","
     "\"entry_point\":\"sq\"}",
     1.0, "passed"},
    {"apps input_output", "n = int(input())\nprint(n * 2)\n",
     "{\"input_output\":\"{\\\"inputs\\\": [\\\"3\\\\n\\\", \\\"5\\\\n\\\"], \\\"outputs\\\": "
     "[\\\"6\\\\n\\\", \\\"11\\\\n\\\"]}\"}",
     0.5, "passed"},
};

static int count_sandbox_procs(void) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        char p[300];
        struct stat st;
        snprintf(p, sizeof p, "/proc/%s", e->d_name);
        if (stat(p, &st) == 0 && st.st_uid >= 200000 && st.st_uid < 260000) n++;
    }
    closedir(d);
    return n;
}

int main(void) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("skip: /usr/bin/python3 not found\n");
        return 77;
    }
    const int root = geteuid() == 0;
    const size_t n = sizeof k_cases / sizeof *k_cases;
    char err[1024] = "";
    reward_spec s = {"code", "{\"timeout_s\":2,\"mem_mb\":512,\"max_output_kb\":256,"
                             "\"max_procs\":16}", NAN};
    reward_host_opts o = {0};
    o.n_workers = 2;
    reward_host *h = reward_host_create(&s, 1, &o, err, sizeof err);
    CHECK(h != NULL, "%s", err);
    if (!h) return 1;
    rlvr_item items[32];
    char *comps[32];
    for (size_t i = 0; i < n; i++) {
        const char *fmt = "Here is my solution:\n```python\n%s```\n";
        size_t l = strlen(fmt) + strlen(k_cases[i].program) + 1;
        comps[i] = malloc(l);
        snprintf(comps[i], l, fmt, k_cases[i].program);
        memset(&items[i], 0, sizeof items[i]);
        items[i].prompt = "";
        items[i].completion = comps[i];
        items[i].completion_len = strlen(comps[i]);
        items[i].answer = "";
        items[i].extra_json = k_cases[i].extra;
        items[i].group_id = (int64_t)i;
    }
    reward_job *j = reward_host_submit(h, items, n, 0, 0, 120.0, err, sizeof err);
    CHECK(j != NULL, "%s", err);
    const reward_result *r = reward_job_wait(j);
    for (size_t i = 0; i < n; i++) {
        const char *info = r->info[i] ? r->info[i] : "";
        printf("%-30s score=%.3f status=%s %s\n", k_cases[i].name, r->scores[i],
               reward_status_name(r->status[i]), info);
        CHECK(r->status[i] == RLVR_STATUS_OK, "%s: status %s (%s)", k_cases[i].name,
              reward_status_name(r->status[i]), info);
        CHECK(fabs(r->scores[i] - k_cases[i].want_score) < 1e-9, "%s: score %g, want %g",
              k_cases[i].name, r->scores[i], k_cases[i].want_score);
        if (k_cases[i].want_verdict) {
            char key[96];
            snprintf(key, sizeof key, "\"verdicts\":[\"%s\"", k_cases[i].want_verdict);
            CHECK(strstr(info, key) != NULL, "%s: want verdict %s in %s", k_cases[i].name,
                  k_cases[i].want_verdict, info);
        }
    }
    /* Isolation level reached on this machine. */
    if (r->info[0]) printf("isolation: %s\n", r->info[0]);
    reward_job_free(j);
    reward_host_free(h);
    if (root) {
        usleep(200000);
        int left = count_sandbox_procs();
        CHECK(left == 0, "%d sandboxed processes left behind", left);
    } else {
        printf("not root: leftover-process scan skipped\n");
    }
    for (size_t i = 0; i < n; i++) free(comps[i]);
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("code sandbox: all %zu cases passed\n", n);
    return 0;
}
