/*
 * engine/reward/sandbox.h — running untrusted programs (model-written code): the
 * implementation behind rlvr_host.exec. The program is started through the
 * rlvr-sandbox launcher (engine/reward/sandbox_launcher.c), spawned by libuv in its own
 * session/process group, in a fresh temp dir that is removed afterwards; the launcher
 * enters new PID and network namespaces where the kernel allows, sets rlimits, drops to
 * an unprivileged uid/gid of its own (200000+) when running as root, sets no-new-privileges and clears the environment.
 * A wall-clock deadline or an output cap kills the whole process group (and with the PID
 * namespace every process the program started, daemons included).
 */
#ifndef RLVR_ENGINE_REWARD_SANDBOX_H
#define RLVR_ENGINE_REWARD_SANDBOX_H

#include "rewards/include/rlvr/reward.h"

/* Runs req through the launcher at launcher_path. Returns 0 when the program ran (see
 * res->outcome), -1 when the sandbox could not run it (res->outcome =
 * RLVR_EXEC_SANDBOX_ERROR, res->message says why). Thread-safe; blocks. */
int sandbox_exec(const char *launcher_path, const rlvr_exec_request *req,
                 rlvr_exec_result *res);
void sandbox_exec_free(rlvr_exec_result *res);

#endif
