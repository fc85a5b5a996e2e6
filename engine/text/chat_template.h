/*
 * engine/text/chat_template.h — chat templates without Jinja: the built-in formats
 * chatml, llama3, qwen3 and none, auto-detection from tokenizer_config.json's
 * chat_template, and user-defined prefix/suffix templates.
 *
 * Messages are a C array of chat_message {role, content, reasoning_content}; the strings
 * are borrowed (never freed here). chat_messages_from_json turns a JSON prompt (a
 * string, or an array of {"role", "content"[, "reasoning_content"]} objects) into one.
 *
 * Built-in formats (each renders what transformers' apply_chat_template renders with the
 * corresponding Jinja template; tests/text proves it on fixtures):
 *   chatml  "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message (every role verbatim);
 *           an optional default system message when the first message is not a system
 *           one (detected from Qwen2/2.5-style templates). Generation prompt
 *           "<|im_start|>assistant\n".
 *   llama3  Llama 3.0: BOS, then "<|start_header_id|>ROLE<|end_header_id|>\n\n" +
 *           content stripped of surrounding whitespace (Python str.strip) + "<|eot_id|>";
 *           generation prompt "<|start_header_id|>assistant<|end_header_id|>\n\n".
 *   qwen3   Qwen3's template (roles system/user/assistant/tool; thinking is split out
 *           of assistant turns before the last user query; enable_thinking=false
 *           appends the empty "<think>\n\n</think>\n\n" block to the generation prompt).
 *           Tools and tool_calls are not supported.
 *   none    the contents concatenated, nothing added.
 *   custom  from a JSON object {"bos", "system_prefix", "system_suffix", "user_prefix",
 *           "user_suffix", "assistant_prefix", "assistant_suffix", "generation_prompt",
 *           "default_system"} (all strings, all optional, "" by default): bos, then for
 *           each message PREFIX + content + SUFFIX of its role (system/user/assistant
 *           only), the default system message first when given and the first message is
 *           not a system one, then generation_prompt when asked.
 *
 * Auto-detection (chat_template_auto) reads the template text: "<|im_start|>" with
 * "enable_thinking" -> qwen3; other "<|im_start|>" templates -> chatml (with the default
 * system message a literal '<|im_start|>system\n...<|im_end|>' string gives);
 * "<|start_header_id|>" with "<|eot_id|>" -> llama3, except Llama 3.1+ templates (their
 * "Cutting Knowledge Date" header), which are refused; anything else is refused with a
 * message asking for an explicit --template.
 *
 * Errors: 0 on success, -1 with a message in err. Templates are immutable once made and
 * may be rendered from many threads at once.
 */
#ifndef RLVR_TEXT_CHAT_TEMPLATE_H
#define RLVR_TEXT_CHAT_TEMPLATE_H

#include <stddef.h>

#include "engine/text/tokenizer.h"

typedef struct cJSON cJSON;

typedef struct {
    const char *role;              /* "system", "user", "assistant", "tool" */
    const char *content;           /* never NULL */
    const char *reasoning_content; /* qwen3: the assistant's thinking; NULL when absent */
} chat_message;

typedef enum {
    CHAT_TEMPLATE_NONE,
    CHAT_TEMPLATE_CHATML,
    CHAT_TEMPLATE_LLAMA3,
    CHAT_TEMPLATE_LLAMA31,
    CHAT_TEMPLATE_QWEN3,
    CHAT_TEMPLATE_CUSTOM
} chat_template_kind;

typedef struct chat_template chat_template;

typedef struct {
    int add_generation_prompt; /* 1 for rollouts */
    int enable_thinking;       /* qwen3: -1 not given (thinking on), 0 off, 1 on */
} chat_render_opts;

/* A built-in template by name: "chatml", "llama3", "llama3.1", "qwen3", "none". bos_token
 * (may be NULL: "") is what llama3 and llama3.1 put first. llama3.1 (also Llama 3.2/3.3
 * without tools) always opens with a system header carrying "Cutting Knowledge Date:
 * December 2023" and "Today Date: 26 Jul 2024" (the templates' default date_string),
 * then the trimmed system message. */
int chat_template_builtin(const char *name, const char *bos_token, chat_template **out,
                          char *err, size_t errlen);
/* The built-in template matching t's tokenizer_config.json chat_template. */
int chat_template_auto(const tok_tokenizer *t, chat_template **out, char *err, size_t errlen);
/* A custom template from a JSON object (see above); where names it in messages. */
int chat_template_from_json(const cJSON *obj, const char *where, chat_template **out,
                            char *err, size_t errlen);
/* Resolves a --template argument: "auto" (needs t), a built-in name, or the path of a
 * JSON file holding a custom template. t may be NULL except for "auto"; it gives llama3
 * its BOS text. */
int chat_template_resolve(const char *name, const tok_tokenizer *t, chat_template **out,
                          char *err, size_t errlen);
chat_template_kind chat_template_get_kind(const chat_template *tpl);
const char *chat_template_name(const chat_template *tpl);
void chat_template_free(chat_template *tpl);

/* Renders messages; *text is malloc'ed and NUL-terminated, *len excludes the NUL. */
int chat_template_render(const chat_template *tpl, const chat_message *msgs, size_t n,
                         const chat_render_opts *opts, char **text, size_t *len, char *err,
                         size_t errlen);

/* A prompt as JSON (a string: one user message; or an array of message objects) into a
 * malloc'ed chat_message array borrowing j's strings (free() the array only). where
 * names the value in error messages. Unknown message keys are refused. */
int chat_messages_from_json(const cJSON *j, const char *where, chat_message **msgs, size_t *n,
                            char *err, size_t errlen);

#endif
