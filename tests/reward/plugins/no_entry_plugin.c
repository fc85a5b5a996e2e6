/*
 * tests/reward/plugins/no_entry_plugin.c — a shared object without the entry symbol.
 */

int rlvr_reward_entry_typo(void) { return 42; }
