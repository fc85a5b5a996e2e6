/*
 * engine/text/utf8.c — UTF-8 validation, lossy repair and the byte-level alphabet.
 * Ranges of the second byte follow the Unicode well-formed byte sequence table
 * (E0: A0..BF, ED: 80..9F, F0: 90..BF, F4: 80..8F); character properties come from
 * utf8proc, never from tables written here.
 */
#include "engine/text/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Number of continuation bytes a lead byte announces, or -1 for an invalid lead. */
static int lead_extra(unsigned char c) {
    if (c < 0x80) return 0;
    if (c >= 0xC2 && c <= 0xDF) return 1;
    if (c >= 0xE0 && c <= 0xEF) return 2;
    if (c >= 0xF0 && c <= 0xF4) return 3;
    return -1;
}

static int second_ok(unsigned char lead, unsigned char c) {
    switch (lead) {
    case 0xE0: return c >= 0xA0 && c <= 0xBF;
    case 0xED: return c >= 0x80 && c <= 0x9F;
    case 0xF0: return c >= 0x90 && c <= 0xBF;
    case 0xF4: return c >= 0x80 && c <= 0x8F;
    default: return c >= 0x80 && c <= 0xBF;
    }
}

size_t utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    int extra = lead_extra(s[0]);
    if (extra < 0 || (size_t)extra + 1 > n) return 0;
    if (extra == 0) return 1;
    if (!second_ok(s[0], s[1])) return 0;
    for (int k = 2; k <= extra; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return (size_t)extra + 1;
}

size_t utf8_bad_len(const unsigned char *s, size_t n, int *truncated) {
    *truncated = 0;
    int extra = lead_extra(s[0]);
    if (extra <= 0) return 1;
    if (n < 2) {
        *truncated = 1;
        return 1;
    }
    if (!second_ok(s[0], s[1])) return 1;
    size_t k = 2;
    while (k <= (size_t)extra) {
        if (k >= n) {
            *truncated = 1;
            return k;
        }
        if ((s[k] & 0xC0) != 0x80) return k;
        k++;
    }
    return k; /* not reached for a sequence that was judged ill-formed */
}

int utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq_len(s + i, n - i);
        if (!l) return 0;
        i += l;
    }
    return 1;
}

static int grow(char **out, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *p = realloc(*out, c);
    if (!p) return -1;
    *out = p;
    *cap = c;
    return 0;
}

int utf8_lossy_append(const char *str, size_t n, char **out, size_t *len, size_t *cap) {
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: every byte becomes the 3-byte U+FFFD. */
    if (grow(out, cap, *len + 3 * n + 1)) return -1;
    char *o = *out + *len;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            *o++ = (char)s[i++];
            continue;
        }
        size_t l = utf8_seq_len(s + i, n - i);
        if (l) {
            memcpy(o, s + i, l);
            o += l;
            i += l;
        } else {
            int trunc;
            i += utf8_bad_len(s + i, n - i, &trunc);
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
    }
    *len = (size_t)(o - *out);
    (*out)[*len] = 0;
    return 0;
}

size_t utf8_decode(const char *str, int32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t utf8_encode(int32_t cp, char *buf) {
    unsigned char *b = (unsigned char *)buf;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The GPT-2 byte-level alphabet: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC,
 * 0xAE..0xFF) stand for themselves; the other 68 bytes, in increasing order, map to
 * U+0100, U+0101, ... */
static int byte_is_self(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

int32_t utf8_byte_to_cp(unsigned char b) {
    if (byte_is_self(b)) return b;
    int32_t k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!byte_is_self(x)) k++;
    return 0x100 + k;
}

int utf8_cp_to_byte(int32_t cp) {
    if (cp < 0x100) return byte_is_self((unsigned)cp) ? cp : -1;
    if (cp >= 0x100 + 68) return -1;
    int32_t k = cp - 0x100;
    for (unsigned x = 0; x < 256; x++)
        if (!byte_is_self(x) && k-- == 0) return (int)x;
    return -1;
}

int utf8_is_white_space(int32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

int utf8_is_py_space(int32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

int utf8_nfc(const char *s, size_t n, char **out, size_t *outlen) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) {
        free(dst);
        return -1;
    }
    *out = (char *)dst;
    *outlen = (size_t)r;
    return 0;
}
