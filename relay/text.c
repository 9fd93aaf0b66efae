#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void kb_text_add(struct kb_text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    if (!t->p && !(t->p = malloc(t->cap = 4096))) {
        t->oom = 1;
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        /* It did not fit: grow and write it again. */
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

void kb_text_free(struct kb_text *t)
{
    free(t->p);
    *t = (struct kb_text){0};
}
