/* png_out.c — a Canvas to an 8-bit RGB, non-interlaced PNG through libpng.
 *
 * The file is written through an AtomicFile (temp file + rename), so a
 * failed or interrupted plot never leaves a truncated PNG at the
 * destination.  libpng reports errors by longjmp to the setjmp below; the
 * handler records the message first.  Nothing that setjmp must preserve
 * changes after it is called. */
#include "plot.h"

#include <png.h>
#include <setjmp.h>

typedef struct PngErrorSink {
    const char *path;
    char *err; size_t errlen;
} PngErrorSink;

static void on_error(png_structp png, png_const_charp msg)
{
    PngErrorSink *sink = png_get_error_ptr(png);
    tio_error(sink->err, sink->errlen, "%s: cannot write the PNG: %s", sink->path, msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;    /* warnings (e.g. about ancillary chunks) do not affect our images */
}

bool png_save(const Canvas *cv, const char *path, char *err, size_t errlen)
{
    AtomicFile af;
    if (!atomic_open(&af, path, err, errlen))
        return false;
    PngErrorSink sink = {path, err, errlen};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        atomic_abort(&af);
        tio_error(err, errlen, "%s: cannot start the PNG encoder (out of memory)", path);
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        atomic_abort(&af);
        return false;
    }
    png_init_io(png, af.f);
    png_set_IHDR(png, info, (png_uint_32)cv->width, (png_uint_32)cv->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < cv->height; y++)
        png_write_row(png, cv->pixels + (size_t)y * (size_t)cv->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return atomic_commit(&af, err, errlen);
}
