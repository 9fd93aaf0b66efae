/* kebun: a growing text buffer for documents built piece by piece (the
 * destinations' state file, /metrics). */
#ifndef KB_TEXT_H
#define KB_TEXT_H

#include <stddef.h>

struct kb_text {
    char *p;    ///< the text so far, NUL-terminated (NULL before the first add)
    size_t len; ///< bytes in p, without the NUL
    size_t cap; ///< bytes allocated
    int oom;    ///< an allocation failed: the text is incomplete, adds do nothing
};

/* Append printf-style; on allocation failure sets oom. */
void kb_text_add(struct kb_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Free the buffer and empty t. */
void kb_text_free(struct kb_text *t);

#endif
