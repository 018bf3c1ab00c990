/* atomic_file.c — replace a file as a whole or not at all.  Every saver in
 * tensorio writes through an AtomicFile: a temp file created exclusively
 * beside the destination (same directory, so rename is atomic), then
 * fflush + fsync + fclose + rename + fsync of the directory.
 *
 * Invariants: until atomic_commit succeeds the destination is untouched; on
 * every failure path the temp file is removed; no global state (temp names
 * come from the pid, the clock and a retry counter, created with O_EXCL). */
#define _POSIX_C_SOURCE 200809L    /* fileno, fsync, O_CLOEXEC, clock_gettime */
#include "runtime/tensorio.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Opens a fresh PATH.tmp.<pid>.<n> with O_EXCL; returns the fd or -1 (errno set). */
static int create_temp(const char *path, char **temp_out)
{
    size_t n = strlen(path) + 64;
    char *temp = xmalloc(n);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long seed = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20) ^ (unsigned long)(uintptr_t)temp;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(temp, n, "%s.tmp.%ld.%lx", path, (long)getpid(), (seed + (unsigned long)attempt * 7919u) & 0xffffffu);
        int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *temp_out = temp;
            return fd;
        }
        if (errno != EEXIST)
            break;
    }
    int saved = errno;
    free(temp);
    errno = saved;
    return -1;
}

bool atomic_open(AtomicFile *af, const char *path, char *err, size_t errlen)
{
    memset(af, 0, sizeof *af);
    char *temp;
    int fd = create_temp(path, &temp);
    if (fd < 0) {
        tio_error(err, errlen, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        (void)fchmod(fd, st.st_mode & 07777);    /* keep the destination's permissions; best effort */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        tio_error(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(temp);
        free(temp);
        return false;
    }
    af->f = f;
    af->final_path = xstrdup(path);
    af->temp_path = temp;
    return true;
}

bool atomic_write(AtomicFile *af, const void *p, size_t n, char *err, size_t errlen)
{
    if (n == 0 || fwrite(p, 1, n, af->f) == n)
        return true;
    tio_error(err, errlen, "%s: write failed: %s", af->final_path, strerror(errno));
    return false;
}

/* fsyncs the directory holding path so the rename itself is durable. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrdup(path) : xstrdup(".");
    if (slash)
        dir[slash == path ? 1 : slash - path] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);    /* some filesystems refuse fsync on directories; the data is already safe */
        close(fd);
    }
    free(dir);
}

bool atomic_commit(AtomicFile *af, char *err, size_t errlen)
{
    if (!af->f) {
        tio_error(err, errlen, "atomic_commit: file is not open");
        return false;
    }
    const char *what = "write";
    if (fflush(af->f) != 0 || ferror(af->f))
        goto fail;
    what = "fsync";
    if (fsync(fileno(af->f)) != 0)
        goto fail;
    what = "close";
    FILE *f = af->f;
    af->f = NULL;
    if (fclose(f) != 0)
        goto fail;
    what = "rename";
    if (rename(af->temp_path, af->final_path) != 0)
        goto fail;
    sync_parent_dir(af->final_path);
    free(af->final_path);
    free(af->temp_path);
    memset(af, 0, sizeof *af);
    return true;
fail:
    tio_error(err, errlen, "%s: %s failed: %s", af->final_path, what, strerror(errno ? errno : EIO));
    atomic_abort(af);
    return false;
}

void atomic_abort(AtomicFile *af)
{
    if (!af)
        return;
    if (af->f)
        fclose(af->f);
    if (af->temp_path)
        unlink(af->temp_path);
    free(af->final_path);
    free(af->temp_path);
    memset(af, 0, sizeof *af);
}
