/* arena.c — bump allocator owning all compiler data of one compilation.
 *
 * Blocks are chained newest-first; allocations are zeroed and 16-byte
 * aligned.  Nothing is freed individually: arena_free() releases everything,
 * which is how the REPL drops a whole model when it replaces it. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_MIN_BLOCK = 64 * 1024 };

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

void *arena_alloc(Arena *a, size_t size)
{
    size = align16(size ? size : 1);
    ArenaBlock *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > ARENA_MIN_BLOCK ? size : ARENA_MIN_BLOCK;
        b = xmalloc(sizeof *b + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

void *arena_realloc(Arena *a, void *old, size_t old_size, size_t new_size)
{
    if (new_size <= old_size)
        return old;
    void *p = arena_alloc(a, new_size);
    if (old)
        memcpy(p, old, old_size);
    return p;
}

void *arena_grow(Arena *a, void *array, int *cap, int need, size_t elem)
{
    if (need < *cap)
        return array;
    int new_cap = *cap ? *cap : 8;
    while (new_cap <= need)
        new_cap *= 2;
    void *p = arena_realloc(a, array, (size_t)*cap * elem, (size_t)new_cap * elem);
    *cap = new_cap;
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void arena_free(Arena *a)
{
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}
