/* list.h — intrusive doubly linked list (a ring with a head node), as the daemon's objects link
 * themselves into their owners without extra allocations.
 */
#ifndef H2S_LIST_H
#define H2S_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct h2s_list {
	struct h2s_list *prev, *next;
};

#define h2s_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void h2s_list_init(struct h2s_list *h)
{
	h->prev = h->next = h;
}

static inline bool h2s_list_empty(const struct h2s_list *h)
{
	return h->next == h;
}

static inline void h2s_list_add_tail(struct h2s_list *h, struct h2s_list *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Unlink and leave the node pointing at itself, so unlinking twice is harmless. */
static inline void h2s_list_del(struct h2s_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* Safe against removal of the current node. */
#define h2s_list_for_each_safe(pos, tmp, head) \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif /* H2S_LIST_H */
