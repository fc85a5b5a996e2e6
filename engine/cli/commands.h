/*
 * engine/cli/commands.h — the subcommands of `rlvr`. Each is `int cmd_x(argc, argv)`
 * with argv[0] = the subcommand name; returns the process exit status. Each lives in
 * engine/cli/cmd_<name>.c. They are declared weak so a tree where a module is not
 * built yet still links; main() reports such a command as unavailable.
 */
#ifndef RLVR_CLI_COMMANDS_H
#define RLVR_CLI_COMMANDS_H

#define RLVR_CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak))
RLVR_CMD(inspect);
RLVR_CMD(logprobs);
RLVR_CMD(tokenize);
RLVR_CMD(template);
RLVR_CMD(score);
RLVR_CMD(generate);
RLVR_CMD(train);
RLVR_CMD(export);
RLVR_CMD(sft);
RLVR_CMD(plot);
RLVR_CMD(eval);
#undef RLVR_CMD

#endif
