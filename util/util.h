/* util.h — small support shared by every stage: arenas, growable arrays,
 * string helpers, hashing and the internal-invariant failure path.
 *
 * Invariants: arena memory comes back zeroed and lives until arena_free();
 * nothing here exits the process except fep_die(), which is reserved for
 * internal bugs (never for bad user input). */
#ifndef FEP_UTIL_H
#define FEP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena.c ---- */
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;   /* newest block first */
    size_t total;       /* bytes handed out, for statistics */
} Arena;

void *arena_alloc(Arena *a, size_t size);            /* zeroed, 16-byte aligned */
void *arena_realloc(Arena *a, void *old, size_t old_size, size_t new_size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Grow an arena array of `elem` sized items so that index `need` fits.
 * `*cap` holds the capacity; returns the (possibly moved) array. */
void *arena_grow(Arena *a, void *array, int *cap, int need, size_t elem);

/* ---- util.c ---- */
_Noreturn void fep_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define fep_die(...) fep_die_at(__FILE__, __LINE__, __VA_ARGS__)

/* Checked heap allocation for long-lived runtime objects; dies on OOM. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

uint64_t hash_bytes(const void *data, size_t n, uint64_t seed);   /* FNV-1a 64 */
uint64_t hash_mix(uint64_t h, uint64_t v);

/* Read a whole file; returns NULL and sets errno on failure. */
char *read_file(const char *path, size_t *len_out);

/* The closest of `names` to `name` (at most two edits, adjacent swaps
 * counting one, and at most half of what was typed), or NULL: the "did you
 * mean" of every diagnostic. */
const char *suggest_name(const char *name, const char *const *names, int n_names);

#endif
