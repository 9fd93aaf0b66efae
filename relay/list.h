/* kebun: an intrusive doubly-linked list (circular, with a head node).
 *
 * The node lives inside the listed object, so adding and removing never
 * allocate, and removal needs no search and no special case for the first
 * element. kb_container_of gets from a node back to its object.
 */
#ifndef KB_LIST_H
#define KB_LIST_H

#include <stddef.h>

struct kb_list {
    struct kb_list *prev, *next;
};

#define kb_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* An empty list (a head), or a node that is on no list. */
static inline void kb_list_init(struct kb_list *l)
{
    l->prev = l->next = l;
}

static inline int kb_list_empty(const struct kb_list *head)
{
    return head->next == head;
}

/* Put `node` first on `head`'s list. */
static inline void kb_list_push(struct kb_list *head, struct kb_list *node)
{
    node->next = head->next;
    node->prev = head;
    head->next->prev = node;
    head->next = node;
}

/* Every node of `head`'s list, first to last; `node` may be taken off the
 * list (or freed) in the body, since the next one is read before. */
#define KB_LIST_EACH(node, head)                                                                   \
    for (struct kb_list *node = (head)->next, *node##_next = node->next; node != (head);          \
         node = node##_next, node##_next = node->next)

/* Take `node` off its list (it is then on no list; removing it again is
 * harmless). */
static inline void kb_list_remove(struct kb_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    kb_list_init(node);
}

#endif
