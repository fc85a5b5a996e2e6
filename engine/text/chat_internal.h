/*
 * engine/text/chat_internal.h — the chat_template structure, shared by
 * chat_template.c (construction, detection) and chat_render.c (rendering).
 */
#ifndef RLVR_TEXT_CHAT_INTERNAL_H
#define RLVR_TEXT_CHAT_INTERNAL_H

#include "engine/text/chat_template.h"

enum { CHAT_ROLE_SYSTEM, CHAT_ROLE_USER, CHAT_ROLE_ASSISTANT, CHAT_ROLE_COUNT };

struct chat_template {
    chat_template_kind kind;
    char *name;
    char *bos;            /* text put first (llama3, custom) */
    char *default_system; /* chatml/custom: system message used when none is given */
    char *date_string;    /* llama3.1: the "Today Date" of the system header */
    char *prefix[CHAT_ROLE_COUNT], *suffix[CHAT_ROLE_COUNT]; /* custom */
    char *generation_prompt;                                 /* custom */
};

#endif
