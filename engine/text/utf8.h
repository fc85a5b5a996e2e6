/*
 * engine/text/utf8.h — small UTF-8 helpers for the tokenizer: validation, lossy repair
 * (each maximal ill-formed subpart becomes U+FFFD, the policy of Python's
 * bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy), the GPT-2
 * byte-level alphabet (byte <-> code point), and Unicode predicates backed by utf8proc.
 */
#ifndef RLVR_TEXT_UTF8_H
#define RLVR_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length in bytes of the well-formed sequence starting at s[0] (1..4), or 0 when the
 * bytes at s (n available) do not start a well-formed sequence. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* 1 when s[0..n) is well-formed UTF-8. */
int utf8_valid(const char *s, size_t n);

/* Length of the maximal ill-formed subpart at s (>= 1) when s does not start a
 * well-formed sequence; *truncated is set when that subpart is a proper prefix of a
 * well-formed sequence cut by the end of the buffer (so more bytes could complete it). */
size_t utf8_bad_len(const unsigned char *s, size_t n, int *truncated);

/* Appends the lossy UTF-8 repair of s[0..n) to a malloc'ed buffer: *out (capacity *cap,
 * length *len) grows as needed. Returns 0, or -1 when out of memory. */
int utf8_lossy_append(const char *s, size_t n, char **out, size_t *len, size_t *cap);

/* Decodes one code point of a well-formed sequence at s; returns its byte length. */
size_t utf8_decode(const char *s, int32_t *cp);
/* Encodes a code point (<= 0x10FFFF) into buf (4 bytes); returns the byte length. */
size_t utf8_encode(int32_t cp, char *buf);

/* GPT-2 byte-level alphabet: the code point that stands for byte b, and the byte that a
 * code point stands for (-1 when it is not in the alphabet). */
int32_t utf8_byte_to_cp(unsigned char b);
int utf8_cp_to_byte(int32_t cp);

/* Unicode White_Space (Rust char::is_whitespace): Zs, Zl, Zp, U+0009..U+000D, U+0085. */
int utf8_is_white_space(int32_t cp);
/* Python str.isspace(): bidirectional class WS, B or S, or general category Zs. */
int utf8_is_py_space(int32_t cp);



/* NFC (utf8proc, canonical composition) of well-formed s[0..n) into a malloc'ed,
 * NUL-terminated buffer (free() it). Returns 0, or -1 on failure. */
int utf8_nfc(const char *s, size_t n, char **out, size_t *outlen);
#endif
